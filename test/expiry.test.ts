/**
 * Points expiry: the expire job finds due members through the per-partition expiry index, a lot
 * expiring at T is gone at T (never spendable, however late the job), and expire ops reach the
 * ledger exactly once even when the expiring process is killed mid-run.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExpiryService } from '../src/expiry/service.ts';
import { newOpId } from '../src/points/idempotency.ts';
import { childEnv, killAll, spawnTs, waitUntil } from './crash/procs.ts';
import { createTestContext, type TestContext } from './support/context.ts';

const DAY = 86_400_000;

let ctx: TestContext;
let expiry: ExpiryService;
beforeAll(async () => {
  ctx = await createTestContext();
  expiry = new ExpiryService({ redis: ctx.redis, keys: ctx.keys });
});
afterAll(async () => {
  await killAll();
  await ctx?.close();
});

/** Credits a lot with an explicit lifetime and clock, through the real earn script. */
async function credit(userId: number, points: number, lifetimeMs: number, nowMs?: number) {
  const { redis, keys, env } = ctx;
  const opId = newOpId();
  await ctx.app.points.hydrate(userId);
  const reply = await redis.pmEarn(
    keys.account(userId), keys.lotsByExpiry(userId), keys.lotRemaining(userId), keys.idem(userId, opId),
    keys.dailyCap(userId, 'grant'), keys.outboxOf(userId), keys.expiryIndexOf(userId),
    opId, userId, points, 'grant', '0', 0, 0, lifetimeMs, 'h', env.IDEMPOTENCY_TTL_SECONDS, nowMs ?? '', '{}', opId, 0, '{"tiers":[0],"earn":[1000],"applyTier":0,"campaign":1000,"lifetime":1}',
  );
  expect(Number(reply[0])).toBe(1);
  return opId;
}

