/**
 * Orders through the failures their saga is built for: a placement cut short (its process gone
 * after taking units, before or after freezing points) is finished or undone by the order pump,
 * and a late freeze after the pump's decision is refused; reconcile sees no stock drift while a
 * placement is in flight; a rebuild of Redis from Postgres restores orders' units so a
 * cancellation after it gives back exactly what was taken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrderPump } from '../../src/orders/pump.ts';
import { newOrderNo } from '../../src/orders/service.ts';
import { newOpId, requestHash } from '../../src/points/idempotency.ts';
import { rebuildFromPostgres } from '../../src/recovery/rebuild.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { CLEAN, reconcileFindings } from '../support/reconcile.ts';
import { expectError } from '../api/helpers.ts';
import { RECEIVER, adminPost, liveStock, order, placeOrder, points } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let pump: OrderPump;
beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
  pump = new OrderPump({ redis: ctx.app.redis, keys: ctx.keys, sql: ctx.sql, env: ctx.env }, ctx.app.orders, ctx.app.holds);
});
afterAll(async () => ctx?.close());

/** An order row left `placing` by a process that died: items in Postgres, then whichever steps it got to. */
async function abandonedPlacement(userId: number, goodsId: number, quantity: number, steps: { take: boolean; freeze: boolean }) {
  const id = newOpId();
  await ctx.sql`
    INSERT INTO orders (id, order_no, user_id, source, status, points_total, hold_id, idem_key, request_hash, created_at)
    VALUES (${id}, ${newOrderNo()}, ${userId}, 'order', 'placing', 0, ${id}, ${`k-${id}`}, 'h', now() - interval '10 minutes')`;
  await ctx.sql`INSERT INTO order_items (order_id, position, goods_id, goods_type, quantity) VALUES (${id}, 1, ${goodsId}, 'virtual', ${quantity})`;
  let price = 0;
  if (steps.take) price = await ctx.app.orders['stock'].take(id, userId, goodsId, quantity);
  if (steps.freeze) {
    await ctx.app.holds.freeze({ userId, holdId: id, amount: price * quantity, bizType: 'order', bizId: id, expiresAt: 0, hash: requestHash('order-hold', { id, points: price * quantity }) });
  }
  return { id, points: price * quantity };
}

describe('abandoned placements', () => {
  it('units taken and points frozen: the pump finishes the order (paid, points captured)', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 5, type: 'virtual' });
    const { id } = await abandonedPlacement(m.id, g.id, 2, { take: true, freeze: true });
    expect(await points(ctx, m.token)).toMatchObject({ available: 300, frozen: 200 });
    const r = await pump.run();
    expect(r.placingFinished).toBe(1);
    expect(await order(ctx, m.token, id)).toMatchObject({ status: 'completed', pointsTotal: 200 });
    expect(await points(ctx, m.token)).toMatchObject({ available: 300, frozen: 0 });
    expect(await liveStock(ctx, g.id)).toBe(3);
  });

  it('units taken, points never frozen: the pump undoes it (units back) and a late freeze is refused', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 5, type: 'virtual' });
    const { id } = await abandonedPlacement(m.id, g.id, 2, { take: true, freeze: false });
    expect(await liveStock(ctx, g.id)).toBe(3);
    const r = await pump.run();
    expect(r.placingUndone).toBe(1);
    expect(await order(ctx, m.token, id)).toMatchObject({ status: 'cancelled', reason: 'placement interrupted' });
    expect(await liveStock(ctx, g.id)).toBe(5);
    // the dead process's freeze, arriving now, finds the fence
    await expect(
      ctx.app.holds.freeze({ userId: m.id, holdId: id, amount: 200, bizType: 'order', bizId: id, expiresAt: 0, hash: requestHash('order-hold', { id, points: 200 }) }),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await points(ctx, m.token)).toMatchObject({ available: 500, frozen: 0 });
  });

  it('a retry of the key resumes a placement cut short, taking nothing twice', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 5, type: 'virtual' });
    const body = { items: [{ goodsId: g.id, quantity: 1 }] };
    const first = await placeOrder(ctx, m.token, body, 'resume-me');
    const id = first.json().id;
    // as if the process had died after the take: the row back to placing, the hold not there
    await ctx.sql`UPDATE orders SET status = 'placing', points_state = 'none', stock_state = 'reserved' WHERE id = ${id}`;
    expect(await liveStock(ctx, g.id)).toBe(4);
    const retry = await placeOrder(ctx, m.token, body, 'resume-me');
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.json().id).toBe(id);
    expect(await liveStock(ctx, g.id)).toBe(4);
  });
  it('a placement undone while it ran (the pump took it for abandoned) answers 409 and writes no event, price or audit row', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 5, type: 'virtual' });
    const holds = ctx.app.orders['holds'];
    const freeze = holds.freeze.bind(holds);
    let id = '';
    // the points are frozen; before the placement's statement, the order is no longer `placing`
    holds.freeze = async (input) => {
      const r = await freeze(input);
      id = input.holdId;
      await ctx.sql`UPDATE orders SET status = 'cancelled', reason = 'placement interrupted' WHERE id = ${id} AND status = 'placing'`;
      return r;
    };
    let res;
    try {
      res = await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 2 }] });
    } finally {
      holds.freeze = freeze;
    }
    expectError(res, 409, 'ORDER_STATE_CONFLICT');
    expect(id).not.toBe('');
    expect(await ctx.sql`SELECT 1 FROM order_events WHERE order_id = ${id}`).toHaveLength(0);
    expect(await ctx.sql`SELECT 1 FROM audit_log WHERE target_type = 'order' AND target_id = ${id}`).toHaveLength(0);
    expect(await ctx.sql`SELECT unit_points AS "unitPoints" FROM order_items WHERE order_id = ${id}`).toEqual([{ unitPoints: 0 }]);
    expect((await ctx.sql`SELECT status, points_total AS "pointsTotal" FROM orders WHERE id = ${id}`)[0]).toMatchObject({ status: 'cancelled', pointsTotal: 0 });
  });
});

