/**
 * Relays sharing the outbox through one consumer group.
 *
 * Killed: the relay is a real process (workers/main.ts --only relay); once it has relayed some of
 * a live stream of writes it is SIGKILLed while it holds entries it has read but not acknowledged
 * — they stay pending under its consumer name. A kill that lands between two passes (nothing
 * pending) is followed by another start and kill.
 * Another relay, under another consumer name, can only get those entries with XAUTOCLAIM once
 * they have been idle RELAY_CLAIM_IDLE_MS; it must, and every acknowledged op must reach the
 * ledger exactly once — including entries the dead relay had already put into a job before it
 * died (they are relayed a second time, and Postgres's unique op_id drops the copy).
 *
 * Two at once: two relays (different consumer names) run side by side under live writes. Each
 * entry is relayed by exactly one of them, both take part, and every op is persisted once.
 */
import { hostname } from 'node:os';
import { Queue, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseOp } from '../../src/points/op.ts';
import { PERSIST_QUEUE, RELAY_GROUP } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { createLogger } from '../../workers/logger.ts';
import { startPersistWorker } from '../../workers/persist.ts';
import { Relay } from '../../workers/relay.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectBalancesMatch, expectLedgerExactlyOnce, waitForDrain, type AckedOp } from '../support/persisted.ts';
import { childEnv, killAll, sleep, spawnTs, waitUntil } from './procs.ts';

const MEMBERS = 60;
const GRANT = 1_000_000;
const PRICE = 10;
const CLAIM_IDLE_MS = 1000;
const MAX_KILLS = 5;

let ctx: TestContext;
let queue: Queue;
let persist: Worker | undefined;
const relays: Relay[] = [];
const conns: Redis[] = [];
let producing = false;
let producer: Promise<void> | undefined;

const conn = () => {
  const c = createRedis(ctx.env.REDIS_URL, 'worker');
  conns.push(c);
  return c;
};

beforeEach(async () => {
  ctx = await createTestContext({ RELAY_BATCH: 500 });
  queue = new Queue(PERSIST_QUEUE, { connection: conn(), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
});

afterEach(async () => {
  producing = false;
  await producer?.catch(() => {});
  await killAll();
  for (const r of relays.splice(0)) await r.stop().catch(() => {});
  await persist?.close().catch(() => {});
  persist = undefined;
  await queue?.close().catch(() => {});
  for (const c of conns.splice(0)) c.disconnect();
  await ctx?.close();
});

/** Members with GRANT points, one goods item, and the bookkeeping of what was acknowledged. */
async function setup() {
  const members = await ctx.createMembers(MEMBERS);
  const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: 10_000_000 });
  const acked = new Map<string, AckedOp>();
  const failures: string[] = [];
  for (const m of members) {
    const { op } = await ctx.app.points.grant(0, m.id, GRANT, 'relay-test', `grant-${m.id}`);
    acked.set(op.opId, { userId: m.id, delta: GRANT });
  }
  const redeem = async (userId: number, key: string) => {
    try {
      const { redemption } = await ctx.app.redemptions.redeem(userId, goods.id, 1, key);
      if (acked.has(redemption.id)) failures.push(`${redemption.id} acknowledged twice`);
      acked.set(redemption.id, { userId, delta: -PRICE });
    } catch (err) {
      failures.push(`redeem ${userId}/${key}: ${(err as Error).message}`);
    }
  };
  /** One redemption per member, all at once. */
  const round = (tag: string) => Promise.all(members.map((m) => redeem(m.id, tag)));
  return { members, acked, failures, round };
}

function startPersist() {
  persist = startPersistWorker({
    connection: conn(),
    prefix: ctx.keys.queuePrefix(PERSIST_QUEUE),
    sql: ctx.sql,
    concurrency: 2,
    log: createLogger('silent', 'persist'),
  });
}

async function newRelay(consumer: string, claimIdleMs?: number) {
  const redis = createRedis(ctx.env.REDIS_URL, 'writer');
  conns.push(redis);
  const relay = new Relay({
    redis,
    gate: await ctx.gateFor(redis),
    keys: ctx.keys,
    queue: new Queue(PERSIST_QUEUE, { connection: conn(), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) }),
    batch: ctx.env.RELAY_BATCH,
    log: createLogger('silent', consumer),
    consumer,
    claimIdleMs,
  });
  relays.push(relay);
  return relay;
}

/** Outbox entries pending (read, not acknowledged) under `consumer`, across every partition. */
async function pendingUnder(consumer: string): Promise<Array<{ p: number; id: string }>> {
  const { redis, keys } = ctx;
  const tx = redis.multi();
  for (let p = 0; p < keys.partitions; p++) tx.xpending(keys.outbox(p), RELAY_GROUP, '-', '+', 100_000, consumer);
  const res = (await tx.exec()) ?? [];
  return res.flatMap(([err, rows], p) => (err ? [] : (rows as Array<[string]>).map(([id]) => ({ p, id }))));
}

