/**
 * Crash tests of the commission path with real processes (workers/main.ts under node, SIGKILLed):
 *   - the engagement worker killed inside the transaction that derives a redemption's commissions,
 *     and again after it credited a commission but before it recorded the payout as paid — each
 *     kill placed, not hoped for: the test holds an uncommitted row the worker must wait on (the
 *     payout's slot, then the push's dedupe key, which is written between the credit and the
 *     bookkeeping);
 *   - two engagement workers racing for a task reward, both killed while one of them has credited
 *     it and not yet recorded it;
 *   - the persist worker and the engagement worker killed while redemptions keep coming.
 * Afterwards every redemption has paid each commission exactly once: one payout, one ledger op,
 * balances that add up.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ReservedSql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/redis/client.ts';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { Relay } from '../../workers/relay.ts';
import { createLogger } from '../../workers/logger.ts';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';
import { childEnv, killAll, sleep, spawnTs, waitUntil, type Child } from '../crash/procs.ts';
import { waitForDrain } from '../support/persisted.ts';
import { ledgerOf } from './support.ts';
import { periodsOf } from '../../src/engagement/business-day.ts';

let ctx: TestContext;
const held: ReservedSql[] = [];
const conns: Redis[] = [];
let queue: Queue | undefined;
let relay: Relay | undefined;

beforeAll(async () => {
  ctx = await createTestContext({ RELAY_BATCH: 50 });
  // commissions only: no task rewards in these ledgers
  await ctx.sql`DELETE FROM tasks`;
});

afterAll(async () => {
  for (const h of held) {
    await h`ROLLBACK`.catch(() => {});
    h.release();
  }
  await killAll();
  await relay?.stop().catch(() => {});
  await queue?.close().catch(() => {});
  for (const c of conns) c.disconnect();
  await ctx?.close();
});

const workerEnv = () => childEnv(ctx.env, { LOG_LEVEL: 'info', ENGAGEMENT_EVERY_MS: 100 });
let spawned = 0;
async function start(role: 'engagement' | 'persist'): Promise<Child> {
  const args = role === 'persist' ? ['--only', 'persist', '--concurrency', '2', '--lock-ms', '2000'] : ['--only', 'engagement'];
  const w = spawnTs(`${role}#${++spawned}`, 'workers/main.ts', args, workerEnv());
  await w.waitForOutput('"msg":"workers started"', 30_000);
  return w;
}

/** A referrer chain top ← mid ← buyers (ids rise along it, as sign-ups make them). */
async function chain(buyers: number) {
  const [top, mid, ...rest] = (await ctx.createMembers(2 + buyers)).sort((a, b) => a.id - b.id);
  await ctx.sql`INSERT INTO referrals (user_id, referrer_id) VALUES (${mid.id}, ${top.id})`;
  for (const b of rest) await ctx.sql`INSERT INTO referrals (user_id, referrer_id) VALUES (${b.id}, ${mid.id})`;
  return { top, mid, buyers: rest };
}

/** Holds an uncommitted write in a transaction of the test's own; the worker that needs that row waits. */
async function hold(write: (h: ReservedSql) => Promise<unknown>): Promise<ReservedSql> {
  const h = await ctx.sql.reserve();
  held.push(h);
  await h`BEGIN`;
  await write(h);
  return h;
}

async function release(h: ReservedSql): Promise<void> {
  await h`ROLLBACK`;
  h.release();
  held.splice(held.indexOf(h), 1);
}

/** Backends of other sessions waiting on a lock in a statement that mentions `table`. */
async function waitingOn(table: string): Promise<number[]> {
  const rows = await ctx.sql<Array<{ pid: number }>>`
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
      AND query ILIKE ${`%INSERT INTO ${table}%`}`;
  return rows.map((r) => r.pid);
}

const avail = async (id: number) => Number(await ctx.redis.hget(ctx.keys.account(id), 'avail'));

