/**
 * Orders end to end through the API, the persist pipeline and the order pump: mixed payment with
 * frozen points, the signed payment webhook, the lifecycle and its conflicts, refunds (lots back,
 * stock back, purchase earn taken back with a shortfall), virtual rewards issued once, redemptions
 * as orders, and receiver info that never reaches the database in plaintext.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrderPump } from '../../src/orders/pump.ts';
import { createTestContext, redeemAs, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError, snapshot } from '../api/helpers.ts';
import { CLEAN, reconcileFindings } from '../support/reconcile.ts';
import { RECEIVER, adminPost, liveStock, order, placeOrder, points, webhook } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let admin: { id: number; token: string };
let pump: OrderPump;
beforeAll(async () => {
  ctx = await createTestContext({ ORDER_PAYMENT_TIMEOUT_MS: 60_000 });
  pipeline = await ctx.startPipeline();
  admin = await ctx.admin();
  pump = new OrderPump({ redis: ctx.app.redis, keys: ctx.keys, sql: ctx.sql, env: ctx.env }, ctx.app.orders, ctx.app.holds);
});
afterAll(async () => ctx?.close());

async function member(pointsGranted: number) {
  const [m] = await ctx.createMembers(1);
  if (pointsGranted > 0) await ctx.grant(m.id, pointsGranted);
  return m;
}

describe('placing orders', () => {
  it('a points-only order is paid at once: the points frozen then captured, one spend in the ledger', async () => {
    const m = await member(1000);
    const g = await ctx.createGoods({ pointsPrice: 150, stock: 5, type: 'physical' });
    const res = await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 2 }], receiver: RECEIVER });
    expect(res.statusCode, res.body).toBe(201);
    const o = res.json();
    expect(o).toMatchObject({ status: 'paid', source: 'order', pointsTotal: 300, cashTotal: 0, cashDue: 0, paymentId: null, receiver: RECEIVER });
    expect(o.orderNo).toMatch(/^OD[0-9A-HJKMNP-TV-Z]{22}$/);
    expect(o.items).toEqual([{ position: 1, goodsId: g.id, goodsType: 'physical', quantity: 2, unitPoints: 150, unitCash: 0 }]);
    expect(await points(ctx, m.token)).toMatchObject({ available: 700, frozen: 0 });
    expect(await liveStock(ctx, g.id)).toBe(3);
    await pipeline.drain();
    // (ops of one member persist in any order: compared as a set)
    const rows = await ctx.sql`SELECT kind, delta, biz_type FROM ledger_entries WHERE user_id = ${m.id} ORDER BY kind, delta`;
    expect(rows.map((r) => [r.kind, Number(r.delta), r.biz_type])).toEqual([['earn', 1000, 'grant'], ['freeze', 0, 'order'], ['spend', -300, 'order']]);
    // the same key replays the order
    const again = await ctx.app.inject({ method: 'POST', url: '/v1/orders', headers: { ...bearer(m.token), 'idempotency-key': 'x' }, payload: { items: [{ goodsId: g.id, quantity: 1 }], receiver: RECEIVER } });
    const replay = await ctx.app.inject({ method: 'POST', url: '/v1/orders', headers: { ...bearer(m.token), 'idempotency-key': 'x' }, payload: { items: [{ goodsId: g.id, quantity: 1 }], receiver: RECEIVER } });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json().id).toBe(again.json().id);
    const reused = await ctx.app.inject({ method: 'POST', url: '/v1/orders', headers: { ...bearer(m.token), 'idempotency-key': 'x' }, payload: { items: [{ goodsId: g.id, quantity: 2 }], receiver: RECEIVER } });
    expectError(reused, 422, 'IDEMPOTENCY_KEY_REUSED');
  });

  it('refuses bad input and business refusals with 4xx, writing nothing', async () => {
    const m = await member(100);
    const g = await ctx.createGoods({ pointsPrice: 150, stock: 5, type: 'physical' });
    const cash = await ctx.createGoods({ pointsPrice: 1, cashPrice: 500, stock: 5, type: 'virtual' });
    await pipeline.drain();
    const before = await snapshot(ctx, [m.id], [g.id, cash.id]);
    const [{ n: ordersBefore }] = await ctx.sql`SELECT count(*)::int AS n FROM orders`;
    expectError(await placeOrder(ctx, m.token, { items: [] }), 400, 'VALIDATION_FAILED');
    expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 0 }], receiver: RECEIVER }), 400, 'VALIDATION_FAILED');
    expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }, { goodsId: g.id, quantity: 1 }], receiver: RECEIVER }), 400, 'VALIDATION_FAILED');
    expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }] }), 400, 'RECEIVER_REQUIRED');
    const tooMany = expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: cash.id, quantity: 1 }], pointsToUse: 501 }), 400, 'POINTS_TO_USE_INVALID');
    expect(tooMany).toMatchObject({ max: Math.floor((500 * ctx.env.POINTS_PER_CURRENCY_UNIT) / 100) });
    expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: 987654, quantity: 1 }] }), 404, 'GOODS_NOT_FOUND');
    expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], receiver: RECEIVER }), 409, 'INSUFFICIENT_POINTS');
    expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 6 }], receiver: RECEIVER }), 409, 'SOLD_OUT');
    expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: cash.id, quantity: 1 }, { goodsId: g.id, quantity: 1 }], receiver: RECEIVER }), 409, 'INSUFFICIENT_POINTS');
    // the body says which item moved and what it costs now (README: PRICE_CHANGED)
    const moved = expectError(await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1, expectedPrice: 149 }], receiver: RECEIVER }), 409, 'PRICE_CHANGED');
    expect(moved).toMatchObject({ goodsId: g.id, currentPrice: 150, expectedPrice: 149 });
    const noKey = await ctx.app.inject({ method: 'POST', url: '/v1/orders', headers: bearer(m.token), payload: { items: [{ goodsId: cash.id, quantity: 1 }] } });
    expectError(noKey, 400, 'IDEMPOTENCY_KEY_REQUIRED');
    await pipeline.drain();
    expect(await snapshot(ctx, [m.id], [g.id, cash.id])).toEqual(before);
    const [{ n: ordersAfter }] = await ctx.sql`SELECT count(*)::int AS n FROM orders`;
    expect(ordersAfter).toBe(ordersBefore);
  });
});

describe('mixed payment and the webhook', () => {
  it('cash due: pending with points frozen; a signed success captures them; a replay changes nothing', async () => {
    const m = await member(1000);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 1234, stock: 5, type: 'physical' });
    const res = await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], pointsToUse: 234, receiver: RECEIVER });
    expect(res.statusCode, res.body).toBe(201);
    const o = res.json();
    expect(o).toMatchObject({ status: 'pending_payment', cashTotal: 1234, pointsToUse: 234, cashDue: 1000 });
    expect(o.paymentId).toMatch(/^pay_[0-9a-f]{32}$/);
    expect(await points(ctx, m.token)).toMatchObject({ available: 766, frozen: 234 });

    const ok = await webhook(ctx, { eventId: 'evt-1', paymentId: o.paymentId, status: 'succeeded', amount: 1000 });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ duplicate: false, outcome: 'paid', orderId: o.id });
    expect(await points(ctx, m.token)).toMatchObject({ available: 766, frozen: 0 });
    expect((await order(ctx, m.token, o.id)).status).toBe('paid');
    const dup = await webhook(ctx, { eventId: 'evt-1', paymentId: o.paymentId, status: 'succeeded', amount: 1000 });
    expect(dup.json()).toMatchObject({ duplicate: true, outcome: 'paid' });
    const failedLater = await webhook(ctx, { eventId: 'evt-2', paymentId: o.paymentId, status: 'failed', amount: 1000 });
    expect(failedLater.json()).toMatchObject({ duplicate: false, outcome: 'already_paid' });
    expect((await order(ctx, m.token, o.id)).status).toBe('paid');
    await pipeline.drain();
    const spend = await ctx.sql`SELECT delta FROM ledger_entries WHERE user_id = ${m.id} AND kind = 'spend'`;
    expect(spend.map((r) => Number(r.delta))).toEqual([-234]);
  });

  it('forged, stale and unsigned webhooks are 401 and change nothing; an amount mismatch is 409 with an alarm', async () => {
    const m = await member(500);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 800, stock: 5, type: 'virtual' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], pointsToUse: 300 })).json();
    expect(o.status).toBe('pending_payment');
    const event = { paymentId: o.paymentId, status: 'succeeded' as const, amount: 500 };
    expectError(await webhook(ctx, event, { secret: 'not-the-secret-at-all' }), 401, 'WEBHOOK_SIGNATURE_INVALID');
    expectError(await webhook(ctx, event, { at: Math.floor(Date.now() / 1000) - 301 }), 401, 'WEBHOOK_STALE');
    expectError(await webhook(ctx, event, { headers: { 'content-type': 'application/json' } }), 401, 'WEBHOOK_SIGNATURE_INVALID');
    // a body changed after signing
    const raw = JSON.stringify({ eventId: 'e-t', ...event });
    const { signedHeaders } = await import('../../src/orders/payments.ts');
    const headers = signedHeaders(ctx.env.PAYMENT_WEBHOOK_SECRET!, raw);
    expectError(await webhook(ctx, event, { headers, raw: raw.replace('500', '1') }), 401, 'WEBHOOK_SIGNATURE_INVALID');
    expect((await order(ctx, m.token, o.id)).status).toBe('pending_payment');
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM payment_events WHERE payment_id = ${o.paymentId}`;
    expect(n).toBe(0);

    expectError(await webhook(ctx, { ...event, eventId: 'e-mm', amount: 499 }), 409, 'PAYMENT_AMOUNT_MISMATCH');
    expect((await order(ctx, m.token, o.id)).status).toBe('pending_payment');
    const alarm = await ctx.sql`SELECT data FROM audit_log WHERE action = 'payment.amount_mismatch' AND target_id = ${o.id}`;
    expect(alarm).toHaveLength(1);
    expectError(await webhook(ctx, { paymentId: 'pay_unknown', status: 'succeeded', amount: 1 }), 404, 'PAYMENT_NOT_FOUND');
  });

  it('a failed payment cancels: frozen points and stock come back', async () => {
    const m = await member(500);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 800, stock: 3, type: 'virtual' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 2 }], pointsToUse: 400 })).json();
    expect(await liveStock(ctx, g.id)).toBe(1);
    expect(await points(ctx, m.token)).toMatchObject({ available: 100, frozen: 400 });
    const res = await webhook(ctx, { paymentId: o.paymentId, status: 'failed', amount: o.cashDue });
    expect(res.json()).toMatchObject({ outcome: 'cancelled' });
    expect(await points(ctx, m.token)).toMatchObject({ available: 500, frozen: 0 });
    expect(await liveStock(ctx, g.id)).toBe(3);
    const late = await webhook(ctx, { paymentId: o.paymentId, status: 'succeeded', amount: o.cashDue });
    expectError(late, 409, 'ORDER_STATE_CONFLICT');
  });

  it('an unpaid order past its deadline is cancelled by the pump', async () => {
    const m = await member(500);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 800, stock: 3, type: 'virtual' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], pointsToUse: 100 })).json();
    await ctx.sql`UPDATE orders SET payment_deadline = now() - interval '1 second' WHERE id = ${o.id}`;
    const r = await pump.run();
    expect(r.timedOut).toBeGreaterThanOrEqual(1);
    const after = await order(ctx, m.token, o.id);
    expect(after).toMatchObject({ status: 'cancelled', reason: 'payment timed out' });
    expect(await points(ctx, m.token)).toMatchObject({ available: 500, frozen: 0 });
    expect(await liveStock(ctx, g.id)).toBe(3);
  });
});

describe('lifecycle', () => {
  it('paid → shipped → completed, with history, pushes and purchase earn on completion; other moves are 409', async () => {
    const m = await member(100);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 2599, stock: 3, type: 'physical' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], receiver: RECEIVER })).json();
    expect(o).toMatchObject({ status: 'pending_payment', cashDue: 2599 });
    await webhook(ctx, { paymentId: o.paymentId, status: 'succeeded', amount: 2599 });
    // the body carries the order's status (README)
    expect(expectError(await adminPost(ctx, m.token, `/v1/me/orders/${o.id}/confirm-receipt`), 409, 'ORDER_STATE_CONFLICT')).toMatchObject({ status: 'paid' });
    const shipped = await adminPost(ctx, admin.token, `/v1/admin/orders/${o.id}/ship`, { carrier: 'SF', trackingNo: 'SF123' });
    expect(shipped.json()).toMatchObject({ status: 'shipped', carrier: 'SF', trackingNo: 'SF123' });
    expect(expectError(await adminPost(ctx, m.token, `/v1/me/orders/${o.id}/cancel`), 409, 'ORDER_STATE_CONFLICT')).toMatchObject({ status: 'shipped' });
    const done = await adminPost(ctx, m.token, `/v1/me/orders/${o.id}/confirm-receipt`);
    expect(done.json().history.map((h: { to: string }) => h.to)).toEqual(['pending_payment', 'paid', 'shipped', 'completed']);
    // 25.99 paid in cash → 25 points (purchase rule 1 per 1.00, Regular tier ×1)
    expect(await points(ctx, m.token)).toMatchObject({ available: 125 });
    const pushes = await ctx.sql`SELECT data->>'status' AS s FROM push_records WHERE user_id = ${m.id} AND type = 'order_status' ORDER BY id`;
    expect(pushes.map((p) => p.s)).toEqual(['pending_payment', 'paid', 'shipped', 'completed']);
    const audits = await ctx.sql`
      SELECT action, actor_id AS "actorId", data, request_id IS NOT NULL AS "hasRequest" FROM audit_log
      WHERE target_type = 'order' AND target_id = ${o.id} ORDER BY id`;
    expect(audits.map((a) => a.action)).toEqual(['order.placed', 'order.paid', 'order.shipped', 'order.completed']);
    // each row says who moved it, from where to where, and the transition's own data
    expect(audits.map(({ action, actorId, data }) => ({ action, actorId: actorId === null ? null : Number(actorId), data }))).toEqual([
      { action: 'order.placed', actorId: m.id, data: { status: 'pending_payment', points: 0, cashTotal: 2599, cashDue: 2599 } },
      { action: 'order.paid', actorId: null, data: { from: 'pending_payment', to: 'paid', reason: 'payment succeeded', eventId: expect.any(String), paymentId: o.paymentId, amount: 2599 } },
      { action: 'order.shipped', actorId: admin.id, data: { from: 'paid', to: 'shipped', reason: null, carrier: 'SF', trackingNo: 'SF123' } },
      { action: 'order.completed', actorId: m.id, data: { from: 'shipped', to: 'completed', reason: 'receipt confirmed' } },
    ]);
    // the admin's request carries its context (src/audit/context.ts) into the row
    expect(audits.map((a) => a.hasRequest)).toEqual([false, false, true, false]);
    const history = await ctx.sql`SELECT from_status AS "from", to_status AS "to", actor_id AS "actorId", data FROM order_events WHERE order_id = ${o.id} ORDER BY id`;
    expect(history.map((h) => [h.from, h.to, h.actorId === null ? null : Number(h.actorId)])).toEqual([
      [null, 'pending_payment', m.id], ['pending_payment', 'paid', null], ['paid', 'shipped', admin.id], ['shipped', 'completed', m.id],
    ]);
    expect(history[0].data).toEqual({ points: 0, cashDue: 2599 });
    expect(history[2].data).toEqual({ carrier: 'SF', trackingNo: 'SF123' });
    // another member sees nothing of it
    const other = await member(0);
    expectError(await ctx.app.inject({ url: `/v1/me/orders/${o.id}`, headers: bearer(other.token) }), 404, 'ORDER_NOT_FOUND');
    expectError(await adminPost(ctx, other.token, `/v1/me/orders/${o.id}/cancel`), 404, 'ORDER_NOT_FOUND');
  });

  it('two concurrent transitions of one order: one wins, the other is 409', async () => {
    const m = await member(1000);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 3, type: 'physical' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], receiver: RECEIVER })).json();
    const [a, b] = await Promise.all([
      adminPost(ctx, m.token, `/v1/me/orders/${o.id}/cancel`),
      adminPost(ctx, admin.token, `/v1/admin/orders/${o.id}/ship`, { carrier: 'SF', trackingNo: '1' }),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 409]);
    const final = await order(ctx, m.token, o.id);
    if (a.statusCode === 200) {
      expect(final.status).toBe('cancelled');
      expect(await points(ctx, m.token)).toMatchObject({ available: 1000, frozen: 0 });
    } else {
      expect(final.status).toBe('shipped');
      expect(await points(ctx, m.token)).toMatchObject({ available: 900, frozen: 0 });
    }
    // the loser wrote nothing: the placement's entry and the winner's, one audit row each
    const events = await ctx.sql`SELECT to_status AS "to" FROM order_events WHERE order_id = ${o.id} ORDER BY id`;
    expect(events.map((e) => e.to)).toEqual(['paid', final.status]);
    const audits = await ctx.sql`SELECT action FROM audit_log WHERE target_type = 'order' AND target_id = ${o.id} ORDER BY id`;
    expect(audits.map((a) => a.action)).toEqual(['order.placed', `order.${final.status}`]);
  });
});

describe('refunds', () => {
  it('a refund gives the points back, returns stock and takes back the purchase earn the member still has (the rest is a shortfall)', async () => {
    const m = await member(300);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 10_000, stock: 2, type: 'virtual' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], pointsToUse: 200 })).json();
    await webhook(ctx, { paymentId: o.paymentId, status: 'succeeded', amount: 9800 });
    // virtual goods complete at payment; 98.00 paid → 98 points
    expect((await order(ctx, m.token, o.id)).status).toBe('completed');
    expect(await points(ctx, m.token)).toMatchObject({ available: 198, frozen: 0 });
    const refunded = await adminPost(ctx, admin.token, `/v1/admin/orders/${o.id}/refund`, { reason: 'damaged' });
    expect(refunded.statusCode, refunded.body).toBe(200);
    expect(refunded.json()).toMatchObject({ status: 'refunded', reason: 'damaged' });
    // +200 points back, the 98 earned taken back: where the member started
    expect(await points(ctx, m.token)).toMatchObject({ available: 300, frozen: 0 });
    expect(await liveStock(ctx, g.id)).toBe(2);
    expectError(await adminPost(ctx, admin.token, `/v1/admin/orders/${o.id}/refund`, { reason: 'again' }), 409, 'ORDER_STATE_CONFLICT');
    await pipeline.drain();
    const rows = await ctx.sql`SELECT kind, biz_type, delta FROM ledger_entries WHERE user_id = ${m.id} ORDER BY kind, biz_type, delta`;
    expect(rows.map((r) => [r.kind, r.biz_type, Number(r.delta)])).toEqual([
      ['earn', 'grant', 300], ['earn', 'purchase', 98], ['freeze', 'order', 0], ['refund', 'refund', 200],
      ['spend', 'clawback', -98], ['spend', 'order', -200],
    ]);
    expect(await reconcileFindings(ctx)).toEqual(CLEAN);
  });

  it('purchase earn already spent is taken back as far as the member has it; the rest is a shortfall in the audit, never a negative balance', async () => {
    const m = await member(100);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 9800, stock: 2, type: 'virtual' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }] })).json();
    await webhook(ctx, { paymentId: o.paymentId, status: 'succeeded', amount: 9800 });
    expect(await points(ctx, m.token)).toMatchObject({ available: 198 });
    // the member spends most of it
    const sink = await ctx.createGoods({ pointsPrice: 150, stock: 5, type: 'virtual' });
    expect((await redeemAs(ctx, m.token, sink.id, 'sink')).statusCode).toBe(201);
    expect((await points(ctx, m.token)).available).toBe(48);
    const refunded = await adminPost(ctx, admin.token, `/v1/admin/orders/${o.id}/refund`, { reason: 'chargeback' });
    expect(refunded.statusCode, refunded.body).toBe(200);
    expect(await points(ctx, m.token)).toMatchObject({ available: 0, frozen: 0 });
    const [audit] = await ctx.sql`SELECT data FROM audit_log WHERE action = 'order.clawback' AND target_id = ${o.id}`;
    expect(audit.data).toMatchObject({ earned: 98, taken: 48, shortfall: 50 });
    await pipeline.drain();
    expect(await reconcileFindings(ctx)).toEqual(CLEAN);
  });

  it('points from a lot that expired meanwhile come back as a new lot for REFUND_GRACE_DAYS', async () => {
    const m = await member(400);
    const g = await ctx.createGoods({ pointsPrice: 300, stock: 2, type: 'physical' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], receiver: RECEIVER })).json();
    await pipeline.drain();
    // the lot the order spent from has expired by the time of the refund
    const past = Date.now() - 1000;
    await ctx.sql`UPDATE orders SET spent_lots = jsonb_build_array(jsonb_build_array(spent_lots->0->>0, (spent_lots->0->>1)::bigint, ${past}::bigint)) WHERE id = ${o.id}`;
    const res = await adminPost(ctx, admin.token, `/v1/admin/orders/${o.id}/refund`, { reason: 'lost in transit' });
    expect(res.statusCode, res.body).toBe(200);
    expect(await points(ctx, m.token)).toMatchObject({ available: 400 });
    const lots = (await ctx.app.inject({ url: '/v1/me/lots', headers: bearer(m.token) })).json().items as Array<{ remaining: number; expiresAt: string }>;
    const graceDays = ctx.env.REFUND_GRACE_DAYS;
    const back = lots.find((l) => l.remaining === 300)!;
    expect(Math.abs(new Date(back.expiresAt).getTime() - (Date.now() + graceDays * 86_400_000))).toBeLessThan(60_000);
    await pipeline.drain();
    const [{ s }] = await ctx.sql`SELECT sum(remaining)::int AS s FROM point_lots WHERE user_id = ${m.id}`;
    expect(s).toBe(400);
  });
});

describe('virtual rewards', () => {
  it('coupon goods issue one code per unit, once; use is idempotent; a refund revokes', async () => {
    const m = await member(1000);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 5, type: 'coupon', couponValidDays: 10 });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 2 }] })).json();
    expect((await order(ctx, m.token, o.id)).status).toBe('completed');
    const list = (await ctx.app.inject({ url: '/v1/me/coupons', headers: bearer(m.token) })).json();
    expect(list.items).toHaveLength(2);
    for (const c of list.items) {
      expect(c.code).toMatch(/^CP[A-Z0-9]{8}$/);
      expect(c.status).toBe('active');
      expect(Math.abs(new Date(c.validUntil).getTime() - (Date.now() + 10 * 86_400_000))).toBeLessThan(60_000);
    }
    // settling again issues nothing more
    await ctx.app.orders.afterTransition(o.id);
    await pump.run();
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM user_coupons WHERE order_id = ${o.id}`;
    expect(n).toBe(2);
    const code = list.items[0].code;
    const used = await adminPost(ctx, admin.token, `/v1/admin/coupons/${code}/use`, undefined, 'use-1');
    expect(used.json()).toMatchObject({ code, status: 'used' });
    const again = await adminPost(ctx, admin.token, `/v1/admin/coupons/${code}/use`, undefined, 'use-1');
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(used.json());
    // another key: still used, once
    expect((await adminPost(ctx, admin.token, `/v1/admin/coupons/${code}/use`)).json()).toMatchObject({ status: 'used', usedAt: used.json().usedAt });
    expectError(await adminPost(ctx, admin.token, '/v1/admin/coupons/CPZZZZZZZZ/use'), 404, 'COUPON_NOT_FOUND');
    await adminPost(ctx, admin.token, `/v1/admin/orders/${o.id}/refund`, { reason: 'x' });
    const after = await ctx.sql`SELECT status FROM user_coupons WHERE order_id = ${o.id} ORDER BY status`;
    expect(after.map((r) => r.status)).toEqual(['revoked', 'used']);
    expect(expectError(await adminPost(ctx, admin.token, `/v1/admin/coupons/${list.items[1].code}/use`), 409, 'COUPON_NOT_ACTIVE')).toMatchObject({ status: expect.any(String) });
  });

  it('VIP goods stack their days', async () => {
    const m = await member(1000);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 5, type: 'vip', vipDays: 30 });
    await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }] });
    await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }] });
    const vip = (await ctx.app.inject({ url: '/v1/me/vip', headers: bearer(m.token) })).json();
    expect(vip.active).toBe(true);
    expect(vip.periods).toHaveLength(2);
    expect(Math.abs(new Date(vip.endsAt).getTime() - (Date.now() + 60 * 86_400_000))).toBeLessThan(60_000);
  });
});

describe('redemptions are orders', () => {
  it('a redemption appears in /v1/me/orders once persisted, and can be cancelled before shipping (points and stock back)', async () => {
    const m = await member(500);
    const g = await ctx.createGoods({ pointsPrice: 120, stock: 4, type: 'physical' });
    const r = await redeemAs(ctx, m.token, g.id, 'r-1');
    expect(r.statusCode).toBe(201);
    await pipeline.drain();
    const list = (await ctx.app.inject({ url: '/v1/me/orders', headers: bearer(m.token) })).json();
    const o = list.items.find((x: { id: string }) => x.id === r.json().id);
    expect(o).toMatchObject({ source: 'redemption', status: 'paid', pointsTotal: 120, orderNo: r.json().exchangeNo });
    const cancelled = await adminPost(ctx, m.token, `/v1/me/orders/${o.id}/cancel`);
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(await points(ctx, m.token)).toMatchObject({ available: 500 });
    expect(await liveStock(ctx, g.id)).toBe(4);
    await pipeline.drain();
    const [red] = await ctx.sql`SELECT status FROM redemptions WHERE op_id = ${o.id}`;
    expect(red.status).toBe('cancelled');
    expect(await reconcileFindings(ctx)).toEqual(CLEAN);
  });
});

describe('redemption orders, written when something happens to them', () => {
  it('a persisted redemption is listed and shown as an order without an orders row; its first transition writes the row', async () => {
    const m = await member(500);
    const g = await ctx.createGoods({ pointsPrice: 70, stock: 4, type: 'physical' });
    const r = await redeemAs(ctx, m.token, g.id, 'lazy-1');
    await pipeline.drain();
    const id = r.json().id;
    expect(await ctx.sql`SELECT 1 FROM orders WHERE id = ${id}`).toHaveLength(0);
    const shown = await order(ctx, m.token, id);
    expect(shown).toMatchObject({ source: 'redemption', status: 'paid', pointsTotal: 70, items: [{ goodsId: g.id, quantity: 1, unitPoints: 70 }] });
    expect(shown.history.map((h: { to: string }) => h.to)).toEqual(['paid']);
    const admin2 = await ctx.admin();
    const listed = (await ctx.app.inject({ url: `/v1/admin/orders?userId=${m.id}&status=paid`, headers: bearer(admin2.token) })).json();
    expect(listed.items.map((o: { id: string }) => o.id)).toContain(id);
    const shipped = await adminPost(ctx, admin2.token, `/v1/admin/orders/${id}/ship`, { carrier: 'SF', trackingNo: 'T1' });
    expect(shipped.statusCode, shipped.body).toBe(200);
    expect(shipped.json().history.map((h: { to: string }) => h.to)).toEqual(['paid', 'shipped']);
    expect(await ctx.sql`SELECT status FROM orders WHERE id = ${id}`).toEqual([{ status: 'shipped' }]);
    // a coupon redemption's row is written at once: its rewards are issued by the pump
    const c = await ctx.createGoods({ pointsPrice: 10, stock: 4, type: 'coupon' });
    const rc = await redeemAs(ctx, m.token, c.id, 'lazy-2');
    await pipeline.drain();
    expect(await ctx.sql`SELECT rewards_state FROM orders WHERE id = ${rc.json().id}`).toEqual([{ rewards_state: 'pending' }]);
  });
});

describe('redemption orders and daily limits', () => {
  it('cancelling a redemption gives its unit back to the day’s count: the member may redeem again today', async () => {
    const m = await member(1000);
    const g = await ctx.createGoods({ pointsPrice: 50, stock: 5, type: 'physical', dailyLimit: 1 });
    const r = await redeemAs(ctx, m.token, g.id, 'daily-1');
    expect(r.statusCode).toBe(201);
    expectError(await redeemAs(ctx, m.token, g.id, 'daily-2'), 409, 'DAILY_LIMIT_REACHED');
    await pipeline.drain();
    expect((await adminPost(ctx, m.token, `/v1/me/orders/${r.json().id}/cancel`)).statusCode).toBe(200);
    expect((await redeemAs(ctx, m.token, g.id, 'daily-3')).statusCode).toBe(201);
  });
});

describe('webhook edge cases', () => {
  it('a payment event for an order still being placed is refused (409) and not recorded, so the provider’s retry applies it', async () => {
    const m = await member(500);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 800, stock: 3, type: 'virtual' });
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], pointsToUse: 100 })).json();
    await ctx.sql`UPDATE orders SET status = 'placing' WHERE id = ${o.id}`;
    expectError(await webhook(ctx, { eventId: 'early', paymentId: o.paymentId, status: 'succeeded', amount: o.cashDue }), 409, 'ORDER_STATE_CONFLICT');
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM payment_events WHERE event_id = 'early'`;
    expect(n).toBe(0);
    await ctx.sql`UPDATE orders SET status = 'pending_payment' WHERE id = ${o.id}`;
    expect((await webhook(ctx, { eventId: 'early', paymentId: o.paymentId, status: 'succeeded', amount: o.cashDue })).json()).toMatchObject({ outcome: 'paid', duplicate: false });
  });

  it('an eventId already used for another payment is refused, changing nothing', async () => {
    const m = await member(500);
    const g = await ctx.createGoods({ pointsPrice: 1, cashPrice: 800, stock: 3, type: 'virtual' });
    const a = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }] })).json();
    const b = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }] })).json();
    await webhook(ctx, { eventId: 'shared-evt', paymentId: a.paymentId, status: 'succeeded', amount: a.cashDue });
    expectError(await webhook(ctx, { eventId: 'shared-evt', paymentId: b.paymentId, status: 'succeeded', amount: b.cashDue }), 400, 'VALIDATION_FAILED');
    expect((await order(ctx, m.token, b.id)).status).toBe('pending_payment');
  });
});

describe('receiver info', () => {
  it('is stored encrypted: no plaintext fragment anywhere in the database; lists mask the phone', async () => {
    const m = await member(1000);
    const g = await ctx.createGoods({ pointsPrice: 10, stock: 5, type: 'physical' });
    const secret = { name: 'Zhang Wuji', phone: '13998765432', address: 'Guangmingding 7, Kunlun' };
    const o = (await placeOrder(ctx, m.token, { items: [{ goodsId: g.id, quantity: 1 }], receiver: secret })).json();
    expect(o.receiver).toEqual(secret);
    const list = (await ctx.app.inject({ url: '/v1/me/orders', headers: bearer(m.token) })).json();
    expect(list.items.find((x: { id: string }) => x.id === o.id).receiver.phone).toBe('139****5432');
    await pipeline.drain();
    const tables = await ctx.sql<Array<{ table_name: string }>>`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`;
    for (const { table_name } of tables) {
      const [{ dump }] = await ctx.sql.unsafe<Array<{ dump: string | null }>>(`SELECT string_agg(t::text, '|') AS dump FROM "${table_name}" t`);
      for (const fragment of ['Zhang', 'Wuji', '13998765432', '98765432', 'Guangmingding', 'Kunlun']) {
        expect(dump ?? '', `${fragment} in ${table_name}`).not.toContain(fragment);
      }
    }
  });
});
