/**
 * dailyLimit through the API: exact under concurrency (one member, many parallel redemptions),
 * units of a refused charge given back, today's counts restored by a rebuild from Postgres.
 * The next business day's reset is driven through the script's clock in sale-scripts.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildFromPostgres } from '../../src/recovery/rebuild.ts';
import { deleteKeys } from '../../src/redis/delete-prefix.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { adminWrite, get, redeem, settled } from './support.ts';

let ctx: TestContext;
let admin: { id: number; token: string };

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

describe('daily limit', () => {
  it('lets one member through exactly dailyLimit times when 50 redemptions arrive at once', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 10_000);
    const g = await ctx.createGoods({ pointsPrice: 10, stock: 100, dailyLimit: 2 });
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => redeem(ctx, m.token, g.id, { key: `burst-${i}` })));
    const ok = answers.filter((r) => r.statusCode === 201);
    expect(ok).toHaveLength(2);
    for (const r of answers.filter((a) => a.statusCode !== 201)) expectError(r, 409, 'DAILY_LIMIT_REACHED');
    await settled(ctx, g.id);
    expect(Number(await ctx.redis.hget(ctx.keys.goods(g.id), 'stock'))).toBe(98);
    expect(await ctx.redis.hget(ctx.keys.bought(g.id), String(m.id))).toBe('2');
    expect((await ctx.redis.hget(ctx.keys.dailyBought(g.id), String(m.id)))?.endsWith(':2')).toBe(true);
    expect((await ctx.app.points.balance(m.id)).available).toBe(10_000 - 20);
    // another member is not held back by it
    const [other] = await ctx.createMembers(1);
    await ctx.grant(other.id, 100);
    expect((await redeem(ctx, other.token, g.id)).statusCode).toBe(201);
  });

  it('counts the quantity, not the requests', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 10_000);
    const g = await ctx.createGoods({ pointsPrice: 10, stock: 100, dailyLimit: 3 });
    expect((await redeem(ctx, m.token, g.id, { quantity: 2 })).statusCode).toBe(201);
    expectError(await redeem(ctx, m.token, g.id, { quantity: 2 }), 409, 'DAILY_LIMIT_REACHED');
    expect((await redeem(ctx, m.token, g.id, { quantity: 1 })).statusCode).toBe(201);
  });

  it('gives the units of a refused charge back to the day', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 15);
    const g = await ctx.createGoods({ pointsPrice: 20, stock: 100, dailyLimit: 1 });
    expectError(await redeem(ctx, m.token, g.id), 409, 'INSUFFICIENT_POINTS');
    expect(await ctx.redis.hget(ctx.keys.dailyBought(g.id), String(m.id))).toBeNull();
    await ctx.grant(m.id, 10);
    expect((await redeem(ctx, m.token, g.id)).statusCode).toBe(201);
    expectError(await redeem(ctx, m.token, g.id), 409, 'DAILY_LIMIT_REACHED');
  });

  it('keeps today’s counts through a rebuild from Postgres', async () => {
    const pipeline = await ctx.startPipeline();
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    const g = await ctx.createGoods({ pointsPrice: 10, stock: 100, dailyLimit: 2, perUserLimit: 10 });
    expect((await redeem(ctx, m.token, g.id)).statusCode).toBe(201);
    expect((await redeem(ctx, m.token, g.id)).statusCode).toBe(201);
    await settled(ctx, g.id);
    await pipeline.drain();
    await pipeline.stop();

    await deleteKeys(ctx.redis, ctx.keys.prefix);
    await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600, timeZone: ctx.env.BUSINESS_TIMEZONE });
    // the wipe took the epoch with it: a write-gate check between the wipe and the rebuild closed
    // the API's writes; they reopen at its next check, which the rebuilt epoch passes
    expect(await ctx.app.redisGate.untilWritable(10_000)).toBe(true);
    expect(await ctx.redis.hgetall(ctx.keys.goods(g.id))).toMatchObject({ daily: '2', dyn: '0', limit: '10', stock: '98' });
    expectError(await redeem(ctx, m.token, g.id), 409, 'DAILY_LIMIT_REACHED');
  });

  it('is shown on the goods, changed by a patch, and lifted by null', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    const created = await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods', { name: 'Daily mug', type: 'physical', pointsPrice: 10, stock: 20, dailyLimit: 1 });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().id as number;
    expect(created.json().dailyLimit).toBe(1);
    expect((await redeem(ctx, m.token, id)).statusCode).toBe(201);
    expectError(await redeem(ctx, m.token, id), 409, 'DAILY_LIMIT_REACHED');
    const raised = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${id}`, { dailyLimit: 2 });
    expect(raised.json().dailyLimit).toBe(2);
    expect((await redeem(ctx, m.token, id)).statusCode).toBe(201);
    expectError(await redeem(ctx, m.token, id), 409, 'DAILY_LIMIT_REACHED');
    const lifted = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${id}`, { dailyLimit: null });
    expect(lifted.json().dailyLimit).toBeNull();
    expect((await redeem(ctx, m.token, id)).statusCode).toBe(201);
    expect((await get(ctx, `/v1/goods/${id}`)).json().dailyLimit).toBeNull();
  });
});
