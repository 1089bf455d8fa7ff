/**
 * Crash test: the persist worker is a real process (workers/main.ts --only persist) and is
 * SIGKILLed twice inside the same batch's Postgres transaction — first on its first delivery,
 * then on its redelivery after the first crash (the job's second stall) — while the relay (in
 * process) keeps turning new ops into jobs and other batches keep being written. Both kills are
 * placed, not hoped for: the test holds an uncommitted insert of that batch's op ids, so a worker
 * writing it blocks inside its INSERT until the test lets go. After a final restart and drain,
 * every op the services acknowledged must be in the ledger exactly once, and every derived table
 * must agree with Redis.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/redis/client.ts';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import type { ReservedSql } from 'postgres';
import type { Op } from '../../src/points/op.ts';
import { Relay } from '../../workers/relay.ts';
import { createLogger } from '../../workers/logger.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { childEnv, killAll, sleep, spawnTs, waitUntil, type Child } from './procs.ts';

const LOCK_MS = 2000;
const MEMBERS = 80;
const GRANT = 100_000;
const PRICE = 10;
const SEED_ROUNDS = 10; // redemptions per member before the worker starts

let ctx: TestContext;
let queue: Queue | undefined;
let relay: Relay | undefined;
let producing = false;
let producer: Promise<void> | undefined;
const conns: Redis[] = [];
/** The test's own transaction holding the target batch's op ids (released by the test or afterAll). */
let holder: ReservedSql | undefined;

interface PersistJob {
  ops: Op[];
}

beforeAll(async () => {
  ctx = await createTestContext({ RELAY_BATCH: 60 });
});

afterAll(async () => {
  if (holder) {
    await holder`ROLLBACK`.catch(() => {});
    holder.release();
  }
  producing = false;
  await producer?.catch(() => {});
  await killAll();
  await relay?.stop().catch(() => {});
  await queue?.close().catch(() => {});
  for (const c of conns) c.disconnect();
  await ctx?.close();
});

