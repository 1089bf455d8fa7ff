/**
 * Issue 6, item 1: an Idempotency-Key reused after its record expired is a NEW request (Stripe's
 * semantics): a new, unrelated op id, its own ledger row, lot and order. Postgres never silently
 * drops an op that Redis applied: an op id that arrives with other content is a counted alarm.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { persistBatch } from '../../src/persistence/persist-batch.ts';
import { countOpConflicts } from '../../src/recovery/op-conflicts.ts';
import { createTestContext, redeemAs, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer } from '../api/helpers.ts';
import { scanAll } from '../support/scan.ts';

let ctx: TestContext;
let pipeline: Pipeline;
beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
});
afterAll(async () => ctx?.close());

/**
 * What IDEMPOTENCY_TTL_SECONDS running out does: every idempotency record in the member's slot
 * disappears (the member is alone in the test with those keys' owner id).
 */
async function expireIdempotencyRecords(userId: number): Promise<number> {
  const slot = ctx.keys.account(userId).replace(/:acct:.*$/, '');
  let removed = 0;
  for (const pattern of [`${slot}:op:*`, `${slot}:idem:${userId}:*`, `${slot}:opref:${userId}:*`]) {
    for (const k of await scanAll(ctx.redis, pattern)) {
      const raw = await ctx.redis.get(k);
      if (raw === null || pattern.includes(':op:') && !raw.includes(`"userId":${userId}`)) continue;
      removed += await ctx.redis.del(k);
    }
  }
  return removed;
}

async function available(token: string): Promise<number> {
  return (await ctx.app.inject({ url: '/v1/me/points', headers: bearer(token) })).json().available;
}

describe('a key reused after its record expired', () => {
  it('redeems again as a new order with a new id, persisted as its own ledger row and redemption', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const goods = await ctx.createGoods({ pointsPrice: 30, stock: 10 });
    const first = await redeemAs(ctx, m.token, goods.id, 'order-1');
    expect(first.statusCode).toBe(201);
    expect(first.json().available).toBe(70);
    await pipeline.drain();

    expect(await expireIdempotencyRecords(m.id)).toBeGreaterThan(0);
    const second = await redeemAs(ctx, m.token, goods.id, 'order-1');
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(second.json().available).toBe(40);
    expect(second.json().id).not.toBe(first.json().id);
    expect(second.json().exchangeNo).not.toBe(first.json().exchangeNo);
    expect((await ctx.app.inject({ url: `/v1/goods/${goods.id}` })).json().stock).toBe(8);

    await pipeline.drain();
    const orders = await ctx.sql`SELECT id, exchange_no FROM redemptions WHERE user_id = ${m.id} ORDER BY created_at`;
    expect(orders.map((o) => o.id)).toEqual([first.json().id, second.json().id]);
    const spends = await ctx.sql`SELECT balance_after FROM ledger_entries WHERE user_id = ${m.id} AND kind = 'spend' ORDER BY created_at`;
    expect(spends.map((s) => s.balance_after)).toEqual([70, 40]);
    const [acct] = await ctx.sql`SELECT available FROM point_accounts WHERE user_id = ${m.id}`;
    expect(acct.available).toBe(40);
  });

  it('earns again as a new lot with a new op id', async () => {
    const [m] = await ctx.createMembers(1);
    const earn = () =>
      ctx.app.inject({
        method: 'POST',
        url: '/v1/points/earn',
        headers: { ...bearer(m.token), 'idempotency-key': 'share-1' },
        payload: { action: 'share' },
      });
    const first = await earn();
    expect(first.statusCode).toBe(200);
    await pipeline.drain();
    expect(await expireIdempotencyRecords(m.id)).toBeGreaterThan(0);
    const second = await earn();
    expect(second.statusCode).toBe(200);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(second.json().opId).not.toBe(first.json().opId);
    expect(await available(m.token)).toBe(20);
    await pipeline.drain();
    const lots = await ctx.sql`SELECT id, remaining FROM point_lots WHERE user_id = ${m.id} ORDER BY created_at`;
    expect(lots).toHaveLength(2);
    expect(lots.reduce((s, l) => s + Number(l.remaining), 0)).toBe(20);
    const [acct] = await ctx.sql`SELECT available FROM point_accounts WHERE user_id = ${m.id}`;
    expect(acct.available).toBe(20);
  });

  it('never derives the op id from the member and the key', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const goods = await ctx.createGoods({ pointsPrice: 10, stock: 10 });
    const res = await redeemAs(ctx, m.token, goods.id, 'guessable');
    expect(res.statusCode).toBe(201);
    const derived = createHash('sha256').update(`${m.id}\u0000guessable`).digest('hex').slice(0, 32);
    expect(res.json().id).toMatch(/^[0-9a-f]{32}$/);
    expect(res.json().id).not.toBe(derived);
    expect(res.json().exchangeNo).not.toContain(res.json().id.slice(0, 20).toUpperCase());
  });
});

describe('an op Postgres would drop', () => {
  it('is a counted, logged alarm when its id arrives again with other content', async () => {
    const [m] = await ctx.createMembers(1);
    const base = {
      opId: 'conflict-op-0000000000000000000', kind: 'earn' as const, userId: m.id, delta: 10, balanceAfter: 10,
      available: 10, bizType: 'share', bizId: '1', at: Date.now(), h: 'h1', expiresAt: Date.now() + 86_400_000,
    };
    expect((await persistBatch(ctx.sql, [base])).inserted).toBe(1);
    const before = await countOpConflicts(ctx.sql);
    // a plain redelivery of the same op is not an alarm
    expect((await persistBatch(ctx.sql, [base])).duplicates).toBe(1);
    expect(await countOpConflicts(ctx.sql)).toBe(before);
    // the same id carrying another op is
    const result = await persistBatch(ctx.sql, [{ ...base, delta: 25, balanceAfter: 35, at: base.at + 5000 }]);
    expect(result.conflicts).toBe(1);
    expect(await countOpConflicts(ctx.sql)).toBe(before + 1);
    const metrics = await ctx.app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(new RegExp(`pm_persist_op_conflicts_total ${before + 1}`));
  });
});
