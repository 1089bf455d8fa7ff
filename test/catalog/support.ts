/**
 * Helpers for the catalog tests: admin writes with a fresh Idempotency-Key, member reads with a
 * token, redemptions with an optional expectedPrice, and a member's tier set directly in Redis.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import type { TestContext } from '../support/context.ts';

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const freshKey = () => `k-${randomBytes(6).toString('hex')}`;

export function adminWrite(
  ctx: TestContext,
  token: string,
  method: 'POST' | 'PATCH' | 'DELETE',
  url: string,
  payload?: Record<string, unknown>,
  key = freshKey(),
): Promise<LightMyRequestResponse> {
  return ctx.app.inject({ method, url, headers: { ...bearer(token), 'idempotency-key': key }, ...(payload ? { payload } : {}) });
}

export function get(ctx: TestContext, url: string, token?: string): Promise<LightMyRequestResponse> {
  return ctx.app.inject({ url, headers: token ? bearer(token) : {} });
}

export function redeem(
  ctx: TestContext,
  token: string,
  goodsId: number,
  o: { key?: string; quantity?: number; expectedPrice?: number } = {},
): Promise<LightMyRequestResponse> {
  return ctx.app.inject({
    method: 'POST',
    url: '/v1/redemptions',
    headers: { ...bearer(token), 'idempotency-key': o.key ?? freshKey() },
    payload: { goodsId, quantity: o.quantity ?? 1, ...(o.expectedPrice !== undefined ? { expectedPrice: o.expectedPrice } : {}) },
  });
}

/** Puts a member at a tier position (0 Regular … 3 Diamond, as seeded) in their Redis account. */
export async function setTier(ctx: TestContext, userId: number, position: number): Promise<void> {
  await ctx.app.points.balance(userId);
  await ctx.redis.hset(ctx.keys.account(userId), 'tier', position);
}

/** Waits until fire-and-forget confirms have landed: no reservation left on the goods. */
export async function settled(ctx: TestContext, goodsId: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await ctx.redis.hlen(ctx.keys.reservations(goodsId))) === 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`reservations of goods ${goodsId} never settled`);
}
