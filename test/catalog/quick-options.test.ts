/**
 * Quick options (GET /v1/me/quick-options) and the exchange_confirmation push a redemption sends
 * once it is persisted. Each quick-options case works at its own scale of points, so the goods of
 * one case never fall in another's price window.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifyPersisted } from '../../src/engagement/notices.ts';
import { keyHash } from '../../src/points/idempotency.ts';
import type { Op } from '../../src/points/op.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { get, redeem, settled } from './support.ts';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

interface Option {
  goodsId: number;
  name: string;
  price: number;
  stock: number;
  canRedeem: boolean;
  redeemedLast7Days: number;
  pointsAfter: number;
  expiringWarning: { points: number; message: string } | null;
}

async function memberWith(points: number) {
  const [m] = await ctx.createMembers(1);
  if (points > 0) await ctx.grant(m.id, points);
  return m;
}

async function options(token: string) {
  const res = await get(ctx, '/v1/me/quick-options', token);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { available: number; minPoints: number; items: Option[] };
}

async function pastRedemption(goodsId: number, daysAgo: number) {
  const id = randomBytes(16).toString('hex');
  const [u] = await ctx.createMembers(1);
  await ctx.sql`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, created_at)
    VALUES (${id}, ${id}, ${`PMT${id.slice(0, 20)}`}, ${u.id}, ${goodsId}, 1, 1, now() - make_interval(secs => ${daysAgo * 86_400}))`;
}

describe('quick options', () => {
  it('offers up to three goods on sale and in stock, priced 0.3×–1.0× of available points, nearest 0.7× first', async () => {
    const m = await memberWith(10_000);
    const g = async (name: string, pointsPrice: number, more: Record<string, unknown> = {}) =>
      (await ctx.createGoods({ name, pointsPrice, stock: 20, ...more })).id;
    const exact = await g('Exactly 0.7', 7000);
    const near = await g('Near', 6500);
    const dynamic = await g('Dynamic, scarce', 5800, { dynamicPricing: true, stock: 5 }); // 5800 × 1.2 = 6960
    await g('Farther', 7600);
    await g('Lowest bound', 3000);
    await g('Highest bound', 10_000);
    await g('Below 0.3', 2999);
    await g('Above 1.0', 10_001);
    await g('Sold out', 7000, { stock: 0 });
    await g('Switched off', 7000, { active: false });
    await g('Not yet on sale', 7000, { startsAt: new Date(Date.now() + 86_400_000).toISOString() });
    await g('Sale over', 7000, { startsAt: '2020-01-01T00:00:00Z', endsAt: '2020-01-02T00:00:00Z' });
    await pastRedemption(near, 1);
    await pastRedemption(near, 3);
    await pastRedemption(near, 9);

    const res = await options(m.token);
    expect(res.available).toBe(10_000);
    expect(res.minPoints).toBe(100);
    expect(res.items.map((i) => [i.goodsId, i.price])).toEqual([
      [exact, 7000],
      [dynamic, 6960],
      [near, 6500],
    ]);
    expect(res.items.map((i) => i.pointsAfter)).toEqual([3000, 3040, 3500]);
    expect(res.items.map((i) => i.redeemedLast7Days)).toEqual([0, 0, 2]);
    expect(res.items.every((i) => i.canRedeem && i.expiringWarning === null && i.stock > 0)).toBe(true);
    // the price offered is the price a redemption charges
    const bought = await redeem(ctx, m.token, dynamic, { expectedPrice: 6960 });
    expect(bought.statusCode, bought.body).toBe(201);
  });

  it('takes both bounds inclusively and can offer fewer than three', async () => {
    const m = await memberWith(200_000);
    const low = (await ctx.createGoods({ name: 'At 0.3×', pointsPrice: 60_000 })).id;
    const high = (await ctx.createGoods({ name: 'At 1.0×', pointsPrice: 200_000 })).id;
    await ctx.createGoods({ name: 'Just below', pointsPrice: 59_999 });
    await ctx.createGoods({ name: 'Just above', pointsPrice: 200_001 });
    const res = await options(m.token);
    // |200000 − 140000| = 60000 < |60000 − 140000| = 80000
    expect(res.items.map((i) => [i.goodsId, i.pointsAfter])).toEqual([
      [high, 0],
      [low, 140_000],
    ]);
  });

  it('prices with the member’s tier, and says canRedeem false when a limit stops the member', async () => {
    const m = await memberWith(2_100_000);
    const limited = (await ctx.createGoods({ name: 'One per member', pointsPrice: 2_100_000, perUserLimit: 1 })).id;
    const daily = (await ctx.createGoods({ name: 'One a day', pointsPrice: 2_000_000, dailyLimit: 1, dynamicPricing: true, stock: 100 })).id;
    expect((await redeem(ctx, m.token, limited)).statusCode).toBe(201);
    await ctx.grant(m.id, 2_000_000);
    expect((await redeem(ctx, m.token, daily)).statusCode).toBe(201);
    await ctx.grant(m.id, 3_000_000);
    await ctx.redis.hset(ctx.keys.account(m.id), 'tier', 3); // Diamond: × 0.85
    const res = await options(m.token);
    expect(res.available).toBe(3_000_000);
    const byId = new Map(res.items.map((i) => [i.goodsId, i]));
    expect(byId.get(limited)).toMatchObject({ price: 1_785_000, canRedeem: false });
    expect(byId.get(daily)).toMatchObject({ price: 1_700_000, canRedeem: false });
    await settled(ctx, daily);
  });

  it('warns when the points expiring within 7 days cover the price', async () => {
    const m = await memberWith(40_000_000);
    await ctx.app.points.creditPlain(m.id, { bizType: 'test_bonus', bizId: 'x', points: 20_000_000, key: 'expiring-soon', expiryDays: 3, lifetime: false });
    const big = (await ctx.createGoods({ name: 'Big', pointsPrice: 42_000_000 })).id;
    const covered = (await ctx.createGoods({ name: 'Covered', pointsPrice: 20_000_000 })).id;
    const res = await options(m.token);
    expect(res.available).toBe(60_000_000);
    expect(res.items.map((i) => i.goodsId)).toEqual([big, covered]);
    expect(res.items[0].expiringWarning).toBeNull();
    expect(res.items[1].expiringWarning?.points).toBe(20_000_000);
    expect(res.items[1].expiringWarning?.message).toMatch(/expire within 7 days/);
  });

  it('answers an empty list with minPoints 100 below 100 available points', async () => {
    await ctx.createGoods({ name: 'Tiny', pointsPrice: 60, stock: 5 });
    const poor = await memberWith(99);
    expect(await options(poor.token)).toEqual({ available: 99, minPoints: 100, items: [] });
    const none = await memberWith(0);
    expect(await options(none.token)).toEqual({ available: 0, minPoints: 100, items: [] });
    const enough = await memberWith(100);
    expect((await options(enough.token)).items.map((i) => i.name)).toEqual(['Tiny']);
  });

  it('needs a token', async () => {
    expectError(await get(ctx, '/v1/me/quick-options'), 401, 'UNAUTHORIZED');
  });
});

describe('exchange confirmation', () => {
  it('pushes exchange_confirmation once per persisted redemption, to every device, however often the batch is followed up', async () => {
    const pipeline = await ctx.startPipeline();
    const withDevices = await memberWith(1000);
    const inboxOnly = await memberWith(1000);
    await ctx.sql`INSERT INTO devices (user_id, platform, token) VALUES (${withDevices.id}, 'ios', ${`tok-a-${withDevices.id}`}),
                  (${withDevices.id}, 'android', ${`tok-b-${withDevices.id}`})`;
    const g = await ctx.createGoods({ name: 'Confirmed mug', pointsPrice: 30, stock: 10 });
    const a = await redeem(ctx, withDevices.token, g.id, { quantity: 2, key: 'push-a' });
    const b = await redeem(ctx, inboxOnly.token, g.id, { key: 'push-b' });
    expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
    // a retry of an answered request is a replay, not a second redemption
    expect((await redeem(ctx, withDevices.token, g.id, { quantity: 2, key: 'push-a' })).headers['idempotent-replayed']).toBe('true');
    await settled(ctx, g.id);
    await pipeline.drain();

    const records = async () =>
      ctx.sql<Array<{ userId: number; deviceId: number | null; status: string; body: string; data: Record<string, string> }>>`
        SELECT user_id AS "userId", device_id AS "deviceId", status, body, data FROM push_records
        WHERE type = 'exchange_confirmation' AND user_id IN (${withDevices.id}, ${inboxOnly.id}) ORDER BY id`;
    const first = await records();
    expect(first.filter((r) => r.userId === withDevices.id)).toHaveLength(2);
    expect(first.filter((r) => r.userId === inboxOnly.id)).toMatchObject([{ deviceId: null, status: 'sent' }]);
    const forA = first.find((r) => r.userId === withDevices.id)!;
    expect(forA.data).toMatchObject({ redemptionId: a.json().id, exchangeNo: a.json().exchangeNo, goodsId: String(g.id) });
    expect(forA.body).toContain('2 × Confirmed mug for 60 points');

    // the persist worker's follow-up again (a redelivered batch, a worker killed after its commit)
    const ops = await Promise.all(
      [[withDevices, 'push-a'], [inboxOnly, 'push-b']].map(
        async ([m, key]) => JSON.parse((await ctx.redis.get(ctx.keys.idem((m as { id: number }).id, keyHash(key as string))))!) as Op,
      ),
    );
    await notifyPersisted(ops, ctx.sql, ctx.app.pushes, ctx.app.engagement);
    await notifyPersisted(ops, ctx.sql, ctx.app.pushes, ctx.app.engagement);
    expect(await records()).toEqual(first);
  });
});
