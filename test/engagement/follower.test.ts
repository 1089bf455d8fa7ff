/**
 * The engagement follower derives each persisted row exactly once: two followers racing each
 * other (and the persist workers) count every op once and pay every completion once; a persist
 * batch that took lower ids but commits after a later one is waited for, not skipped; a page that
 * fails before its commit derives nothing; a payer that died between the credit and its
 * bookkeeping is finished without crediting again, also once the credit's Redis record is gone.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client.ts';
import { keyHash } from '../../src/points/idempotency.ts';
import { EPOCH_LOCK } from '../../src/recovery/redis-epoch.ts';
import { insertPayouts } from '../../src/rewards/payouts.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { sleep } from '../crash/procs.ts';
import { followerFor, ledgerOf, progressOf, settle } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
const pools: Array<ReturnType<typeof createDb>> = [];

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline(4);
  await ctx.sql`DELETE FROM tasks WHERE key <> 'daily_checkin'`;
});
afterAll(async () => {
  for (const p of pools) await p.close();
  await ctx?.close();
});

const checkin = (userId: number) =>
  ctx.app.points.creditRule(userId, { bizType: 'checkin', bizId: 'test', points: 10, key: `checkin:${randomBytes(6).toString('hex')}`, expiryDays: 365 });

describe('engagement follower', () => {
  it('counts every op once and pays every completion once with two followers racing the persist workers', { timeout: 60_000 }, async () => {
    const members = await ctx.createMembers(40);
    const followers = [0, 1].map(() => {
      const db = createDb(ctx.env.DATABASE_URL, 3, ctx.env);
      pools.push(db);
      return followerFor(ctx, { sql: db.sql, batch: 7 });
    });
    let running = true;
    const loops = followers.map(async (f) => {
      while (running) {
        await f.pass();
        await sleep(5);
      }
    });
    for (let round = 0; round < 3; round++) {
      await Promise.all(members.map((m) => checkin(m.id)));
      await sleep(30);
    }
    await pipeline.drain();
    running = false;
    await Promise.all(loops);
    await settle(pipeline, followers[0]);
    await followers[1].pass();

    const [{ rows, total }] = await ctx.sql<Array<{ rows: number; total: number }>>`
      SELECT count(*)::int AS rows, COALESCE(sum(progress), 0)::int AS total FROM task_progress WHERE task_key = 'daily_checkin'`;
    expect({ rows, total }).toEqual({ rows: 40, total: 120 });
    const rewards = await ctx.sql<Array<{ userId: number; n: number }>>`
      SELECT user_id AS "userId", count(*)::int AS n FROM ledger_entries WHERE biz_type = 'task' GROUP BY user_id`;
    expect(rewards.length).toBe(40);
    expect(rewards.filter((r) => r.n !== 1)).toEqual([]);
    const [wm] = await ctx.sql<Array<{ ledgerId: number }>>`SELECT ledger_id AS "ledgerId" FROM engagement_watermarks`;
    const [{ max }] = await ctx.sql<Array<{ max: number }>>`SELECT max(id)::bigint AS max FROM ledger_entries`;
    expect(wm.ledgerId).toBe(max);
  });

  it('waits for a batch that took lower ledger ids but commits after a later one, instead of skipping it', async () => {
    const [early, late] = await ctx.createMembers(2);
    const follower = followerFor(ctx);
    await settle(pipeline, follower);
    // a persist batch in flight: it holds the epoch lock shared and has its ledger id, uncommitted
    const held = await ctx.sql.reserve();
    await held`BEGIN`;
    await held`SELECT pg_advisory_xact_lock_shared(${EPOCH_LOCK})`;
    await held`
      INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, created_at)
      VALUES (${`held-${early.id}`}, ${early.id}, 10, 10, 'earn', 'checkin', 'test', now())`;
    try {
      await checkin(late.id);
      await pipeline.drain(); // the later batch commits with a higher id
      let done = false;
      const pass = follower.pass().then((r) => {
        done = true;
        return r;
      });
      await sleep(300);
      expect(done, 'the pass waited for the batch in flight').toBe(false);
      await held`COMMIT`;
      await pass;
    } finally {
      await held`ROLLBACK`.catch(() => {});
      held.release();
    }
    await settle(pipeline, follower);
    expect(Object.values(await progressOf(ctx.sql, early.id, 'daily_checkin'))).toEqual([{ progress: 1, completed: true }]);
    expect(Object.values(await progressOf(ctx.sql, late.id, 'daily_checkin'))).toEqual([{ progress: 1, completed: true }]);
  });

  it('derives nothing from a page that fails before its commit, and the page once on the next pass', async () => {
    const [m] = await ctx.createMembers(1);
    const follower = followerFor(ctx);
    await settle(pipeline, follower);
    await checkin(m.id);
    await pipeline.drain();
    const slot = `task:daily_checkin:${m.id}:${new Date().toISOString().slice(0, 10)}`;
    // another transaction holds the payout's slot: the page's insert waits on it until lock_timeout
    const db = createDb(ctx.env.DATABASE_URL, 2, { ...ctx.env, DATABASE_LOCK_TIMEOUT_MS: 300 });
    pools.push(db);
    const held = await ctx.sql.reserve();
    await held`BEGIN`;
    await insertPayouts(held as never, [{ slot, userId: m.id, bizType: 'task', bizId: 'daily_checkin', direction: 'credit', points: 1 }]);
    try {
      await expect(followerFor(ctx, { sql: db.sql }).pass()).rejects.toThrow(/lock timeout/);
    } finally {
      await held`ROLLBACK`;
      held.release();
    }
    expect(await progressOf(ctx.sql, m.id, 'daily_checkin')).toEqual({});
    await settle(pipeline, follower);
    expect(Object.values(await progressOf(ctx.sql, m.id, 'daily_checkin'))).toEqual([{ progress: 1, completed: true }]);
    expect(await ledgerOf(ctx.sql, m.id, 'task')).toEqual([expect.objectContaining({ delta: 10 })]);
  });

  it('finishes a payout whose credit happened before the payer died, without crediting again', async () => {
    const [m, n] = await ctx.createMembers(2);
    const follower = followerFor(ctx);
    // m: the op is not persisted yet, Redis replays it; n: persisted, and its Redis record is gone
    for (const [member, persisted] of [
      [m, false],
      [n, true],
    ] as const) {
      const slot = `task:by-hand:${member.id}:once`;
      await ctx.sql.begin((tx) =>
        insertPayouts(tx, [{ slot, userId: member.id, bizType: 'task', bizId: 'by-hand', direction: 'credit', points: 25, rule: true }]),
      );
      // the payer credited under the slot's key, then died before marking the payout paid
      const { op } = await ctx.app.points.creditRule(member.id, { bizType: 'task', bizId: 'by-hand', points: 25, key: slot, expiryDays: 365 });
      if (persisted) {
        await pipeline.drain();
        await ctx.redis.del(ctx.keys.idem(member.id, keyHash(slot, 'sys')));
      }
      await follower.pass();
      await pipeline.drain();
      const [p] = await ctx.sql<Array<{ status: string; opId: string; settled: number }>>`
        SELECT status, op_id AS "opId", settled FROM engagement_payouts WHERE slot = ${slot}`;
      expect(p).toEqual({ status: 'paid', opId: op.opId, settled: 25 });
      expect(await ledgerOf(ctx.sql, member.id, 'task')).toEqual([expect.objectContaining({ opId: op.opId, delta: 25 })]);
      expect(Number(await ctx.redis.hget(ctx.keys.account(member.id), 'avail'))).toBe(25);
    }
  });
});