describe('commissions with killed workers', () => {
  it('pays a commission once when the engagement worker is killed -9 while deriving it and again between its credit and its bookkeeping', { timeout: 90_000 }, async () => {
    const pipeline = await ctx.startPipeline();
    const { top, mid, buyers } = await chain(1);
    const [buyer] = buyers;
    await ctx.grant(buyer.id, 1000);
    const goods = await ctx.createGoods({ pointsPrice: 1000, stock: 5 });
    const res = await redeemAs(ctx, buyer.token, goods.id, 'kill-redeem');
    expect(res.statusCode, res.body).toBe(201);
    const source = res.json().id as string;
    await pipeline.drain();
    const [{ sourceRow }] = await ctx.sql<Array<{ sourceRow: number }>>`SELECT id AS "sourceRow" FROM ledger_entries WHERE op_id = ${source}`;

    // kill 1: inside the page that derives the commissions, before its commit
    const slotHold = await hold(
      (h) => h`INSERT INTO engagement_payouts (slot, user_id, biz_type, biz_id, direction, points)
               VALUES (${`commission:${source}`}, ${mid.id}, 'held', 'held', 'credit', 1)`,
    );
    let w = await start('engagement');
    await waitUntil(`${w.name} to wait inside the deriving transaction`, async () => (await waitingOn('engagement_payouts')).length > 0, 20_000, 10);
    await w.kill9();
    await release(slotHold);
    const [wm] = await ctx.sql<Array<{ ledgerId: number }>>`SELECT ledger_id AS "ledgerId" FROM engagement_watermarks`;
    expect(wm.ledgerId, 'the watermark did not pass the redemption').toBeLessThan(sourceRow);
    expect(await ctx.sql`SELECT slot FROM engagement_payouts WHERE source_op_id = ${source}`).toEqual([]);

    // kill 2: the level-1 commission is credited in Redis, its payout not yet marked paid
    const midBefore = await avail(mid.id);
    const pushHold = await hold(
      (h) => h`INSERT INTO push_records (user_id, type, title, body, dedupe_key, status)
               VALUES (${mid.id}, 'held', 'held', 'held', ${`payout:commission:${source}`}, 'sent')`,
    );
    w = await start('engagement');
    await waitUntil(`${w.name} to wait between the credit and the bookkeeping`, async () => (await waitingOn('push_records')).length > 0, 20_000, 10);
    expect(await avail(mid.id), 'the commission was credited before the kill').toBe(midBefore + 50);
    await w.kill9();
    await release(pushHold);
    const pending = await ctx.sql`SELECT status FROM engagement_payouts WHERE slot = ${`commission:${source}`}`;
    expect(pending).toEqual([{ status: 'pending' }]);

    // a last life settles it
    w = await start('engagement');
    await waitUntil(
      'both commissions paid',
      async () => (await ctx.sql`SELECT 1 FROM engagement_payouts WHERE source_op_id = ${source} AND status = 'paid'`).length === 2,
      20_000,
    );
    await w.kill9();
    await pipeline.drain();

    const payouts = await ctx.sql<Array<{ slot: string; opId: string; settled: number }>>`
      SELECT slot, op_id AS "opId", settled FROM engagement_payouts WHERE source_op_id = ${source} ORDER BY slot`;
    const l1 = await ledgerOf(ctx.sql, mid.id, 'referral_commission');
    const l2 = await ledgerOf(ctx.sql, top.id, 'referral_commission_2');
    expect(l1).toEqual([{ opId: payouts[1].opId, delta: 50, bizId: source }]);
    expect(l2).toEqual([{ opId: payouts[0].opId, delta: 20, bizId: source }]);
    expect(payouts.map((p) => [p.slot, p.settled])).toEqual([
      [`commission2:${source}`, 20],
      [`commission:${source}`, 50],
    ]);
    expect(await avail(mid.id)).toBe(midBefore + 50);
    expect(await avail(top.id)).toBe(20);
    const pushes = await ctx.sql`SELECT 1 FROM push_records WHERE dedupe_key = ${`payout:commission:${source}`}`;
    expect(pushes).toHaveLength(1);
    await pipeline.stop();
  });

  it('pays a task reward once with two engagement workers racing, both killed -9 while one holds the credited reward unrecorded', { timeout: 90_000 }, async () => {
    const pipeline = await ctx.startPipeline();
    await ctx.sql`INSERT INTO tasks (key, title, frequency, event, target, reward) VALUES ('kill_checkin', 'Check in', 'daily', 'checkin', 1, 30)`;
    const [m] = await ctx.createMembers(1);
    const { op } = await ctx.app.points.creditRule(m.id, { bizType: 'checkin', bizId: 'kill', points: 10, key: 'kill-checkin', expiryDays: 365 });
    await pipeline.drain();
    const slot = `task:kill_checkin:${m.id}:${periodsOf(ctx.env.BUSINESS_TIMEZONE, op.at).day}`;
    const pushHold = await hold(
      (h) => h`INSERT INTO push_records (user_id, type, title, body, dedupe_key, status)
               VALUES (${m.id}, 'held', 'held', 'held', ${`payout:${slot}`}, 'sent')`,
    );
    let pair = await Promise.all([start('engagement'), start('engagement')]);
    await waitUntil('a worker to wait between the credit and the bookkeeping', async () => (await waitingOn('push_records')).length > 0, 20_000, 10);
    expect(await avail(m.id), 'the reward was credited before the kills').toBe(40);
    await Promise.all(pair.map((w) => w.kill9()));
    await release(pushHold);
    expect(await ctx.sql`SELECT status FROM engagement_payouts WHERE slot = ${slot}`).toEqual([{ status: 'pending' }]);

    pair = await Promise.all([start('engagement'), start('engagement')]);
    await waitUntil('the reward recorded as paid', async () => (await ctx.sql`SELECT 1 FROM engagement_payouts WHERE slot = ${slot} AND status = 'paid'`).length === 1, 20_000);
    await Promise.all(pair.map((w) => w.kill9()));
    await pipeline.drain();
    expect(await ledgerOf(ctx.sql, m.id, 'task')).toEqual([expect.objectContaining({ bizId: 'kill_checkin', delta: 30 })]);
    expect(await avail(m.id)).toBe(40);
    expect(await ctx.sql`SELECT progress FROM task_progress WHERE user_id = ${m.id}`).toEqual([{ progress: 1 }]);
    expect(await ctx.sql`SELECT 1 FROM push_records WHERE dedupe_key = ${`payout:${slot}`}`).toHaveLength(1);
    await ctx.sql`DELETE FROM tasks`;
    await pipeline.stop();
  });

  it('stops on SIGTERM after the pass in flight, exit code 0', { timeout: 40_000 }, async () => {
    const w = await start('engagement');
    await w.waitForOutput('"msg":"engagement role started"');
    const exited = once(w.proc, 'exit');
    w.proc.kill('SIGTERM');
    const [code] = await exited;
    expect(code, w.output().slice(-2000)).toBe(0);
    expect(w.output()).toContain('"msg":"stopped"');
  });

  it('pays each commission once with the persist worker and the engagement worker killed -9 while redemptions keep coming', { timeout: 200_000 }, async () => {
    const PRICE = 210; // 5%: 10 (floor 10.5), 2%: 4 (floor 4.2)
    const { top, mid, buyers } = await chain(12);
    const [topBefore, midBefore] = [await avail(top.id), await avail(mid.id)];
    for (const b of buyers) await ctx.grant(b.id, 10_000 * PRICE);
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: 100_000 });

    const queueConn = createRedis(ctx.env.REDIS_URL, 'worker');
    const relayConn = createRedis(ctx.env.REDIS_URL, 'writer');
    conns.push(queueConn, relayConn);
    queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
    relay = new Relay({
      redis: relayConn,
      keys: ctx.keys,
      queue,
      gate: await ctx.gateFor(relayConn),
      batch: ctx.env.RELAY_BATCH,
      log: createLogger('silent', 'kill-relay'),
      consumer: 'kill-relay',
    });
    await relay.start();

    const redeemed: string[] = [];
    const refused: string[] = [];
    let producing = true;
    const producer = (async () => {
      for (let round = 0; producing; round++) {
        const answers = await Promise.all(buyers.map((b) => redeemAs(ctx, b.token, goods.id, `live-${b.id}-${round}-${randomBytes(3).toString('hex')}`)));
        for (const a of answers) {
          if (a.statusCode === 201) redeemed.push(a.json().id);
          else refused.push(`${a.statusCode} ${a.body}`);
        }
        // paced so the backlog a loaded machine builds during the kills stays bounded
        await sleep(200);
      }
    })();

    let persist = await start('persist');
    let engagement = await start('engagement');
    const paidCount = async () => (await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM engagement_payouts WHERE status = 'paid'`)[0].n;
    await waitUntil('commissions being paid', async () => (await paidCount()) > 20, 30_000);
    await persist.kill9();
    persist = await start('persist');
    await waitUntil('commissions paid after the persist worker came back', async () => (await paidCount()) > 60, 30_000);
    await engagement.kill9();
    engagement = await start('engagement');
    await waitUntil('commissions paid after the engagement worker came back', async () => (await paidCount()) > 100, 30_000);
    await engagement.kill9();
    await persist.kill9();
    persist = await start('persist');
    engagement = await start('engagement');
    producing = false;
    await producer;
    expect(refused, 'redemptions refused').toEqual([]);

    await waitForDrain(ctx.redis, ctx.keys, queue);
    await waitUntil(
      'every redemption followed and every payout paid',
      async () => {
        const [s] = await ctx.sql<Array<{ done: boolean }>>`
          SELECT (SELECT ledger_id FROM engagement_watermarks) >= (SELECT max(id) FROM ledger_entries)
             AND NOT EXISTS (SELECT 1 FROM engagement_payouts WHERE status = 'pending') AS done`;
        return s.done;
      },
      // the follower catches up on 2 cores shared with the rest of the suite: correctness, not speed
      110_000,
      100,
    );
    await waitForDrain(ctx.redis, ctx.keys, queue);
    await engagement.kill9();
    await persist.kill9();

    const n = redeemed.length;
    const payouts = await ctx.sql<Array<{ slot: string; sourceOpId: string; settled: number; status: string }>>`
      SELECT slot, source_op_id AS "sourceOpId", settled, status FROM engagement_payouts WHERE user_id IN (${top.id}, ${mid.id})`;
    expect(payouts.length).toBe(2 * n);
    const bySlot = new Map(payouts.map((p) => [p.slot, p]));
    const missing = redeemed.filter((id) => bySlot.get(`commission:${id}`)?.settled !== 10 || bySlot.get(`commission2:${id}`)?.settled !== 4);
    expect(missing, 'redemptions without exactly their two commissions').toEqual([]);

    const l1 = await ledgerOf(ctx.sql, mid.id, 'referral_commission');
    const l2 = await ledgerOf(ctx.sql, top.id, 'referral_commission_2');
    expect(l1.length).toBe(n);
    expect(l2.length).toBe(n);
    expect(new Set(l1.map((r) => r.bizId)).size).toBe(n);
    expect(new Set(l2.map((r) => r.bizId)).size).toBe(n);
    expect(await avail(mid.id)).toBe(midBefore + 10 * n);
    expect(await avail(top.id)).toBe(topBefore + 4 * n);
    const [{ persisted }] = await ctx.sql<Array<{ persisted: number }>>`
      SELECT count(*)::int AS persisted FROM ledger_entries WHERE op_id = ANY(${redeemed}::text[])`;
    expect(persisted).toBe(n);
  });
});
