/**
 * Issue 6, items 6 and 15.
 *   6: a repair applies at most once whatever the overlap of two reconcilers (fencing token in
 *      Postgres, compare-and-set in Redis).
 *  15: an `adjust` keeps lots consistent: Postgres's lots follow Redis's, so after a rebuild the
 *      lots add up to the balance and adjusted points expire like any others.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { Reconciler } from '../../src/recovery/reconcile.ts';
import { rebuildFromPostgres } from '../../src/recovery/rebuild.ts';
import { ExpiryService } from '../../src/expiry/service.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let queue: Queue;
let pipeline: Pipeline;
beforeAll(async () => {
  ctx = await createTestContext();
  queue = new Queue(PERSIST_QUEUE, { connection: createRedis(ctx.env.REDIS_URL, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
  pipeline = await ctx.startPipeline();
});
afterAll(async () => {
  await queue?.close();
  await ctx?.close();
});

const reconciler = () => new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue });

/** A member whose last earn (an admin grant of `lost`) Postgres lost: ledger row, lot and mirror. */
async function memberWithLostEarn(kept: number, lost: number) {
  const [m] = await ctx.createMembers(1);
  await ctx.grant(m.id, kept);
  await pipeline.drain();
  await ctx.grant(m.id, lost);
  await pipeline.drain();
  const [row] = await ctx.sql<Array<{ opId: string }>>`
    SELECT op_id AS "opId" FROM ledger_entries WHERE user_id = ${m.id} ORDER BY id DESC LIMIT 1`;
  await ctx.sql`DELETE FROM ledger_entries WHERE op_id = ${row.opId}`;
  await ctx.sql`DELETE FROM point_lots WHERE id = ${row.opId}`;
  await ctx.sql`UPDATE point_accounts SET available = available - ${lost}, total_earned = total_earned - ${lost} WHERE user_id = ${m.id}`;
  return { member: m, lostLot: row.opId };
}

/** A Redis client whose repair commands stall `ms` first: a reconciler paused before its repair. */
function stallingRepairs(ms: number) {
  const stalled = new Set(['hincrby', 'pmRepairStock', 'pmRepairBalance', 'pmRestock']);
  return new Proxy(ctx.redis, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || !stalled.has(prop) || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        await new Promise((r) => setTimeout(r, ms));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('two reconcilers that overlap', () => {
  it('adjust a member whose ops Postgres lost exactly once', async () => {
    const { member } = await memberWithLostEarn(100, 40);
    // the first reconciler stalls inside its adjust (the member's account row is held), long
    // enough for a second one to start, measure the same drift and try its own repair
    const holder = postgres(ctx.env.DATABASE_URL, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const holding = holder.begin(async (tx) => {
      await tx`SELECT 1 FROM point_accounts WHERE user_id = ${member.id} FOR UPDATE`;
      await held;
    });
    try {
      const first = reconciler().run({ confirmDelayMs: 100 });
      await new Promise((r) => setTimeout(r, 800));
      const second = reconciler().run({ confirmDelayMs: 100 });
      await new Promise((r) => setTimeout(r, 1500));
      release();
      await holding;
      const [a, b] = await Promise.all([first, second]);
      const outcomes = [...a.drifting, ...b.drifting].filter((d) => d.userId === member.id).map((d) => d.repaired);
      expect(outcomes.filter((o) => o === 'adjusted')).toHaveLength(1);
    } finally {
      release();
      await holder.end();
    }
    const adjusts = await ctx.sql`SELECT delta FROM ledger_entries WHERE user_id = ${member.id} AND kind = 'adjust'`;
    expect(adjusts.map((r) => r.delta)).toEqual([40]);
    const [acct] = await ctx.sql`SELECT available FROM point_accounts WHERE user_id = ${member.id}`;
    expect(acct.available).toBe(140);
    expect(Number(await ctx.redis.hget(ctx.keys.account(member.id), 'avail'))).toBe(140);
    expect((await reconciler().run({ confirmDelayMs: 50 })).drifting).toEqual([]);
  });

  it('repair damaged stock exactly once', async () => {
    const goods = await ctx.createGoods({ pointsPrice: 10, stock: 100 });
    await ctx.redis.hincrby(ctx.keys.goods(goods.id), 'stock', 7);
    // the first measures, then stalls before its repair while the second measures and repairs
    const slow = new Reconciler({ sql: ctx.sql, redis: stallingRepairs(1500), keys: ctx.keys, queue });
    const first = slow.run({ confirmDelayMs: 100 });
    await new Promise((r) => setTimeout(r, 150));
    const second = reconciler().run({ confirmDelayMs: 100 });
    await Promise.all([first, second]);
    expect(Number(await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock'))).toBe(100);
  });

  it('repair a damaged balance field exactly once', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 300);
    await pipeline.drain();
    await ctx.redis.hincrby(ctx.keys.account(m.id), 'avail', 25);
    const slow = new Reconciler({ sql: ctx.sql, redis: stallingRepairs(1500), keys: ctx.keys, queue });
    const first = slow.run({ confirmDelayMs: 100 });
    await new Promise((r) => setTimeout(r, 150));
    const second = reconciler().run({ confirmDelayMs: 100 });
    await Promise.all([first, second]);
    expect(Number(await ctx.redis.hget(ctx.keys.account(m.id), 'avail'))).toBe(300);
  });
});

describe('an adjustment', () => {
  it("brings Postgres's lots to Redis's, so a rebuild adds up and adjusted points expire", async () => {
    const { member, lostLot } = await memberWithLostEarn(60, 90);
    const report = await reconciler().run({ confirmDelayMs: 50 });
    expect(report.drifting.find((d) => d.userId === member.id)?.repaired).toBe('adjusted');

    const lots = await ctx.sql<Array<{ id: string; remaining: number; expiresAt: Date }>>`
      SELECT id, remaining, expires_at AS "expiresAt" FROM point_lots WHERE user_id = ${member.id} AND remaining > 0 ORDER BY id`;
    const live = await ctx.redis.hgetall(ctx.keys.lotRemaining(member.id));
    expect(Object.fromEntries(lots.map((l) => [l.id, String(l.remaining)]))).toEqual(live);
    const lostExpiry = Number(await ctx.redis.zscore(ctx.keys.lotsByExpiry(member.id), lostLot));
    expect(lots.find((l) => l.id === lostLot)?.expiresAt.getTime()).toBe(lostExpiry);

    // after a rebuild, lots still add up to the balance
    await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    const rebuilt = await ctx.redis.hvals(ctx.keys.lotRemaining(member.id));
    expect(rebuilt.reduce((s, v) => s + Number(v), 0)).toBe(150);
    expect(Number(await ctx.redis.hget(ctx.keys.account(member.id), 'avail'))).toBe(150);

    // and the adjusted points expire with their lot
    const expiry = new ExpiryService({ redis: ctx.redis, keys: ctx.keys });
    await expiry.expireDue({ nowMs: lostExpiry + 1 });
    expect(Number(await ctx.redis.hget(ctx.keys.account(member.id), 'avail'))).toBe(0);
    await pipeline.drain();
    const [{ sum }] = await ctx.sql`SELECT COALESCE(SUM(remaining), 0)::int AS sum FROM point_lots WHERE user_id = ${member.id}`;
    const [acct] = await ctx.sql`SELECT available FROM point_accounts WHERE user_id = ${member.id}`;
    expect(sum).toBe(0);
    expect(acct.available).toBe(0);
  });
});