describe('persist worker killed mid-batch', () => {
  it('loses and duplicates nothing across two SIGKILLs inside one batch, the second while its redelivery is being written', { timeout: 85_000 }, async () => {
    const { keys, redis, sql, app } = ctx;
    const t0 = Date.now();
    const marks: string[] = [];
    const mark = (what: string) => marks.push(`${what}@${((Date.now() - t0) / 1000).toFixed(1)}s`);
    const members = await ctx.createMembers(MEMBERS);
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: 1_000_000 });

    // Every op id a service call acknowledged, with its member and signed delta.
    const acked = new Map<string, { userId: number; delta: number }>();
    const redeemed = new Set<string>();
    const failures: string[] = [];
    const ack = (opId: string, userId: number, delta: number) => {
      expect(acked.has(opId), `op ${opId} acknowledged twice`).toBe(false);
      acked.set(opId, { userId, delta });
    };
    const redeem = async (userId: number, key: string) => {
      try {
        const { redemption } = await app.redemptions.redeem(userId, goods.id, 1, key);
        ack(redemption.id, userId, -PRICE);
        redeemed.add(redemption.id);
      } catch (err) {
        failures.push(`redeem ${userId}/${key}: ${(err as Error).message}`);
      }
    };

    // ---- seed: grants, earns, redemptions (all in the outbox before the relay starts)
    for (const m of members) {
      const { op } = await app.points.grant(0, m.id, GRANT, 'crash-test', `grant-${m.id}`);
      ack(op.opId, m.id, GRANT);
    }
    for (let i = 0; i < 3; i++) {
      await Promise.all(
        members.map(async (m) => {
          const { op } = await app.points.earn(m.id, 'share', `share-${i}`);
          // the member's tier multiplies rule earns: the acknowledged delta is what the API answered
          ack(op.opId, m.id, op.delta);
        }),
      );
    }
    for (let round = 0; round < SEED_ROUNDS; round++) {
      await Promise.all(members.map((m) => redeem(m.id, `seed-${round}`)));
    }
    const seeded = acked.size;
    mark('seeded');

    // ---- the relay runs in process for the whole test
    const log = createLogger('silent', 'crash-relay');
    const queueConn = createRedis(ctx.env.REDIS_URL, 'worker');
    const relayConn = createRedis(ctx.env.REDIS_URL, 'writer');
    conns.push(queueConn, relayConn);
    queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: keys.queuePrefix(PERSIST_QUEUE) });
    const gate = await ctx.gateFor(relayConn);
    relay = new Relay({ redis: relayConn, keys, queue, gate, batch: ctx.env.RELAY_BATCH, log, consumer: 'crash-relay' });
    await relay.start();

    // ---- a producer keeps acknowledging new redemptions while the worker crashes
    producing = true;
    let producerRound = 0;
    producer = (async () => {
      while (producing) {
        const round = producerRound++;
        await Promise.all(members.slice(0, 8).map((m) => redeem(m.id, `live-${round}`)));
        await sleep(150);
      }
    })();

    const workerEnv = childEnv(ctx.env, { LOG_LEVEL: 'info' });
    const workers: Child[] = [];
    const startWorker = async () => {
      const w = spawnTs(
        `persist#${workers.length + 1}`,
        'workers/main.ts',
        ['--only', 'persist', '--concurrency', '2', '--lock-ms', String(LOCK_MS)],
        workerEnv,
      );
      workers.push(w);
      await w.waitForOutput('"msg":"workers started"', 30_000);
      mark(`${w.name} up`);
      return w;
    };
    const ledgerRows = async () => (await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM ledger_entries`)[0].n;
    const qp = `${keys.queuePrefix(PERSIST_QUEUE)}:${PERSIST_QUEUE}`;
    const kills: string[] = [];

    // ---- the batch both kills land in. The test holds an uncommitted insert of that batch's op
    // ids in a transaction of its own: a worker writing the batch blocks inside its INSERT
    // (Postgres waits for the holder to end before it can decide the ON CONFLICT), so a SIGKILL
    // sent while it is blocked lands mid-transaction of exactly that batch. Other batches carry
    // other op ids and keep flowing.
    await waitUntil('the relay to queue every seeded op', async () => relay!.relayed >= seeded, 20_000, 20);
    const waiting = (await queue.getWaiting()).filter((j) => (j.data as PersistJob).ops.length > 0);
    expect(waiting.length, 'persist jobs queued before the worker starts').toBeGreaterThan(1);
    const target = waiting.reduce((a, b) => ((a.data as PersistJob).ops.length <= (b.data as PersistJob).ops.length ? a : b));
    const targetOps = (target.data as PersistJob).ops;
    holder = await sql.reserve();
    await holder`BEGIN`;
    const [{ pid: holderPid }] = await holder<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
    await holder`
      INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, created_at)
      SELECT t.op_id, t.user_id, 0, 0, 'adjust', 'persist-kill-holder', now()
      FROM unnest(${targetOps.map((o) => o.opId)}::text[], ${targetOps.map((o) => o.userId)}::bigint[]) AS t(op_id, user_id)`;
    const blockedByHolder = async () =>
      (
        await sql<Array<{ pid: number }>>`
          SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND ${holderPid}::int = ANY(pg_blocking_pids(pid))`
      ).map((r) => r.pid);
    const targetState = async () => {
      const r = await redis.multi().hget(`${qp}:${target.id}`, 'stc').lpos(`${qp}:active`, target.id!).hget(`${qp}:${target.id}`, 'finishedOn').exec();
      return { stalled: Number(r?.[0]?.[1] ?? 0), active: r?.[1]?.[1] !== null, finished: r?.[2]?.[1] !== null };
    };
    mark(`target ${target.id} (${targetOps.length} ops) held`);

    // 1: kill while the target batch is mid-transaction, after other batches were written
    let w = await startWorker();
    const k1 = await waitUntil(
      `${w.name} to be inside the target batch, with other batches written`,
      async () => {
        const [ghosts, rows] = await Promise.all([blockedByHolder(), ledgerRows()]);
        if (ghosts.length === 0 || rows === 0) return null;
        await w.kill9();
        mark(`${w.name} killed`);
        return { ghosts, rows, state: await targetState() };
      },
      30_000,
      5,
    );
    kills.push(`kill 1: ${k1.rows} ledger rows, target ${JSON.stringify(k1.state)}, backends left blocked ${k1.ghosts.join(',')}`);
    expect(k1.state, 'kill 1 left the target batch active, written by nobody').toEqual({ stalled: 0, active: true, finished: false });

    // 2: restart; once the dead worker's lock lapses the target batch is redelivered (its stalled
    // counter goes to 1) and the new worker blocks inside it in turn: kill it there
    w = await startWorker();
    const k2 = await waitUntil(
      `${w.name} to be inside the redelivered target batch`,
      async () => {
        const state = await targetState();
        if (state.stalled < 1 || !state.active) return null;
        const writers = (await blockedByHolder()).filter((pid) => !k1.ghosts.includes(pid));
        if (writers.length === 0) return null;
        await w.kill9();
        mark(`${w.name} killed`);
        return { writers, state };
      },
      30_000,
      5,
    );
    kills.push(`kill 2: inside the redelivered target (${JSON.stringify(k2.state)}, writer backends ${k2.writers.join(',')})`);
    expect(k2.state, 'kill 2 landed while the redelivered batch was being written').toEqual({ stalled: 1, active: true, finished: false });
    await holder`ROLLBACK`;
    holder.release();
    holder = undefined;

    // final life: stop producing, let everything drain
    w = await startWorker();
    const roundAtRestart = producerRound;
    await waitUntil('live redemptions alongside the last worker', async () => producerRound >= roundAtRestart + 2, 10_000);
    producing = false;
    await producer;
    await waitUntil(
      'the outbox and the persist queue to drain',
      async () => {
        const lens = await Promise.all(Array.from({ length: keys.partitions }, (_, p) => redis.xlen(keys.outbox(p))));
        const counts = await queue!.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
        return lens.reduce((a, b) => a + b, 0) + Object.values(counts).reduce((a, b) => a + b, 0) === 0;
      },
      45_000,
      100,
    );
    mark('drained');
    console.info(
      `[persist-kill] ${marks.join(' ')}; ${seeded} seeded + ${acked.size - seeded} live ops, ${await ledgerRows()} ledger rows; ${kills.join('; ')}; ` +
        `redelivered-duplicate batches logged: ${workers.map((x) => x.output().split('already persisted').length - 1).join('/')}`,
    );

    // ---- assertions
    expect(failures).toEqual([]);
    const targetEnd = await targetState();
    expect(targetEnd, 'the target batch was redelivered after both kills, then completed').toMatchObject({ active: false, finished: true });
    expect(targetEnd.stalled).toBeGreaterThanOrEqual(2);
    const failed = await queue.getFailed();
    expect(failed.map((j) => `${j.id}: ${j.failedReason}`), 'persist jobs given up').toEqual([]);

    const ledger = await sql<Array<{ op_id: string; user_id: number; delta: number; n: number }>>`
      SELECT op_id, min(user_id)::bigint AS user_id, sum(delta)::bigint AS delta, count(*)::int AS n
      FROM ledger_entries GROUP BY op_id`;
    expect(ledger.filter((r) => r.n !== 1), 'ledger rows per op').toEqual([]);
    const inLedger = new Map(ledger.map((r) => [r.op_id, r]));
    const missing = [...acked.keys()].filter((id) => !inLedger.has(id));
    expect(missing, 'acknowledged ops missing from the ledger').toEqual([]);
    expect(ledger.filter((r) => !acked.has(r.op_id)).map((r) => r.op_id), 'unacknowledged ledger rows').toEqual([]);
    const wrong = [...acked].filter(([id, a]) => {
      const row = inLedger.get(id)!;
      return Number(row.user_id) !== a.userId || Number(row.delta) !== a.delta;
    });
    expect(wrong, 'ledger rows with another member or delta than acknowledged').toEqual([]);

    const redemptionRows = await sql<Array<{ id: string }>>`SELECT id FROM redemptions`;
    expect(redemptionRows.length).toBe(redeemed.size);
    expect(new Set(redemptionRows.map((r) => r.id))).toEqual(redeemed);

    const [{ audits }] = await sql<Array<{ audits: number }>>`
      SELECT count(*)::int AS audits FROM audit_log WHERE action = 'points.grant'`;
    expect(audits).toBe(MEMBERS);

    const accounts = await sql<Array<{ user_id: number; available: number; total_earned: number }>>`
      SELECT user_id, available, total_earned FROM point_accounts`;
    const lots = await sql<Array<{ user_id: number; remaining: number }>>`
      SELECT user_id, sum(remaining)::bigint AS remaining FROM point_lots GROUP BY user_id`;
    const lotsBy = new Map(lots.map((l) => [Number(l.user_id), Number(l.remaining)]));
    const accountBy = new Map(accounts.map((a) => [Number(a.user_id), a]));
    const expected = new Map<number, number>();
    for (const a of acked.values()) expected.set(a.userId, (expected.get(a.userId) ?? 0) + a.delta);
    for (const m of members) {
      const [avail, earned] = await redis.hmget(keys.account(m.id), 'avail', 'earned');
      const row = accountBy.get(m.id)!;
      expect({ member: m.id, redis: Number(avail), pg: Number(row.available), lots: lotsBy.get(m.id) }).toEqual({
        member: m.id,
        redis: expected.get(m.id),
        pg: expected.get(m.id),
        lots: expected.get(m.id),
      });
      expect(Number(row.total_earned)).toBe(Number(earned));
    }
  });
});
