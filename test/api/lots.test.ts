/**
 * GET /v1/me/lots pages a member's live lots, earliest expiry first (ties by lot id), `limit`
 * 1–100 (default 20) and an opaque `cursor`: every live lot exactly once across pages, expired
 * ones never, lots spent between two pages shift nothing, and a bad limit or cursor is a 400.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newOpId } from '../../src/points/idempotency.ts';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';
import { expectError } from './helpers.ts';

const DAY = 86_400_000;

interface LotItem {
  id: string;
  remaining: number;
  expiresAt: string;
}

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

/** A lot through the real earn script, with an explicit clock and lifetime. */
async function credit(userId: number, points: number, lifetimeMs: number, nowMs: number): Promise<void> {
  const { redis, keys, env } = ctx;
  const opId = newOpId();
  await ctx.app.points.hydrate(userId);
  const reply = await redis.pmEarn(
    keys.account(userId), keys.lotsByExpiry(userId), keys.lotRemaining(userId), keys.idem(userId, opId),
    keys.dailyCap(userId, 'grant'), keys.outboxOf(userId), keys.expiryIndexOf(userId),
    opId, userId, points, 'grant', '0', 0, 0, lifetimeMs, 'h', env.IDEMPOTENCY_TTL_SECONDS, nowMs, '{}', opId, 0, '{"tiers":[0],"earn":[1000],"applyTier":0,"campaign":1000,"lifetime":1}',
  );
  expect(Number(reply[0])).toBe(1);
}

const getLots = (token: string, query = '') =>
  ctx.app.inject({ url: `/v1/me/lots${query}`, headers: { authorization: `Bearer ${token}` } });

/** A member with 23 live lots in groups of three sharing one expiry instant, and one expired lot. */
async function memberWithLots(): Promise<{ token: string; expected: LotItem[] }> {
  const [m] = await ctx.createMembers(1);
  const t = Date.now();
  for (let i = 0; i < 23; i++) await credit(m.id, i + 1, DAY * (1 + Math.floor(i / 3)), t);
  await credit(m.id, 999, DAY, t - 2 * DAY);
  const all = await ctx.redis.zrange(ctx.keys.lotsByExpiry(m.id), 0, -1, 'WITHSCORES');
  const expected: LotItem[] = [];
  for (let i = 0; i < all.length; i += 2) {
    if (Number(all[i + 1]) <= Date.now()) continue;
    const remaining = Number(await ctx.redis.hget(ctx.keys.lotRemaining(m.id), all[i]));
    expected.push({ id: all[i], remaining, expiresAt: new Date(Number(all[i + 1])).toISOString() });
  }
  expect(expected).toHaveLength(23);
  return { token: m.token, expected };
}

describe('GET /v1/me/lots', () => {
  // a limit of 1 resumes inside every group of lots sharing one expiry instant
  it.each([1, 5])('returns every live lot exactly once across pages of %i, earliest expiry first, expired ones never', async (limit) => {
    const { token, expected } = await memberWithLots();
    const seen: LotItem[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await getLots(token, `?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body = res.json() as { items: LotItem[]; nextCursor: string | null };
      expect(body.items.length).toBeLessThanOrEqual(limit);
      seen.push(...body.items);
      cursor = body.nextCursor;
      pages++;
    } while (cursor !== null && pages < 30);
    expect(pages).toBe(Math.ceil(23 / limit));
    expect(seen).toEqual(expected);
    expect(seen.some((l) => l.remaining === 999)).toBe(false);
  });

  it('answers 20 lots by default', async () => {
    const { token, expected } = await memberWithLots();
    const body = (await getLots(token)).json();
    expect(body.items).toEqual(expected.slice(0, 20));
    expect(typeof body.nextCursor).toBe('string');
  });

  it('resumes after the cursor when lots before it were spent in between', async () => {
    const { token, expected } = await memberWithLots();
    const first = (await getLots(token, '?limit=5')).json();
    expect(first.items).toEqual(expected.slice(0, 5));
    // spending takes the earliest lots: the first two listed disappear
    const goods = await ctx.createGoods({ pointsPrice: expected[0].remaining + expected[1].remaining, stock: 5 });
    expect((await redeemAs(ctx, token, goods.id, 'spend-between-pages')).statusCode).toBe(201);
    const second = (await getLots(token, `?limit=5&cursor=${first.nextCursor}`)).json();
    expect(second.items).toEqual(expected.slice(5, 10));
    expect((await getLots(token, '?limit=5')).json().items).toEqual(expected.slice(2, 7));
  });

  it.each([
    ['a limit of 0', '?limit=0'],
    ['a limit above 100', '?limit=101'],
    ['a limit that is not a number', '?limit=ten'],
    ['a cursor that is not one', '?cursor=not-a-cursor'],
    ['a cursor without a lot id', `?cursor=${Buffer.from('1700000000000:').toString('base64url')}`],
    ['an oversized cursor', `?cursor=${'A'.repeat(201)}`],
    ['an unknown parameter', '?offset=5'],
  ])('rejects %s with 400 VALIDATION_FAILED', async (_name, query) => {
    const [m] = await ctx.createMembers(1);
    expectError(await getLots(m.token, query), 400, 'VALIDATION_FAILED');
  });

  it('documents limit, cursor and nextCursor in the OpenAPI', async () => {
    const doc = (await ctx.app.inject({ url: '/docs/json' })).json();
    const op = doc.paths['/v1/me/lots'].get;
    expect(op.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['cursor', 'limit']);
    expect(Object.keys(op.responses).sort()).toEqual(['200', '400', '401', '404', '429', '500', '503']);
    expect(op.responses['200'].content['application/json'].schema.properties.nextCursor).toBeDefined();
  });
});