describe('side effects left undone', () => {
  it('an order paid by a process that died before capturing: the pump captures its points', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 900, stock: 5, type: 'physical' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], pointsToUse: 200, receiver: RECEIVER })).json();
    expect(await points(ctx, m.token)).toMatchObject({ available: 300, frozen: 200 });
    // the webhook's transaction committed; its process died before the capture
    await ctx.sql`UPDATE orders SET status = 'paid', paid_at = now(), unsettled = true, updated_at = now() - interval '1 minute' WHERE id = ${o.id}`;
    const r = await pump.run();
    expect(r.settled).toBeGreaterThanOrEqual(1);
    expect(await points(ctx, m.token)).toMatchObject({ available: 300, frozen: 0 });
    const [row] = await ctx.sql`SELECT points_state, unsettled FROM orders WHERE id = ${o.id}`;
    expect(row).toEqual({ points_state: 'captured', unsettled: false });
    // nothing more to do: the next run leaves it alone
    expect((await pump.run()).settled).toBe(0);
  });
});

describe('stock accounting', () => {
  it('reconcile sees no stock drift while a placement holds units its row does not show yet', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 5, type: 'virtual' });
    const id = newOpId();
    await ctx.sql`
      INSERT INTO orders (id, order_no, user_id, source, status, points_total, hold_id, idem_key, request_hash)
      VALUES (${id}, ${newOrderNo()}, ${m.id}, 'order', 'placing', 0, ${id}, ${`k-${id}`}, 'h')`;
    await ctx.sql`INSERT INTO order_items (order_id, position, goods_id, goods_type, quantity) VALUES (${id}, 1, ${g.id}, 'virtual', 3)`;
    await ctx.app.orders['stock'].take(id, m.id, g.id, 3);
    await pipeline.drain();
    const findings = await reconcileFindings(ctx);
    expect(findings.stockDrift).toEqual([]);
    expect(findings).toEqual(CLEAN);
  });

  it('a rebuild restores orders’ units (stock, bought counts, records): a cancellation after it gives back exactly them', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 5000);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 10, type: 'physical', perUserLimit: 3 });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 3 }], receiver: RECEIVER })).json();
    expect(o.status).toBe('paid');
    await pipeline.drain();
    await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    expect(await liveStock(ctx, g.id)).toBe(7);
    // the per-member limit still counts the order's units
    expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], receiver: RECEIVER }), 409, 'LIMIT_EXCEEDED');
    const cancelled = await adminPost(ctx, m.token, `/v1/me/orders/${o.id}/cancel`);
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(await liveStock(ctx, g.id)).toBe(10);
    expect(await points(ctx, m.token)).toMatchObject({ available: 5000, frozen: 0 });
    await pipeline.drain();
    expect(await reconcileFindings(ctx)).toEqual(CLEAN);
  });
});
