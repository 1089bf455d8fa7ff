/**
 * Helpers for the commerce tests: placing orders, paying them through the signed webhook of the
 * simulated provider, and reading balances.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { signedHeaders } from '../../src/orders/payments.ts';
import type { TestContext } from '../support/context.ts';
import { bearer } from '../api/helpers.ts';

export const RECEIVER = { name: 'Lin Mei', phone: '13812345678', address: '88 Century Avenue, Pudong, Shanghai' };

export interface OrderBody {
  items: Array<{ goodsId: number; quantity: number; expectedPrice?: number }>;
  pointsToUse?: number;
  receiver?: typeof RECEIVER;
}

export function placeOrder(ctx: TestContext, token: string, body: OrderBody, key = randomBytes(8).toString('hex')): Promise<LightMyRequestResponse> {
  return ctx.app.inject({ method: 'POST', url: '/v1/orders', headers: { ...bearer(token), 'idempotency-key': key }, payload: body });
}

export function webhook(
  ctx: TestContext,
  event: { eventId?: string; paymentId: string; status: 'succeeded' | 'failed'; amount: number },
  o: { secret?: string; at?: number; headers?: Record<string, string>; raw?: string } = {},
): Promise<LightMyRequestResponse> {
  const raw = o.raw ?? JSON.stringify({ eventId: event.eventId ?? `evt_${randomBytes(6).toString('hex')}`, ...event });
  const headers = o.headers ?? signedHeaders(o.secret ?? ctx.env.PAYMENT_WEBHOOK_SECRET!, raw, o.at);
  return ctx.app.inject({ method: 'POST', url: '/v1/payments/webhook', headers, payload: raw });
}

export async function points(ctx: TestContext, token: string): Promise<{ available: number; frozen: number }> {
  return (await ctx.app.inject({ url: '/v1/me/points', headers: bearer(token) })).json();
}

export async function order(ctx: TestContext, token: string, id: string) {
  return (await ctx.app.inject({ url: `/v1/me/orders/${id}`, headers: bearer(token) })).json();
}

/** A POST with a fresh Idempotency-Key (admin writes require one; member routes ignore it), or the key given. */
export function adminPost(ctx: TestContext, token: string, url: string, payload?: object, key = randomBytes(8).toString('hex')): Promise<LightMyRequestResponse> {
  return ctx.app.inject({ method: 'POST', url, headers: { ...bearer(token), 'idempotency-key': key }, ...(payload ? { payload } : {}) });
}

export async function liveStock(ctx: TestContext, goodsId: number): Promise<number> {
  return Number(await ctx.redis.hget(ctx.keys.goods(goodsId), 'stock'));
}
