/**
 * Helpers for the transfer tests: members with their usernames, a transfer through the API, and
 * reads of the saga's state (pending set, persisted rows, a member's lots).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TestContext } from '../support/context.ts';

export interface Member {
  id: number;
  token: string;
  username: string;
}

export async function members(ctx: TestContext, n: number): Promise<Member[]> {
  const made = await ctx.createMembers(n);
  const rows = await ctx.sql<Array<{ id: number; username: string }>>`
    SELECT id, username FROM users WHERE id = ANY(${made.map((m) => m.id)}::bigint[])`;
  const names = new Map(rows.map((r) => [r.id, r.username]));
  return made.map((m) => ({ ...m, username: names.get(m.id)! }));
}

export const auth = (m: Member, key?: string) => ({
  authorization: `Bearer ${m.token}`,
  ...(key === undefined ? {} : { 'idempotency-key': key }),
});

export function send(
  ctx: TestContext,
  from: Member,
  body: Record<string, unknown>,
  key = `xfer-${randomBytes(8).toString('hex')}`,
) {
  return ctx.app.inject({ method: 'POST', url: '/v1/points/transfers', headers: auth(from, key), payload: body });
}

export async function available(ctx: TestContext, m: Member): Promise<number> {
  const res = await ctx.app.inject({ url: '/v1/me/points', headers: auth(m) });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { available: number }).available;
}

/** Live lots (Redis), earliest expiry first, as [points, expiresAt ms]. */
export async function liveLots(ctx: TestContext, m: Member): Promise<Array<[number, number]>> {
  const res = await ctx.app.inject({ url: '/v1/me/lots?limit=100', headers: auth(m) });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { items: Array<{ remaining: number; expiresAt: string }> }).items.map((l) => [l.remaining, Date.parse(l.expiresAt)]);
}

/** Transfers on the completer's pending sets, every partition (one round trip: the kill test polls it). */
export async function pendingCount(ctx: TestContext): Promise<number> {
  const p = ctx.redis.pipeline();
  for (let i = 0; i < ctx.keys.partitions; i++) p.zcard(ctx.keys.transfersPending(i));
  const replies = (await p.exec()) ?? [];
  return replies.reduce((n, [err, count]) => {
    if (err) throw err;
    return n + Number(count);
  }, 0);
}

/** Points credited to the member outside transfers, with an expiry of `days` from now. */
export async function creditLot(ctx: TestContext, m: Member, points: number, days: number): Promise<void> {
  await ctx.app.points.creditPlain(m.id, {
    bizType: 'test_credit', bizId: 'test', points, key: `lot-${randomBytes(8).toString('hex')}`, expiryDays: days, lifetime: false,
  });
}
