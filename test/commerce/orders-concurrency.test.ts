/**
 * 200 concurrent mixed orders (points only, points + cash, cash paid partly with points) on an
 * item with 10 units: exactly 10 are placed. Then payments succeed for some, fail for others, and
 * the rest time out (the order pump) — while new orders keep arriving. Afterwards nothing is
 * frozen, every balance equals its ledger, stock equals stocked − units of paid orders, and
 * reconcile finds nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrderPump } from '../../src/orders/pump.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { CLEAN, reconcileFindings } from '../support/reconcile.ts';
import { RECEIVER, liveStock, placeOrder, points, webhook } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
beforeAll(async () => {
  ctx = await createTestContext({ RATE_LIMIT_MAX: 100_000 });
  pipeline = await ctx.startPipeline();
});
afterAll(async () => ctx?.close());

describe('orders under concurrency', () => {
  it('200 concurrent mixed orders on stock 10: 10 orders; paid, failed and timed out settle with nothing frozen and the books agreeing', async () => {
    const members = await ctx.createMembers(200);
    await Promise.all(members.map((m) => ctx.grant(m.id, 1000)));
    const points10 = await ctx.createGoods({ pointsPrice: 300, stock: 10, type: 'physical' });
    const cash10 = await ctx.createGoods({ pointsPrice: 1, cashPrice: 2000, stock: 10, type: 'physical' });
    const answers = await Promise.all(
      members.map((m, i) => {
        const kind = i % 3;
        if (kind === 0) return placeOrder(ctx, m.token, { items: [{ goodsId: points10.id, quantity: 1 }], receiver: RECEIVER });
        return placeOrder(ctx, m.token, { items: [{ goodsId: cash10.id, quantity: 1 }], pointsToUse: kind === 1 ? 500 : 0, receiver: RECEIVER });
      }),
    );
    const placed = answers.filter((a) => a.statusCode === 201).map((a) => a.json());
    const refused = answers.filter((a) => a.statusCode !== 201);
    expect(refused.every((a) => a.statusCode === 409 && a.json().code === 'SOLD_OUT')).toBe(true);
    expect(placed.filter((o) => o.items[0].goodsId === points10.id)).toHaveLength(10);
    expect(placed.filter((o) => o.items[0].goodsId === cash10.id)).toHaveLength(10);
    expect(await liveStock(ctx, points10.id)).toBe(0);
    expect(await liveStock(ctx, cash10.id)).toBe(0);

    const pending = placed.filter((o) => o.status === 'pending_payment');
    expect(pending).toHaveLength(10);
    // 4 succeed, 3 fail, 3 time out — while 20 more members try the sold-out items
    const late = await ctx.createMembers(20);
    await Promise.all(late.map((m) => ctx.grant(m.id, 1000)));
    const [paid, , lateAnswers] = await Promise.all([
      Promise.all(pending.slice(0, 4).map((o) => webhook(ctx, { paymentId: o.paymentId, status: 'succeeded', amount: o.cashDue }))),
      Promise.all(pending.slice(4, 7).map((o) => webhook(ctx, { paymentId: o.paymentId, status: 'failed', amount: o.cashDue }))),
      Promise.all(late.map((m) => placeOrder(ctx, m.token, { items: [{ goodsId: cash10.id, quantity: 1 }], receiver: RECEIVER }))),
    ]);
    expect(paid.every((p) => p.json().outcome === 'paid')).toBe(true);
    // units freed by failed payments may be taken by the late members; never more than 10 in all
    const lateCount = lateAnswers.filter((a) => a.statusCode === 201).length;
    expect(lateCount).toBeLessThanOrEqual(3);
    await ctx.sql`UPDATE orders SET payment_deadline = now() - interval '1 second' WHERE status = 'pending_payment'`;
    const pump = new OrderPump({ redis: ctx.app.redis, keys: ctx.keys, sql: ctx.sql, env: ctx.env }, ctx.app.orders, ctx.app.holds);
    await pump.run();
    await pipeline.drain();

    const statuses = await ctx.sql<Array<{ status: string; n: number }>>`
      SELECT status, count(*)::int AS n FROM orders WHERE source = 'order' GROUP BY status ORDER BY status`;
    const by = Object.fromEntries(statuses.map((s) => [s.status, s.n]));
    expect(by.paid).toBe(10 + 4);
    expect(by.cancelled).toBe(3 + 3 + lateCount);
    for (const m of [...members, ...late]) expect((await points(ctx, m.token)).frozen).toBe(0);
    // stock: 10 − units of orders still paid
    expect(await liveStock(ctx, points10.id)).toBe(0);
    expect(await liveStock(ctx, cash10.id)).toBe(10 - 4);
    // every member: Redis = Postgres account = Σ ledger
    const rows = await ctx.sql<Array<{ userId: number; available: number; ledger: number }>>`
      SELECT a.user_id AS "userId", a.available, COALESCE(SUM(l.delta), 0)::bigint AS ledger
      FROM point_accounts a LEFT JOIN ledger_entries l ON l.user_id = a.user_id GROUP BY a.user_id, a.available`;
    for (const r of rows) expect(Number(r.available)).toBe(Number(r.ledger));
    const spentByPoints = 10 * 300 + pending.slice(0, 4).reduce((n, o) => n + o.pointsToUse, 0);
    const total = rows.reduce((n, r) => n + Number(r.available), 0);
    expect(total).toBe(220 * 1000 - spentByPoints);
    expect(await reconcileFindings(ctx)).toEqual(CLEAN);
  }, 120_000);
});
