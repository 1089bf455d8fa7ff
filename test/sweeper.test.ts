/**
 * The reservation sweeper settles what a crashed API left between saga steps: a reservation
 * never charged is released (and a late charge of it refused); one charged but not confirmed is
 * confirmed.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHash, newOpId, requestHash } from '../src/points/idempotency.ts';
import { createTestContext, type TestContext } from './support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

async function reserveOnly(userId: number, goodsId: number, key: string) {
  const { redis, keys, env } = ctx;
  const opId = newOpId();
  const kh = keyHash(key);
  const hash = requestHash('redeem', { goodsId, quantity: 1 });
  const token = randomBytes(8).toString('hex');
  const reply = await redis.pmReserve(
    keys.goods(goodsId), keys.bought(goodsId), keys.reservations(goodsId), keys.reservationDeadlines(goodsId), keys.dailyBought(goodsId),
    opId, userId, 1, hash, env.RESERVATION_TIMEOUT_MS, '', token, kh, 1000, 1000, 0, '',
  );
  expect(Number(reply[0])).toBe(1);
  return { opId, kh, hash, token };
}

describe('reservation sweeper', () => {
  it('releases a reservation that was never charged and refuses a late charge of it', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 3, perUserLimit: 1 });
    const { opId, kh, hash, token } = await reserveOnly(m.id, g.id, 'crashed-before-charge');
    expect(Number(await ctx.redis.hget(ctx.keys.goods(g.id), 'stock'))).toBe(2);

    expect(await ctx.app.redemptions.sweep(-60_000)).toEqual({ confirmed: 0, released: 1 });
    expect(Number(await ctx.redis.hget(ctx.keys.goods(g.id), 'stock'))).toBe(3);
    expect(await ctx.redis.hget(ctx.keys.bought(g.id), String(m.id))).toBeNull();

    await expect(ctx.app.points.charge(m.id, opId, kh, hash, 100, token, { goodsId: g.id, quantity: 1 })).rejects.toMatchObject({
      code: 'RESERVATION_EXPIRED',
    });
    expect((await ctx.app.points.balance(m.id)).available).toBe(500);

    // the member's retry with the same key goes through afresh
    const retry = await ctx.app.inject({
      method: 'POST',
      url: '/v1/redemptions',
      headers: { authorization: `Bearer ${m.token}`, 'idempotency-key': 'crashed-before-charge' },
      payload: { goodsId: g.id, quantity: 1 },
    });
    expect(retry.statusCode).toBe(201);
    expect(retry.json().available).toBe(400);
  });

  it('confirms a reservation whose charge went through before the crash', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 3 });
    const { opId, kh, hash, token } = await reserveOnly(m.id, g.id, 'crashed-before-confirm');
    await ctx.app.points.charge(m.id, opId, kh, hash, 100, token, { goodsId: g.id, quantity: 1, bizType: 'redemption', bizId: String(g.id) });

    expect(await ctx.app.redemptions.sweep(-60_000)).toEqual({ confirmed: 1, released: 0 });
    expect(Number(await ctx.redis.hget(ctx.keys.goods(g.id), 'stock'))).toBe(2);
    expect(await ctx.redis.hlen(ctx.keys.reservations(g.id))).toBe(0);
    expect((await ctx.app.points.balance(m.id)).available).toBe(400);
  });

  it('leaves reservations inside their deadline alone', async () => {
    const [m] = await ctx.createMembers(1);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 3 });
    await reserveOnly(m.id, g.id, 'in-flight');
    expect(await ctx.app.redemptions.sweep()).toEqual({ confirmed: 0, released: 0 });
    expect(await ctx.redis.hlen(ctx.keys.reservations(g.id))).toBe(1);
  });
});
