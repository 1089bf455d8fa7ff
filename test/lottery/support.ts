/**
 * Helpers for the lottery tests: create a lottery through the admin API, draw as a member, read
 * the live prize stock and holds.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TestContext } from '../support/context.ts';

export interface Member {
  id: number;
  token: string;
}

export interface PrizeBody {
  id?: number;
  name: string;
  kind: 'points' | 'goods' | 'none';
  points?: number;
  goodsId?: number;
  weight: number;
  stock?: number | null;
}

export interface LotteryBody {
  name?: string;
  cost: number;
  cooldownSeconds?: number;
  dailyDrawLimit?: number | null;
  startsAt?: string | null;
  endsAt?: string | null;
  active?: boolean;
  prizes: PrizeBody[];
}

export const auth = (m: Member, key?: string) => ({
  authorization: `Bearer ${m.token}`,
  ...(key === undefined ? {} : { 'idempotency-key': key }),
});

/** POST /v1/admin/lotteries; returns the admin view (prizes with ids). */
export async function createLottery(ctx: TestContext, admin: Member, body: LotteryBody) {
  const res = await ctx.app.inject({
    method: 'POST',
    url: '/v1/admin/lotteries',
    headers: auth(admin, `lottery-${randomBytes(6).toString('hex')}`),
    payload: { name: 'Test lottery', ...body },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: number; prizes: Array<{ id: number; name: string; kind: string; stock: number | null; remaining: number | null }> };
}

export function draw(ctx: TestContext, m: Member, lotteryId: number, key = `draw-${randomBytes(8).toString('hex')}`) {
  return ctx.app.inject({ method: 'POST', url: `/v1/lotteries/${lotteryId}/draws`, headers: auth(m, key) });
}

export async function liveStock(ctx: TestContext, lotteryId: number, prizeId: number): Promise<number> {
  return Number(await ctx.redis.hget(ctx.keys.lotteryStock(lotteryId), String(prizeId)));
}

export async function holds(ctx: TestContext, lotteryId: number): Promise<number> {
  return ctx.redis.hlen(ctx.keys.lotteryHolds(lotteryId));
}

export async function available(ctx: TestContext, m: Member): Promise<number> {
  const res = await ctx.app.inject({ url: '/v1/me/points', headers: auth(m) });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { available: number }).available;
}