describe('relays sharing the outbox', () => {
  it('a relay killed -9 with entries in hand: another relay claims them (XAUTOCLAIM) and every op is persisted exactly once', { timeout: 85_000 }, async () => {
    const { redis, keys, sql } = ctx;
    const { members, acked, failures, round } = await setup();
    for (let r = 0; r < 5; r++) await round(`backlog-${r}`);
    startPersist();

    producing = true;
    let rounds = 0;
    producer = (async () => {
      while (producing) {
        await round(`live-${rounds++}`);
        await sleep(20); // a steady stream, not a flood
      }
    })();

    // the relay process reads under the consumer name every relay on this host uses
    const deadConsumer = `relay-${hostname()}`;
    const jobCount = async () => Object.values(await queue.getJobCounts('wait', 'active', 'completed', 'delayed')).reduce((x, y) => x + y, 0);
    const env = childEnv(ctx.env, { LOG_LEVEL: 'info', RELAY_CLAIM_IDLE_MS: 30_000 });
    const tries: string[] = [];
    let left: Array<{ p: number; id: string }> = [];
    for (let t = 1; left.length === 0; t++) {
      if (t > MAX_KILLS) throw new Error(`no kill landed with entries pending in ${MAX_KILLS} tries: ${tries.join('; ')}`);
      const relay = spawnTs(`relay#${t}`, 'workers/main.ts', ['--only', 'relay'], env);
      const jobsBefore = await jobCount();
      await waitUntil(
        `relay#${t} to hold outbox entries, after relaying some`,
        async () => {
          if (relay.exited()) throw new Error(`relay#${t} exited:\n${relay.output().slice(-4000)}`);
          if ((await jobCount()) === jobsBefore || (await pendingUnder(deadConsumer)).length === 0) return false;
          await relay.kill9();
          return true;
        },
        30_000,
        1,
      );
      left = await pendingUnder(deadConsumer);
      tries.push(`relay#${t}: ${left.length} entries pending after the kill`);
    }
    expect(left.length, 'entries left pending by the killed relay').toBeGreaterThan(0);

    // what the dead relay held, and how much of it it had already handed to a persist job
    const heldOps = new Set<string>();
    for (const { p, id } of left) {
      const [entry] = await redis.xrange(keys.outbox(p), id, id);
      heldOps.add(parseOp(entry[1][1]).opId);
    }
    const jobs = await queue.getJobs(['wait', 'active', 'completed', 'delayed']);
    const alreadyInJob = [...heldOps].filter((id) => jobs.some((j) => (j.data as { ops: Array<{ opId: string }> }).ops.some((o) => o.opId === id)));

    // another relay, another name: only XAUTOCLAIM can hand it the dead relay's entries
    const survivor = await newRelay('relay-survivor', CLAIM_IDLE_MS);
    await survivor.start();
    await waitUntil('the survivor to claim the dead relay’s entries', async () => (await pendingUnder(deadConsumer)).length === 0, 20_000, 50);
    const claimedAt = rounds;
    await waitUntil('live writes after the claim', async () => rounds >= claimedAt + 2, 20_000);
    producing = false;
    await producer;
    await waitForDrain(redis, keys, queue);
    console.info(
      `[relay-kill] ${tries.join('; ')}; ${heldOps.size} ops held by the dead relay, ${alreadyInJob.length} of them in a job not completed yet (a completed job keeps no ops); ` +
        `survivor relayed ${survivor.relayed}; ${acked.size} ops acknowledged`,
    );

    expect(failures).toEqual([]);
    expect(survivor.relayed, 'ops the survivor relayed').toBeGreaterThanOrEqual(heldOps.size);
    const [{ n }] = await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM ledger_entries WHERE op_id = ANY(${[...heldOps]}::text[])`;
    expect(n, 'ops held by the dead relay, in the ledger once each').toBe(heldOps.size);
    await expectLedgerExactlyOnce(sql, queue, acked);
    await expectBalancesMatch(sql, redis, keys, members.map((m) => m.id), acked);
  });

  it('two relays at once under live writes: each entry relayed by one of them, every op persisted once', { timeout: 60_000 }, async () => {
    const { redis, keys, sql } = ctx;
    const { members, acked, failures, round } = await setup();
    startPersist();
    const a = await newRelay('relay-a');
    const b = await newRelay('relay-b');
    await Promise.all([a.start(), b.start()]);

    for (let r = 0; r < 40; r++) await round(`live-${r}`);
    await waitForDrain(redis, keys, queue);
    console.info(`[two relays] ${acked.size} ops: relay-a relayed ${a.relayed}, relay-b ${b.relayed}`);

    expect(failures).toEqual([]);
    expect({ a: a.relayed > 0, b: b.relayed > 0 }, 'both relays took part').toEqual({ a: true, b: true });
    expect(a.relayed + b.relayed, 'entries relayed, in all').toBe(acked.size);
    await expectLedgerExactlyOnce(sql, queue, acked);
    await expectBalancesMatch(sql, redis, keys, members.map((m) => m.id), acked);
  });
});
