/**
 * Leaderboard dedupe through the relay: each earn counts once whatever the relay does (dies
 * between the boards and the ack, is restarted, is replaced through XAUTOCLAIM, runs next to
 * another relay on the same consumer group), and the dedupe state stays bounded: it holds the
 * entries in flight, not one marker per earn ever relayed.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { applyToBoards } from '../src/leaderboards/apply.ts';
import { parseOp, type Op } from '../src/points/op.ts';
import { PERSIST_QUEUE, RELAY_GROUP } from '../src/queues.ts';
import { createRedis } from '../src/redis/client.ts';
import { Relay } from '../workers/relay.ts';
import { createLogger } from '../workers/logger.ts';
import { createTestContext, type TestContext } from './support/context.ts';
import { scanAll } from './support/scan.ts';

let ctx: TestContext;
let queue: Queue;
/** The process's write gate, as workers/main.ts gives every relay. */
let gate: RedisGate;
const connections: Redis[] = [];
const log = createLogger('silent', 'test');

beforeAll(async () => {
  ctx = await createTestContext();
  queue = new Queue(PERSIST_QUEUE, { connection: connection(), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
  const writer = createRedis(ctx.env.REDIS_URL, 'writer');
  connections.push(writer);
  gate = await ctx.gateFor(writer);
});
afterAll(async () => {
  await queue?.close();
  for (const c of connections) c.disconnect();
  await ctx?.close();
});

function connection(): Redis {
  const c = createRedis(ctx.env.REDIS_URL, 'worker');
  connections.push(c);
  return c;
}

/**
 * A relay as the worker role runs it. `dies`: it fails after the boards, before adding the job
 * and acking, every time (its entries stay pending, as when the process is killed there).
 */
function relay(consumer: string, o: { dies?: boolean; batch?: number } = {}): Relay {
  const q = o.dies
    ? ({ add: async () => Promise.reject(new Error('relay killed before the job was added')) } as unknown as Queue)
    : queue;
  return new Relay({ redis: connection(), keys: ctx.keys, queue: q, gate, batch: o.batch ?? 500, log, consumer });
}

/** Large enough that one read takes every entry of a partition, so a dying relay holds them all. */
const WHOLE = 20_000;

let nextUser = 1_000_000;

/** Appends earn ops to the outboxes as the earn script does; returns the points expected per member. */
async function appendEarns(n: number, members = 40): Promise<Map<number, number>> {
  const users = Array.from({ length: members }, () => nextUser++);
  const expected = new Map<number, number>();
  for (let start = 0; start < n; start += 1000) {
    const p = ctx.redis.pipeline();
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const userId = users[i % members];
      const delta = 1 + (i % 7);
      expected.set(userId, (expected.get(userId) ?? 0) + delta);
      const op = {
        opId: randomBytes(16).toString('hex'),
        kind: 'earn',
        userId,
        delta,
        balanceAfter: delta,
        available: delta,
        bizType: 'rule',
        bizId: 'share',
        at: Date.now(),
        h: 'h',
      };
      p.xadd(ctx.keys.outboxOf(userId), '*', 'o', JSON.stringify(op));
    }
    await p.exec();
  }
  return expected;
}

async function allTimePoints(users: Iterable<number>): Promise<Map<number, number>> {
  const ids = [...users];
  const scores = await Promise.all(ids.map((u) => ctx.redis.zscore(ctx.keys.board('all', 'all'), String(u))));
  return new Map(ids.map((u, i) => [u, Number(scores[i] ?? 0)]));
}

async function boardsShow(expected: Map<number, number>): Promise<boolean> {
  const actual = await allTimePoints(expected.keys());
  return [...expected].every(([u, pts]) => actual.get(u) === pts);
}

async function outboxBacklog(): Promise<number> {
  const lens = await Promise.all(Array.from({ length: ctx.keys.partitions }, (_, p) => ctx.redis.xlen(ctx.keys.outbox(p))));
  return lens.reduce((a, b) => a + b, 0);
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Keys in the {lb} slot other than the boards themselves: what the dedupe costs. */
async function dedupeKeys(): Promise<{ keys: number; entries: number }> {
  const boardKey = new RegExp(`^${ctx.keys.prefix}:\\{lb\\}:(daily|weekly|monthly|all):`);
  const found = (await scanAll(ctx.redis, `${ctx.keys.prefix}:{lb}:*`)).filter((k) => !boardKey.test(k));
  const sizes = await Promise.all(
    found.map(async (k) => ((await ctx.redis.type(k)) === 'zset' ? ctx.redis.zcard(k) : 1)),
  );
  return { keys: found.length, entries: sizes.reduce((a, b) => a + b, 0) };
}

async function pendingEntries(): Promise<Array<[number, string[]]>> {
  const out: Array<[number, string[]]> = [];
  for (let p = 0; p < ctx.keys.partitions; p++) {
    const rows = (await ctx.redis.xpending(ctx.keys.outbox(p), RELAY_GROUP, '-', '+', 10_000)) as Array<[string, string, number, number]>;
    if (rows.length > 0) out.push([p, rows.map((r) => r[0])]);
  }
  return out;
}

describe('leaderboard dedupe', () => {
  it('counts each earn once when the board application runs twice for the same entries', async () => {
    const expected = await appendEarns(50, 5);
    const batches: Array<[number, Op[]]> = [];
    for (let p = 0; p < ctx.keys.partitions; p++) {
      const entries = await ctx.redis.xrange(ctx.keys.outbox(p), '-', '+');
      if (entries.length > 0) batches.push([p, entries.map(([sid, fields]) => ({ ...parseOp(fields[1]), sid }))]);
    }
    let first = 0;
    let second = 0;
    for (const [p, ops] of batches) first += await applyToBoards(ctx.redis, ctx.keys, p, ops);
    for (const [p, ops] of batches) second += await applyToBoards(ctx.redis, ctx.keys, p, ops);
    expect([first, second]).toEqual([50, 0]);
    expect(await allTimePoints(expected.keys())).toEqual(expected);

    // the pipeline then relays them: already on the boards, so they count nothing more
    const r = relay('dedupe-twice');
    await r.start();
    await until('the outbox to drain', async () => (await outboxBacklog()) === 0);
    await r.stop();
    expect(await allTimePoints(expected.keys())).toEqual(expected);
  });

  it('counts each earn once when a relay dies after the boards and before the ack, and is restarted', async () => {
    const expected = await appendEarns(600);
    const dying = relay('dedupe-restart', { dies: true, batch: WHOLE });
    await dying.start();
    // it applies the boards, fails to add the job, and retries the same pending entries
    await until('the boards to be applied', () => boardsShow(expected));
    await new Promise((r) => setTimeout(r, 1200));
    await dying.stop();
    expect(await allTimePoints(expected.keys())).toEqual(expected);
    const held = await pendingEntries();
    expect(held.flatMap(([, ids]) => ids)).toHaveLength(600);
    // while they are pending, their ids are what the dedupe remembers
    expect((await dedupeKeys()).entries).toBe(600);

    const restarted = relay('dedupe-restart', { batch: WHOLE });
    await restarted.start();
    await until('the outbox to drain', async () => (await outboxBacklog()) === 0);
    await restarted.stop();
    expect(await allTimePoints(expected.keys())).toEqual(expected);
    expect(await dedupeKeys()).toEqual({ keys: 0, entries: 0 });
  });

  it('counts each earn once when another relay takes a dead relay’s entries over (XAUTOCLAIM)', async () => {
    const expected = await appendEarns(400);
    const dying = relay('dedupe-dead', { dies: true, batch: WHOLE });
    await dying.start();
    await until('the boards to be applied', async () => (await pendingEntries()).flatMap(([, ids]) => ids).length === 400);
    await new Promise((r) => setTimeout(r, 600));
    await dying.stop();
    expect(await boardsShow(expected)).toBe(true);
    // the dead relay's entries have been idle past the claim threshold
    for (const [p, ids] of await pendingEntries()) {
      await ctx.redis.xclaim(ctx.keys.outbox(p), RELAY_GROUP, 'dedupe-dead', 0, ...ids, 'IDLE', 60_000, 'JUSTID');
    }
    const heir = relay('dedupe-heir', { batch: WHOLE });
    let moved = 0;
    while ((await outboxBacklog()) > 0) moved += await heir.pass(true);
    expect(moved).toBe(400);
    expect(await allTimePoints(expected.keys())).toEqual(expected);
    expect(await dedupeKeys()).toEqual({ keys: 0, entries: 0 });
  });

  it('counts every earn exactly once with two relays reading one consumer group at once', async () => {
    const a = relay('dedupe-a');
    const b = relay('dedupe-b');
    await Promise.all([a.start(), b.start()]);
    const expected = new Map<number, number>();
    for (let round = 0; round < 10; round++) {
      for (const [u, pts] of await appendEarns(500, 25)) expected.set(u, (expected.get(u) ?? 0) + pts);
      await new Promise((r) => setTimeout(r, 20));
    }
    await until('the outbox to drain', async () => (await outboxBacklog()) === 0 && (await pendingEntries()).length === 0);
    await Promise.all([a.stop(), b.stop()]);
    expect(a.relayed).toBeGreaterThan(0);
    expect(b.relayed).toBeGreaterThan(0);
    expect(a.relayed + b.relayed).toBe(5000);
    expect(await allTimePoints(expected.keys())).toEqual(expected);
  });

  it('keeps no per-earn state once 20,000 relayed earns are acknowledged', async () => {
    const expected = await appendEarns(20_000, 200);
    const a = relay('dedupe-mem-a');
    const b = relay('dedupe-mem-b');
    await Promise.all([a.start(), b.start()]);
    await until('the outbox to drain', async () => (await outboxBacklog()) === 0 && (await pendingEntries()).length === 0, 60_000);
    await Promise.all([a.stop(), b.stop()]);
    expect(await allTimePoints(expected.keys())).toEqual(expected);
    // a marker per op would leave 20,000 keys here for a month
    const dedupe = await dedupeKeys();
    expect(dedupe.keys).toBeLessThanOrEqual(ctx.keys.partitions);
    expect(dedupe.entries).toBe(0);
  });
});
