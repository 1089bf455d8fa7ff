/**
 * Redis wiped entirely → rebuild from Postgres: balances, lots, stock, bought counts, leaderboards
 * and replays of acknowledged ops come back as Postgres says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildFromPostgres } from '../../src/recovery/rebuild.ts';
import { deleteKeys } from '../../src/redis/delete-prefix.ts';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const redeem = (token: string, goodsId: number, key: string) => redeemAs(ctx, token, goodsId, key);

describe('rebuild from Postgres', () => {
  it('restores balances, lots, stock, limits, boards and replays after Redis is wiped', async () => {
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(40);
    await Promise.all(members.map((m, i) => ctx.grant(m.id, 1000 + i)));
    const goods = await ctx.createGoods({ pointsPrice: 70, stock: 40, perUserLimit: 2 });
    const first = await Promise.all(members.map((m) => redeem(m.token, goods.id, `k-${m.id}`)));
    expect(first.every((r) => r.statusCode === 201)).toBe(true);
    for (const m of members.slice(0, 5)) {
      const r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/points/earn',
        headers: { authorization: `Bearer ${m.token}`, 'idempotency-key': `e-${m.id}` },
        payload: { action: 'review' },
      });
      expect(r.statusCode).toBe(200);
    }
    await pipeline.drain();
    await pipeline.stop();

    const before = await Promise.all(members.map((m) => ctx.app.points.balance(m.id)));
    const boardBefore = (await ctx.app.inject({ url: '/v1/leaderboards/all' })).json();
    const stockBefore = (await ctx.app.inject({ url: `/v1/goods/${goods.id}` })).json().stock;
    expect(stockBefore).toBe(0);

    await deleteKeys(ctx.redis, ctx.keys.prefix);
    const r = await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    expect(r.members).toBeGreaterThanOrEqual(40);
    expect(r.goods).toBe(1);

    const after = await Promise.all(members.map((m) => ctx.app.points.balance(m.id)));
    expect(after.map((b) => [b.available, b.totalEarned])).toEqual(before.map((b) => [b.available, b.totalEarned]));
    const lotsSum = await Promise.all(
      members.map(async (m) => (await ctx.redis.hvals(ctx.keys.lotRemaining(m.id))).reduce((a, v) => a + Number(v), 0)),
    );
    expect(lotsSum).toEqual(after.map((b) => b.available));
    expect((await ctx.app.inject({ url: `/v1/goods/${goods.id}` })).json().stock).toBe(0);
    expect((await ctx.app.inject({ url: '/v1/leaderboards/all' })).json()).toEqual(boardBefore);
    expect(await ctx.redis.zcard(ctx.keys.expiryIndexOf(members[0].id))).toBeGreaterThan(0);

    // an acknowledged redemption retried after the rebuild replays instead of charging again
    const m0 = members[0];
    // the wipe took the epoch with it: a write-gate check between the wipe and the rebuild closed
    // the API's writes; they reopen at its next check, which the rebuilt epoch passes
    expect(await ctx.app.redisGate.untilWritable(10_000)).toBe(true);
    const retry = await redeem(m0.token, goods.id, `k-${m0.id}`);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json().id).toBe(first[0].json().id);
    // bought counts came back: a member at the limit stays at the limit after a restock
    await ctx.app.goods.restock(goods.id, 10, 0);
    expect((await redeem(m0.token, goods.id, 'second')).statusCode).toBe(201);
    expect((await redeem(m0.token, goods.id, 'third')).json().code).toBe('LIMIT_EXCEEDED');
  });
});