describe('expiry', () => {
  it('expires a lot at its expiry instant and not a millisecond before', async () => {
    const [m] = await ctx.createMembers(1);
    const t0 = 1_900_000_000_000;
    await credit(m.id, 100, 10 * DAY, t0);
    await credit(m.id, 40, 20 * DAY, t0);
    const T = t0 + 10 * DAY;
    expect(await expiry.expireMember(m.id, T - 1)).toEqual([1, 0, 0, T]);
    expect(await expiry.expireMember(m.id, T)).toEqual([1, 100, 1, t0 + 20 * DAY]);
    expect(Number(await ctx.redis.hget(ctx.keys.account(m.id), 'avail'))).toBe(40);
    expect(await ctx.redis.zscore(ctx.keys.expiryIndexOf(m.id), String(m.id))).toBe(String(t0 + 20 * DAY));
    // running again finds nothing more
    expect(await expiry.expireMember(m.id, T)).toEqual([1, 0, 0, t0 + 20 * DAY]);
  });

  it('finds due members through the index only, partition by partition', async () => {
    const members = await ctx.createMembers(30);
    const t0 = 1_900_000_000_000;
    for (const [i, m] of members.entries()) await credit(m.id, 10, (i % 2 === 0 ? 1 : 5) * DAY, t0);
    const r = await expiry.expireDue({ nowMs: t0 + 2 * DAY });
    expect(r.points).toBeGreaterThanOrEqual(150);
    const due = members.filter((_, i) => i % 2 === 0);
    for (const m of due) expect(Number(await ctx.redis.hget(ctx.keys.account(m.id), 'avail'))).toBe(0);
    for (const m of members.filter((_, i) => i % 2 === 1)) {
      expect(Number(await ctx.redis.hget(ctx.keys.account(m.id), 'avail'))).toBe(10);
    }
  });

  it('never lets expired points be spent, even when the expire job has not run', async () => {
    const [m] = await ctx.createMembers(1);
    await credit(m.id, 500, 300); // expires 300 ms from now (Redis clock)
    await credit(m.id, 50, 30 * DAY);
    const goods = await ctx.createGoods({ pointsPrice: 400, stock: 5 });
    await new Promise((r) => setTimeout(r, 400));
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/redemptions',
      headers: { authorization: `Bearer ${m.token}`, 'idempotency-key': 'late-expiry' },
      payload: { goodsId: goods.id, quantity: 1 },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('INSUFFICIENT_POINTS');
    const bal = await ctx.app.inject({ url: '/v1/me/points', headers: { authorization: `Bearer ${m.token}` } });
    expect(bal.json().available).toBe(50);
    expect(Number(await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock'))).toBe(5);
  });

  it('lists live lots and groups what expires in the next 30 days by day', async () => {
    const [m] = await ctx.createMembers(1);
    await credit(m.id, 10, 2 * DAY);
    await credit(m.id, 20, 2 * DAY + 1000);
    await credit(m.id, 30, 5 * DAY);
    await credit(m.id, 40, 90 * DAY);
    const auth = { authorization: `Bearer ${m.token}` };
    const lots = (await ctx.app.inject({ url: '/v1/me/lots', headers: auth })).json();
    expect(lots.items.map((l: { remaining: number }) => l.remaining)).toEqual([10, 20, 30, 40]);
    const bal = (await ctx.app.inject({ url: '/v1/me/points', headers: auth })).json();
    expect(bal.available).toBe(100);
    const points = bal.expiring.map((e: { points: number }) => e.points);
    // lots 1 and 2 share a UTC day unless the 1 s between them crosses midnight
    expect([[30, 30], [10, 20, 30]]).toContainEqual(points);
    for (const e of bal.expiring) expect(e.date).toBe(e.expiresAt.slice(0, 10));
  });

  it('persists expire ops exactly once when the expiring process is killed mid-run', async () => {
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(3000);
    await Promise.all(members.map((m) => credit(m.id, 25, 200)));
    await pipeline.drain();
    await new Promise((r) => setTimeout(r, 300));

    // small batches stretch the run out, so the kill lands in the middle of it
    const env = childEnv(ctx.env, { EXPIRE_EVERY_MS: 100, EXPIRE_BATCH: 10, TASK_LOCK_MS: 1500, LOG_LEVEL: 'info' });
    const first = spawnTs('expire-1', 'workers/main.ts', ['--only', 'expire'], env);
    const ids = new Set(members.map((m) => m.id));
    // our members' lots expire within a second; other tests in this file left lots days out
    const expiredSoFar = async () => {
      const due = await Promise.all(
        Array.from({ length: ctx.keys.partitions }, (_, p) => ctx.redis.zcount(ctx.keys.expiryIndex(p), '-inf', Date.now() + 3_600_000)),
      );
      return members.length - due.reduce((a, b) => a + b, 0);
    };
    await waitUntil('some members expired', async () => (await expiredSoFar()) > 0, 30_000, 5).catch((e) => {
      throw new Error(`${e.message}\n${first.output().slice(-3000)}`);
    });
    await first.kill9();
    const partial = await expiredSoFar();
    const second = spawnTs('expire-2', 'workers/main.ts', ['--only', 'expire'], env);
    await waitUntil('every member expired', async () => (await expiredSoFar()) === members.length, 60_000).catch(async (e) => {
      throw new Error(`${e.message} (${await expiredSoFar()} of ${members.length})\n${second.output().slice(-3000)}`);
    });
    await second.kill9();
    await pipeline.drain();

    const rows = await ctx.sql<Array<{ userId: number; n: number; total: number }>>`
      SELECT user_id AS "userId", count(*)::int AS n, sum(delta)::bigint AS total FROM ledger_entries
      WHERE kind = 'expire' GROUP BY user_id`;
    const mine = rows.filter((r) => ids.has(r.userId));
    expect(mine).toHaveLength(members.length);
    expect(mine.every((r) => r.n === 1 && r.total === -25)).toBe(true);
    const [acc] = await ctx.sql`
      SELECT count(*)::int AS n FROM point_accounts WHERE user_id = ANY(${[...ids]}::bigint[]) AND available <> 0`;
    expect(acc.n).toBe(0);
    const [lots] = await ctx.sql`
      SELECT count(*)::int AS n FROM point_lots WHERE user_id = ANY(${[...ids]}::bigint[]) AND remaining <> 0`;
    expect(lots.n).toBe(0);
    expect(partial).toBeLessThan(members.length);
  }, 120_000);
});
