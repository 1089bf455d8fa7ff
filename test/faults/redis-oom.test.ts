/**
 * Fault: Redis out of memory (maxmemory-policy noeviction, maxmemory dropped below used memory).
 * A private redis-server on its own port, so the shared one is never starved.
 *
 * What Redis 7.0 does (checked below, script by script): a script call is admitted; its first
 * command that may grow memory (DENYOOM: SET, HSET, HINCRBY, ZADD, XADD, ...) is refused with OOM
 * only if nothing was written before it. A script whose first write is a DENYOOM command therefore
 * writes nothing; a script whose first write frees memory (ZREM, HDEL, DEL, PEXPIRE) runs to the
 * end, including later DENYOOM writes. Either way no script is ever half-applied. MULTI blocks are
 * refused entirely, even read-only ones.
 *
 * Through the API: every write (lottery draws included) answers 503 SERVICE_UNAVAILABLE with
 * Retry-After and changes no key; a redemption whose reservation went through before memory ran
 * out keeps it (settle needs a tombstone, which OOM refuses) until the sweeper releases it once
 * memory is back; a charge whose first write frees a whole lot goes through even under OOM, and
 * its op must still reach Postgres promptly afterwards. After memory is back, everything succeeds and reconcile finds no drift.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keyHash } from '../../src/points/idempotency.ts';
import { PERSIST_QUEUE, RELAY_GROUP } from '../../src/queues.ts';
import { Reconciler } from '../../src/recovery/reconcile.ts';
import { createRedis } from '../../src/redis/client.ts';
import { createKeys, type Keys } from '../../src/redis/keys.ts';
import { loadScripts } from '../../src/redis/scripts.ts';
import { sleep, waitUntil } from '../crash/procs.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { snapshotRedis, startPrivateRedis, type PrivateRedis } from './support.ts';

const OOM = /^OOM command not allowed/;
/** Keys that move on their own (BullMQ, rate-limit counters, task locks): not part of the domain state. */
const NOT_STATE = ['q:', 'rl:', 'lock:'];

let server: PrivateRedis;
let ctx: TestContext;
let pipeline: Pipeline;
let queueConn: Redis;
let queue: Queue;

beforeAll(async () => {
  server = await startPrivateRedis();
});

afterAll(async () => {
  await server?.stop();
});

// each test gets its own database, key prefix and pipeline: any one of them runs alone (-t)
beforeEach(async (t) => {
  await server.setOom(false);
  ctx = await createTestContext({
    // the test of a fault between the saga's steps runs the saga (a cluster's path); the rest run
    // what a single Redis runs
    ...(t.task.name.startsWith('reserve ok, then OOM at charge') ? { REDEEM_PATH: 'saga' as const } : {}),
    REDIS_URL: server.url,
    // the rate limiter writes to Redis too: keep it in the path (it must skip on error)
    RATE_LIMIT_ALLOWLIST: '',
    RATE_LIMIT_MAX: 100_000,
    RESERVATION_TIMEOUT_MS: 1000,
  });
  pipeline = await ctx.startPipeline(2);
  queueConn = createRedis(server.url, 'worker');
  queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
});

afterEach(async () => {
  await server?.setOom(false).catch(() => {});
  await queue?.close().catch(() => {});
  queueConn?.disconnect();
  await ctx?.close().catch((err) => console.error('context close', err));
});

// ------------------------------------------------------------------ every script under OOM

const U = 7;
const G = 3;
const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 15, 12);

interface ScriptCase {
  name: string;
  script: string;
  setup?: (r: Redis, k: Keys) => Promise<unknown>;
  call: (r: Redis, k: Keys) => Promise<unknown>;
  /** What Redis 7.0 does with it under OOM. */
  outcome: 'refused' | 'completed';
}

async function account(r: Redis, k: Keys, avail: number, lots: Array<[id: string, remaining: number, expiresAt: number]>) {
  await r.hset(k.account(U), 'avail', avail, 'earned', avail);
  for (const [id, remaining, expiresAt] of lots) {
    await r.zadd(k.lotsByExpiry(U), expiresAt, id);
    await r.hset(k.lotRemaining(U), id, remaining);
    await r.zadd(k.expiryIndexOf(U), 'LT', expiresAt, String(U));
  }
}
const goods = (r: Redis, k: Keys) =>
  r.hset(k.goods(G), 'stock', 10, 'price', 100, 'limit', 0, 'startsAt', 0, 'endsAt', 0, 'active', 1);
/** A reserve of one unit at the list price; `expectedPrice` 0 = no check. */
const reserve = (r: Redis, k: Keys, expectedPrice: number) =>
  r.pmReserve(
    k.goods(G), k.bought(G), k.reservations(G), k.reservationDeadlines(G), k.dailyBought(G),
    'op1', U, 1, 'h1', 15_000, NOW, 'tok', 'op1', 1000, 1000, 0, expectedPrice || '',
  );
async function heldReservation(r: Redis, k: Keys) {
  await goods(r, k);
  await r.hincrby(k.goods(G), 'stock', -1);
  await r.hset(k.bought(G), String(U), 1);
  await r.hset(k.reservations(G), 'op1', JSON.stringify({ u: U, q: 1, p: 100, t: 'tok', h: 'h1', k: 'op1', d: NOW + 15_000 }));
  await r.zadd(k.reservationDeadlines(G), NOW + 15_000, 'op1');
}
const earn = (r: Redis, k: Keys, caps: boolean) =>
  r.pmEarn(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'e1'), k.dailyCap(U, 'share'), k.outboxOf(U), k.expiryIndexOf(U),
    'e1', U, 10, caps ? 'share' : 'grant', '1', caps ? 5 : 0, caps ? 50 : 0, 365 * DAY, 'h1', 3600, NOW, '{}', 'e1', 0, '{"tiers":[0],"earn":[1000],"applyTier":0,"campaign":1000,"lifetime":1}',
  );
const charge = (r: Redis, k: Keys, amount: number) =>
  r.pmCharge(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'c1'), k.opRef(U, 'c1'), k.outboxOf(U),
    'c1', U, amount, 'h1', 3600, NOW, 'tok', JSON.stringify({ goodsId: G, quantity: 1, bizType: 'redemption', bizId: String(G) }), 'c1',
  );

/** A whole redemption of one unit at the list price (lua/redeem-9.lua, a single-node Redis). */
const redeemAtOnce = (r: Redis, k: Keys) =>
  r.pmRedeem(
    k.goods(G), k.bought(G), k.dailyBought(G), k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'r1'), k.opRef(U, 'r1'), k.outboxOf(U),
    'r1', U, 1, 'h1', 3600, NOW, 'tok', 'r1', '{"min":[0],"pm":[1000]}', 1000, 0, '',
    JSON.stringify({ goodsId: G, quantity: 1, bizType: 'redemption', bizId: String(G) }),
  );

/**
 * Two such redemptions in one call (lua/redeem-many-n.lua), by keys r1 and r2; a redemption's
 * error reply ({0, message}) is thrown, as the API's batcher rejects that redemption with it.
 */
async function redeemMany(r: Redis, k: Keys) {
  const keys: string[] = [];
  const args: Array<string | number> = [2];
  for (const key of ['r1', 'r2']) {
    keys.push(k.goods(G), k.bought(G), k.dailyBought(G), k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, key), k.opRef(U, key), k.outboxOf(U));
    args.push(key, U, 1, `h-${key}`, 3600, NOW, 'tok', key, '{"min":[0],"pm":[1000]}', 1000, 0, '', JSON.stringify({ goodsId: G, quantity: 1, bizType: 'redemption', bizId: String(G) }));
  }
  const replies = await r.pmRedeemMany(keys.length, ...keys, ...args);
  for (const reply of replies) if (Number(reply[0]) === 0) throw new Error(String(reply[1]));
  return replies;
}

/** Two grants in one call (lua/earn-many-n.lua), by keys e1 and e2; an error reply is thrown, as for redeemMany. */
async function earnMany(r: Redis, k: Keys) {
  const keys: string[] = [];
  const args: Array<string | number> = [2];
  for (const key of ['e1', 'e2']) {
    keys.push(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, key), k.dailyCap(U, 'grant'), k.outboxOf(U), k.expiryIndexOf(U));
    args.push(key, U, 10, 'grant', '1', 0, 0, 365 * DAY, `h-${key}`, 3600, NOW, '{}', key, 0, '{"tiers":[0],"earn":[1000],"applyTier":0,"campaign":1000,"lifetime":1}', '');
  }
  const replies = await r.pmEarnMany(keys.length, ...keys, ...args);
  for (const reply of replies) if (Number(reply[0]) === 0) throw new Error(String(reply[1]));
  return replies;
}

/** Two check-ins of the member in one call (lua/checkin-many-n.lua), today and tomorrow; an error reply is thrown, as for redeemMany. */
async function checkinMany(r: Redis, k: Keys) {
  const keys: string[] = [];
  const args: Array<string | number> = [2];
  for (const [opId, at] of [['ck1', NOW], ['ck2', NOW + DAY]] as const) {
    keys.push(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.streak(U), k.outboxOf(U), k.expiryIndexOf(U));
    args.push(opId, U, at, 0, JSON.stringify({ base: 10, bonuses: [], expiryMs: DAY }), '{"tiers":[0],"earn":[1000],"applyTier":1,"campaign":1000,"lifetime":1}', '{}', '');
  }
  const replies = await r.pmCheckinMany(keys.length, ...keys, ...args);
  for (const reply of replies) if (Number(reply[0]) === 0) throw new Error(String(reply[1]));
  return replies;
}

/** Bucket 0 of a hot item (lua/hot-reserve-3.lua). */
const hotBucket = (r: Redis, k: Keys) =>
  r.hset(k.bucket(G, 0), 'stock', 10, 'price', 100, 'limit', 2, 'startsAt', 0, 'endsAt', 0, 'active', 1, 'daily', 0, 'dyn', 0);
const hotReserve = (r: Redis, k: Keys) =>
  r.pmHotReserve(k.bucket(G, 0), k.bucketReservations(G, 0), k.bucketDeadlines(G, 0), 'op1', U, 1, 'h1', 15_000, NOW, 'tok', 'op1', 1000, '');
const hotCharge = (r: Redis, k: Keys, limit: number) =>
  r.pmHotCharge(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'c1'), k.opRef(U, 'c1'), k.outboxOf(U), k.hotBought(U),
    'c1', U, 100, 'h1', 3600, NOW, 'tok', JSON.stringify({ goodsId: G, quantity: 1, bizType: 'redemption', bizId: String(G) }), 'c1', '',
    G, 1, limit, 0, 0,
  );

const L = 5;
const PRIZE = { id: 1, name: 'p', kind: 'points', points: 50, weight: 1 };
/** A lottery whose one prize is limited (3 units) or unlimited. */
const lottery = (r: Redis, k: Keys, limited: boolean) =>
  r.pmLotterySet(
    k.lottery(L), k.lotteryStock(L), 1, 1, 0, 0, 20, 0, 0, JSON.stringify([{ ...PRIZE, limited: limited ? 1 : 0 }]), 0,
    ...(limited ? [1, 3, 3] : []),
  );
async function heldPrize(r: Redis, k: Keys, limited: boolean) {
  await lottery(r, k, limited);
  if (limited) await r.hincrby(k.lotteryStock(L), '1', -1);
  await r.hset(k.lotteryHolds(L), `${U}:d1`, JSON.stringify({ u: U, k: 'd1', o: 'draw1', t: 'tok', h: 'h1', d: NOW + 15_000, c: 20, cd: 0, dl: 0, p: { ...PRIZE, limited: limited ? 1 : 0 } }));
  await r.zadd(k.lotteryHoldDeadlines(L), NOW + 15_000, `${U}:d1`);
}
const lotteryReserve = (r: Redis, k: Keys) =>
  r.pmLotteryReserve(k.lottery(L), k.lotteryStock(L), k.lotteryHolds(L), k.lotteryHoldDeadlines(L), 'draw1', U, 'h1', 15_000, NOW, 'tok', 'd1', 12345);
const lotteryDraw = (r: Redis, k: Keys, cooldownMs: number) =>
  r.pmLotteryDraw(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'd1'), k.drawState(U, L), k.outboxOf(U), k.expiryIndexOf(U),
    'draw1', U, 'h1', 3600, NOW, 'tok', 'd1', L, 20, cooldownMs, 0, 0, JSON.stringify(PRIZE), 365 * DAY, '',
  );

/** Two prize holds in one call (lua/lottery-reserve-many-n.lua), keys d1 and d2; an error reply is thrown, as for redeemMany. */
async function lotteryReserveMany(r: Redis, k: Keys) {
  const keys: string[] = [];
  const args: Array<string | number> = [2];
  for (const key of ['d1', 'd2']) {
    keys.push(k.lottery(L), k.lotteryStock(L), k.lotteryHolds(L), k.lotteryHoldDeadlines(L));
    args.push(`draw-${key}`, U, `h-${key}`, 15_000, NOW, 'tok', key, 12345);
  }
  const replies = await r.pmLotteryReserveMany(keys.length, ...keys, ...args);
  for (const reply of replies) if (Number(reply[0]) === 0) throw new Error(String(reply[1]));
  return replies;
}

/** A whole draw in one script (lua/draw-at-once-9.lua) of the member in lottery L, key d1. */
const drawAtOnceArgs = (k: Keys, key: string): { keys: string[]; args: Array<string | number> } => ({
  keys: [k.lottery(L), k.lotteryStock(L), k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, key), k.drawState(U, L), k.outboxOf(U), k.expiryIndexOf(U)],
  args: [`draw-${key}`, U, `h-${key}`, 3600, NOW, `tok-${key}`, key, L, 12345, 0, 365 * DAY, `PM-${key}`, ''],
});
const drawAtOnce = (r: Redis, k: Keys) => {
  const c = drawAtOnceArgs(k, 'd1');
  return r.pmDrawAtOnce(...c.keys, ...c.args);
};
/** Two whole draws in one call (lua/draw-at-once-many-n.lua), keys d1 and d2; an error reply is thrown. */
async function drawAtOnceMany(r: Redis, k: Keys) {
  const calls = ['d1', 'd2'].map((key) => drawAtOnceArgs(k, key));
  const keys = calls.flatMap((c) => c.keys);
  const replies = await r.pmDrawAtOnceMany(keys.length, ...keys, 2, ...calls.flatMap((c) => c.args));
  for (const reply of replies) if (Number(reply[0]) === 0) throw new Error(String(reply[1]));
  return replies;
}

/** Two draws of the member in one call (lua/lottery-draw-many-n.lua), keys d1 and d2; an error reply is thrown, as for redeemMany. */
async function lotteryDrawMany(r: Redis, k: Keys) {
  const keys: string[] = [];
  const args: Array<string | number> = [2];
  for (const key of ['d1', 'd2']) {
    keys.push(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, key), k.drawState(U, L), k.outboxOf(U), k.expiryIndexOf(U));
    args.push(`draw-${key}`, U, `h-${key}`, 3600, NOW, 'tok', key, L, 20, 0, 0, 0, JSON.stringify(PRIZE), 365 * DAY, '', '');
  }
  const replies = await r.pmLotteryDrawMany(keys.length, ...keys, ...args);
  for (const reply of replies) if (Number(reply[0]) === 0) throw new Error(String(reply[1]));
  return replies;
}

const R = 8;
const transferDebit = (r: Redis, k: Keys, amount: number, dailyMax = 5000) =>
  r.pmTransferDebit(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 't1'), k.transferDay(U), k.outboxOf(U), k.transfersPendingOf(U),
    k.transfersPendingDataOf(U), 'xfer1', U, R, amount, 'h1', 3600, NOW, 't1', 0, dailyMax, 'bob', '',
  );
const TRANSFER = { id: 'xfer1', from: U, to: R, toUsername: 'bob', amount: 100, parts: [[NOW + DAY, 100]], at: NOW, day: 0 };
const PLAIN_CREDIT = JSON.stringify({ tiers: [0], earn: [1000], applyTier: 0, campaign: 1000, lifetime: 0 });
/** The whole transfer in one script (lua/transfer-14.lua): the debit of U, the credit of R. */
const transferAtOnce = (r: Redis, k: Keys, amount: number, dailyMax = 5000) =>
  r.pmTransfer(
    k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 't1'), k.transferDay(U), k.outboxOf(U), k.transfersPendingOf(U),
    k.transfersPendingDataOf(U), k.account(R), k.lotsByExpiry(R), k.lotRemaining(R), k.idem(R, 'ti1'), k.outboxOf(R), k.expiryIndexOf(R),
    'xfer1', U, R, amount, 'h1', 3600, NOW, 't1', 0, dailyMax, 'bob', '', '', 'h2', 3600, NOW, 'ti1', PLAIN_CREDIT, R,
  );
/** Two whole transfers of U in one call (lua/transfer-many-n.lua), each to R. */
async function transferMany(r: Redis, k: Keys) {
  const keys: string[] = [];
  const args: Array<string | number> = [];
  for (const key of ['t1', 't2']) {
    keys.push(
      k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, key), k.transferDay(U), k.outboxOf(U), k.transfersPendingOf(U),
      k.transfersPendingDataOf(U), k.account(R), k.lotsByExpiry(R), k.lotRemaining(R), k.idem(R, `in-${key}`), k.outboxOf(R), k.expiryIndexOf(R),
    );
    args.push(`xfer-${key}`, U, R, 100, `h-${key}`, 3600, NOW, key, 0, 5000, 'bob', '', '', `h2-${key}`, 3600, NOW, `in-${key}`, PLAIN_CREDIT, R);
  }
  const replies = await r.pmTransferMany(keys.length, ...keys, 2, ...args);
  for (const reply of replies) if (Number(reply[0]) === 0) throw new Error(String(reply[1]));
  return replies;
}
const sender = async (r: Redis, k: Keys, avail: number) => {
  await account(r, k, avail, [['L1', avail, NOW + DAY]]);
  await r.hset(k.account(R), 'avail', 0, 'earned', 0);
};

const CASES: ScriptCase[] = [
  { name: 'earn by rule (daily cap first)', script: 'earn', setup: (r, k) => account(r, k, 0, []), call: (r, k) => earn(r, k, true), outcome: 'refused' },
  { name: 'earn without caps (grant)', script: 'earn', setup: (r, k) => account(r, k, 0, []), call: (r, k) => earn(r, k, false), outcome: 'refused' },
  {
    name: 'charge taking part of a lot',
    script: 'charge',
    setup: (r, k) => account(r, k, 500, [['L1', 500, NOW + DAY]]),
    call: (r, k) => charge(r, k, 100),
    outcome: 'refused',
  },
  {
    // first write is ZREM of the emptied lot (frees memory), so the whole charge runs
    name: 'charge emptying a lot',
    script: 'charge',
    setup: (r, k) => account(r, k, 100, [['L1', 100, NOW + DAY]]),
    call: (r, k) => charge(r, k, 100),
    outcome: 'completed',
  },
  {
    name: 'charge refused for insufficient points (no write)',
    script: 'charge',
    setup: (r, k) => account(r, k, 50, [['L1', 50, NOW + DAY]]),
    call: (r, k) => charge(r, k, 100),
    outcome: 'completed',
  },
  {
    name: 'reserve',
    script: 'reserve',
    setup: goods,
    call: (r, k) => reserve(r, k, 0),
    outcome: 'refused',
  },
  {
    name: 'reserve with a daily limit (stock first)',
    script: 'reserve',
    setup: async (r, k) => {
      await goods(r, k);
      await r.hset(k.goods(G), 'daily', 2, 'dyn', 1);
    },
    call: (r, k) => reserve(r, k, 0),
    outcome: 'refused',
  },
  {
    name: 'reserve refused for a changed price (no write)',
    script: 'reserve',
    setup: goods,
    call: (r, k) => reserve(r, k, 99),
    outcome: 'completed',
  },
  {
    name: 'reserve of a sold-out item (no write)',
    script: 'reserve',
    setup: async (r, k) => {
      await goods(r, k);
      await r.hset(k.goods(G), 'stock', 0);
    },
    call: (r, k) => reserve(r, k, 0),
    outcome: 'completed',
  },
  {
    name: 'redeem (at once)',
    script: 'redeem',
    setup: async (r, k) => {
      await goods(r, k);
      await account(r, k, 500, [['L1', 500, NOW + DAY]]);
    },
    call: (r, k) => redeemAtOnce(r, k),
    outcome: 'refused',
  },
  {
    name: 'redeem (at once) of a sold-out item (no write)',
    script: 'redeem',
    setup: async (r, k) => {
      await goods(r, k);
      await r.hset(k.goods(G), 'stock', 0);
      await account(r, k, 500, [['L1', 500, NOW + DAY]]);
    },
    call: (r, k) => redeemAtOnce(r, k),
    outcome: 'completed',
  },
  {
    name: 'redeem (at once) refused for insufficient points (no write)',
    script: 'redeem',
    setup: async (r, k) => {
      await goods(r, k);
      await account(r, k, 50, [['L1', 50, NOW + DAY]]);
    },
    call: (r, k) => redeemAtOnce(r, k),
    outcome: 'completed',
  },
  {
    name: 'redeem-many (two at once; each refused at its first write)',
    script: 'redeem-many',
    setup: async (r, k) => {
      await goods(r, k);
      await account(r, k, 500, [['L1', 500, NOW + DAY]]);
    },
    call: redeemMany,
    outcome: 'refused',
  },
  {
    name: 'earn-many (two grants at once; each refused at its first write)',
    script: 'earn-many',
    setup: (r, k) => account(r, k, 500, [['L1', 500, NOW + DAY]]),
    call: earnMany,
    outcome: 'refused',
  },
  {
    name: 'checkin-many (two days at once; each refused at its first write)',
    script: 'checkin-many',
    setup: (r, k) => account(r, k, 0, []),
    call: checkinMany,
    outcome: 'refused',
  },
  {
    name: 'confirm',
    script: 'confirm',
    setup: heldReservation,
    call: (r, k) => r.pmConfirm(k.reservations(G), k.reservationDeadlines(G), 'op1', 'tok'),
    outcome: 'completed',
  },
  {
    name: 'release',
    script: 'release',
    setup: heldReservation,
    call: (r, k) => r.pmRelease(k.goods(G), k.bought(G), k.reservations(G), k.reservationDeadlines(G), k.dailyBought(G), 'op1', 'tok'),
    outcome: 'refused',
  },
  {
    name: 'hot-reserve (a bucket of a hot item)',
    script: 'hot-reserve',
    setup: hotBucket,
    call: (r, k) => hotReserve(r, k),
    outcome: 'refused',
  },
  {
    name: 'hot-reserve of an empty bucket (no write)',
    script: 'hot-reserve',
    setup: async (r, k) => {
      await hotBucket(r, k);
      await r.hset(k.bucket(G, 0), 'stock', 0);
    },
    call: (r, k) => hotReserve(r, k),
    outcome: 'completed',
  },
  {
    name: 'hot-release',
    script: 'hot-release',
    setup: async (r, k) => {
      await hotBucket(r, k);
      await r.hset(k.bucketReservations(G, 0), `${U}:op1`, JSON.stringify({ u: U, q: 1, p: 100, t: 'tok', h: 'h1', k: 'op1', o: 'op1', d: NOW + 15_000 }));
      await r.zadd(k.bucketDeadlines(G, 0), NOW + 15_000, `${U}:op1`);
    },
    call: (r, k) => r.pmHotRelease(k.bucket(G, 0), k.bucketReservations(G, 0), k.bucketDeadlines(G, 0), `${U}:op1`, 'tok'),
    outcome: 'refused',
  },
  {
    name: 'hot-return',
    script: 'hot-return',
    setup: hotBucket,
    call: (r, k) => r.pmHotReturn(k.bucket(G, 0), k.bucketReturned(G, 0), 'op9', 1),
    outcome: 'refused',
  },
  {
    name: 'hot-uncount',
    script: 'hot-uncount',
    setup: (r, k) => r.hset(k.hotBought(U), String(G), 2),
    call: (r, k) => r.pmHotUncount(k.hotBought(U), G, 'op9', 1, ''),
    outcome: 'refused',
  },
  {
    name: 'hot-charge taking part of a lot',
    script: 'hot-charge',
    setup: (r, k) => account(r, k, 500, [['L1', 500, NOW + DAY]]),
    call: (r, k) => hotCharge(r, k, 2),
    outcome: 'refused',
  },
  {
    name: 'hot-charge refused by the member limit (no write)',
    script: 'hot-charge',
    setup: async (r, k) => {
      await account(r, k, 500, [['L1', 500, NOW + DAY]]);
      await r.hset(k.hotBought(U), String(G), 2);
    },
    call: (r, k) => hotCharge(r, k, 2),
    outcome: 'completed',
  },
  {
    name: 'quote (read only)',
    script: 'quote',
    setup: goods,
    call: (r, k) => r.pmQuote(k.goods(G), k.bought(G), k.dailyBought(G), U, 950, 800, 0, NOW),
    outcome: 'completed',
  },
  {
    name: 'hold (freeze)',
    script: 'hold',
    setup: (r, k) => account(r, k, 100, [['L1', 100, NOW + DAY]]),
    call: (r, k) => r.pmHold(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.hold(U, 'H1'), k.outboxOf(U), 'fz1', U, 40, 'H1', 'hold', 'x', NOW, 0, '{}', 'h1'),
    outcome: 'refused',
  },
  {
    name: 'hold-settle (capture)',
    script: 'hold-settle',
    setup: async (r, k) => {
      await account(r, k, 60, [['L1', 60, NOW + DAY]]);
      await r.hset(k.account(U), 'frozen', 40);
      await r.set(k.hold(U, 'H1'), JSON.stringify({ id: 'H1', userId: U, amount: 40, lots: [['L1', 40, NOW + DAY]], state: 'frozen', at: NOW, expiresAt: 0, bizType: 'hold', bizId: '', h: 'h1' }));
    },
    call: (r, k) => r.pmHoldSettle(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.hold(U, 'H1'), k.outboxOf(U), k.expiryIndexOf(U), 'capture', 'st1', U, 30, NOW, DAY, '{}', 3600),
    outcome: 'refused',
  },
  {
    name: 'refund',
    script: 'refund',
    setup: (r, k) => account(r, k, 10, [['L1', 10, NOW + DAY]]),
    call: (r, k) =>
      r.pmRefund(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.idem(U, 'rf1'), k.outboxOf(U), k.expiryIndexOf(U), 'rf1', U, JSON.stringify([['L1', 5, NOW + DAY]]), NOW, DAY, '{}', 'h1', 3600, 'rf1'),
    outcome: 'refused',
  },
  {
    name: 'take (an order item)',
    script: 'take',
    setup: goods,
    call: (r, k) => r.pmTake(k.goods(G), k.bought(G), k.dailyBought(G), k.ordersTaken(G), 'ord1', U, 1, NOW, 1000, 1000, 0, ''),
    outcome: 'refused',
  },
  {
    name: 'give-back (an order item)',
    script: 'give-back',
    setup: async (r, k) => {
      await goods(r, k);
      await r.hset(k.ordersTaken(G), 'ord1', JSON.stringify({ u: U, q: 1, p: 100 }));
    },
    call: (r, k) => r.pmGiveBack(k.goods(G), k.bought(G), k.dailyBought(G), k.ordersTaken(G), k.returnedRedemptions(G), 'order', 'ord1', '', '', ''),
    // its first write frees memory (HDEL of the record); once a script has written, Redis lets it finish
    outcome: 'completed',
  },
  {
    name: 'risk-set (freeze)',
    script: 'risk-set',
    setup: (r, k) => account(r, k, 100, [['L1', 100, NOW + DAY]]),
    call: (r, k) => r.pmRiskSet(k.account(U), 'freeze'),
    outcome: 'refused',
  },
  {
    name: 'repair-stock',
    script: 'repair-stock',
    setup: (r, k) => goods(r, k),
    call: (r, k) => r.pmRepairStock(k.goods(G), 10, 1),
    outcome: 'refused',
  },
  {
    name: 'repair-balance',
    script: 'repair-balance',
    setup: (r, k) => account(r, k, 110, [['L1', 100, NOW + DAY]]),
    call: (r, k) => r.pmRepairBalance(k.account(U), k.lotRemaining(U), 10),
    outcome: 'refused',
  },
  {
    name: 'checkin',
    script: 'checkin',
    setup: (r, k) => account(r, k, 0, []),
    call: (r, k) =>
      r.pmCheckin(
        k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.streak(U), k.outboxOf(U), k.expiryIndexOf(U),
        'ck1', U, NOW, 0, JSON.stringify({ base: 10, bonuses: [], expiryMs: DAY }),
        JSON.stringify({ tiers: [0], earn: [1000], applyTier: 1, campaign: 1000, lifetime: 1 }), '{}',
      ),
    outcome: 'refused',
  },
  { name: 'abort writing a tombstone', script: 'abort', call: (r, k) => r.pmAbort(k.idem(U, 'op1'), 'tok', 3600), outcome: 'refused' },
  {
    name: 'abort of a charged op (no write)',
    script: 'abort',
    setup: (r, k) => r.set(k.idem(U, 'op1'), JSON.stringify({ opId: 'op1', kind: 'spend', t: 'tok', h: 'h1' }), 'EX', 3600),
    call: (r, k) => r.pmAbort(k.idem(U, 'op1'), 'tok', 3600),
    outcome: 'completed',
  },
  {
    name: 'hydrate',
    script: 'hydrate',
    call: (r, k) => r.pmHydrate(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.expiryIndexOf(U), U, 500, 500, 0, 0, '', 'L1', 500, NOW + DAY),
    outcome: 'refused',
  },
  { name: 'goods-set', script: 'goods-set', call: (r, k) => r.pmGoodsSet(k.goods(G), 100, 0, 0, 0, 1, 10, 2, 1), outcome: 'refused' },
  { name: 'restock', script: 'restock', setup: goods, call: (r, k) => r.pmRestock(k.goods(G), 5), outcome: 'refused' },
  {
    // first write is ZREM of the expired lot: the whole run goes through, XADD included
    name: 'expire',
    script: 'expire',
    setup: (r, k) => account(r, k, 100, [['L1', 100, NOW - 1000]]),
    call: (r, k) => r.pmExpire(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), k.outboxOf(U), k.expiryIndexOf(U), U, NOW),
    outcome: 'completed',
  },
  {
    name: 'leaderboard',
    script: 'leaderboard',
    call: (r, k) =>
      r.pmLeaderboard(k.board('daily', 'd'), k.board('weekly', 'w'), k.board('monthly', 'm'), k.board('all', 'all'), k.boardApplied(0), 100, 100, 100, U, 10, '1700000000000-0'),
    outcome: 'refused',
  },
  {
    name: 'lock-extend',
    script: 'lock-extend',
    setup: (r, k) => r.set(k.taskLock('t'), 'tok', 'PX', 60_000),
    call: (r, k) => r.pmLockExtend(k.taskLock('t'), 'tok', 120_000),
    outcome: 'completed',
  },
  {
    name: 'lock-release',
    script: 'lock-release',
    setup: (r, k) => r.set(k.taskLock('t'), 'tok', 'PX', 60_000),
    call: (r, k) => r.pmLockRelease(k.taskLock('t'), 'tok'),
    outcome: 'completed',
  },
  { name: 'lottery-set', script: 'lottery-set', call: (r, k) => lottery(r, k, true), outcome: 'refused' },
  {
    name: 'lottery-reserve of a limited prize (stock first)',
    script: 'lottery-reserve',
    setup: (r, k) => lottery(r, k, true),
    call: lotteryReserve,
    outcome: 'refused',
  },
  {
    name: 'lottery-reserve-many (two holds at once; each refused at its first write)',
    script: 'lottery-reserve-many',
    setup: (r, k) => lottery(r, k, true),
    call: lotteryReserveMany,
    outcome: 'refused',
  },
  {
    name: 'lottery-reserve of an unlimited prize (hold first)',
    script: 'lottery-reserve',
    setup: (r, k) => lottery(r, k, false),
    call: lotteryReserve,
    outcome: 'refused',
  },
  {
    name: 'lottery-reserve of a lottery switched off (no write)',
    script: 'lottery-reserve',
    setup: async (r, k) => {
      await lottery(r, k, true);
      await r.hset(k.lottery(L), 'active', 0);
    },
    call: lotteryReserve,
    outcome: 'completed',
  },
  {
    name: 'draw-at-once paying from part of a lot, a limited prize',
    script: 'draw-at-once',
    setup: async (r, k) => {
      await account(r, k, 500, [['L1', 500, NOW + DAY]]);
      await lottery(r, k, true);
    },
    call: drawAtOnce,
    outcome: 'refused',
  },
  {
    // first write is ZREM of the emptied lot (frees memory): the whole draw runs, the prize's unit taken
    name: 'draw-at-once paying with a whole lot',
    script: 'draw-at-once',
    setup: async (r, k) => {
      await account(r, k, 20, [['L1', 20, NOW + DAY]]);
      await lottery(r, k, true);
    },
    call: drawAtOnce,
    outcome: 'completed',
  },
  {
    name: 'draw-at-once-many (two draws at once; each refused at its first write)',
    script: 'draw-at-once-many',
    setup: async (r, k) => {
      await account(r, k, 500, [['L1', 500, NOW + DAY]]);
      await lottery(r, k, false);
    },
    call: drawAtOnceMany,
    outcome: 'refused',
  },
  {
    name: 'lottery-draw paying from part of a lot',
    script: 'lottery-draw',
    setup: (r, k) => account(r, k, 500, [['L1', 500, NOW + DAY]]),
    call: (r, k) => lotteryDraw(r, k, 30_000),
    outcome: 'refused',
  },
  {
    // first write is ZREM of the emptied lot (frees memory): the whole draw runs, prize lot and XADDs included
    name: 'lottery-draw paying with a whole lot',
    script: 'lottery-draw',
    setup: (r, k) => account(r, k, 20, [['L1', 20, NOW + DAY]]),
    call: (r, k) => lotteryDraw(r, k, 30_000),
    outcome: 'completed',
  },
  {
    name: 'lottery-draw-many (two draws at once; each refused at its first write)',
    script: 'lottery-draw-many',
    setup: (r, k) => account(r, k, 500, [['L1', 500, NOW + DAY]]),
    call: lotteryDrawMany,
    outcome: 'refused',
  },
  {
    name: 'lottery-draw refused by the cooldown (no write)',
    script: 'lottery-draw',
    setup: async (r, k) => {
      await account(r, k, 500, [['L1', 500, NOW + DAY]]);
      await r.hset(k.drawState(U, L), 'last', NOW - 1000, 'day', 0, 'n', 1);
    },
    call: (r, k) => lotteryDraw(r, k, 30_000),
    outcome: 'completed',
  },
  {
    name: 'lottery-release of a limited prize (stock first)',
    script: 'lottery-release',
    setup: (r, k) => heldPrize(r, k, true),
    call: (r, k) => r.pmLotteryRelease(k.lotteryStock(L), k.lotteryHolds(L), k.lotteryHoldDeadlines(L), `${U}:d1`, 'tok'),
    outcome: 'refused',
  },
  {
    name: 'lottery-release of an unlimited prize (HDEL first)',
    script: 'lottery-release',
    setup: (r, k) => heldPrize(r, k, false),
    call: (r, k) => r.pmLotteryRelease(k.lotteryStock(L), k.lotteryHolds(L), k.lotteryHoldDeadlines(L), `${U}:d1`, 'tok'),
    outcome: 'completed',
  },
  {
    name: 'transfer-debit taking part of a lot',
    script: 'transfer-debit',
    setup: (r, k) => account(r, k, 500, [['L1', 500, NOW + DAY]]),
    call: (r, k) => transferDebit(r, k, 100),
    outcome: 'refused',
  },
  {
    // first write is ZREM of the emptied lot (frees memory): the whole debit runs, pending entry included
    name: 'transfer-debit emptying a lot',
    script: 'transfer-debit',
    setup: (r, k) => account(r, k, 100, [['L1', 100, NOW + DAY]]),
    call: (r, k) => transferDebit(r, k, 100),
    outcome: 'completed',
  },
  {
    name: 'transfer-debit over the daily maximum (no write)',
    script: 'transfer-debit',
    setup: (r, k) => account(r, k, 500, [['L1', 500, NOW + DAY]]),
    call: (r, k) => transferDebit(r, k, 100, 50),
    outcome: 'completed',
  },
  {
    name: 'transfer at once taking part of a lot',
    script: 'transfer',
    setup: (r, k) => sender(r, k, 500),
    call: (r, k) => transferAtOnce(r, k, 100),
    outcome: 'refused',
  },
  {
    // first write is ZREM of the emptied lot (frees memory): the whole transfer runs, credit included
    name: 'transfer at once emptying a lot',
    script: 'transfer',
    setup: (r, k) => sender(r, k, 100),
    call: (r, k) => transferAtOnce(r, k, 100),
    outcome: 'completed',
  },
  {
    name: 'transfer-many (two transfers at once; each refused at its first write)',
    script: 'transfer-many',
    setup: (r, k) => sender(r, k, 500),
    call: transferMany,
    outcome: 'refused',
  },
  {
    name: 'transfer at once over the daily maximum (no write)',
    script: 'transfer',
    setup: (r, k) => sender(r, k, 500),
    call: (r, k) => transferAtOnce(r, k, 100, 50),
    outcome: 'completed',
  },
  {
    name: 'transfer-credit',
    script: 'transfer-credit',
    setup: (r, k) => r.hset(k.account(R), 'avail', 0, 'earned', 0),
    call: (r, k) =>
      r.pmTransferCredit(
        k.account(R), k.lotsByExpiry(R), k.lotRemaining(R), k.idem(R, 'ti1'), k.outboxOf(R), k.expiryIndexOf(R), JSON.stringify(TRANSFER),
        'h2', 3600, NOW, 'ti1', JSON.stringify({ tiers: [0], earn: [1000], applyTier: 0, campaign: 1000, lifetime: 0 }), R,
      ),
    outcome: 'refused',
  },
  {
    // HDEL first (frees memory)
    name: 'transfer-done',
    script: 'transfer-done',
    setup: async (r, k) => {
      await r.zadd(k.transfersPendingOf(U), NOW, 'xfer1');
      await r.hset(k.transfersPendingDataOf(U), 'xfer1', JSON.stringify(TRANSFER));
    },
    call: (r, k) => r.pmTransferDone(k.transfersPendingOf(U), k.transfersPendingDataOf(U), 'xfer1'),
    outcome: 'completed',
  },
  {
    name: 'balance (read only)',
    script: 'balance',
    setup: (r, k) => account(r, k, 500, [['L1', 500, NOW + DAY]]),
    call: (r, k) => r.pmBalance(k.account(U), k.lotsByExpiry(U), k.lotRemaining(U), 30 * DAY, NOW),
    outcome: 'completed',
  },
];

// ------------------------------------------------------------------ API helpers

interface Member {
  id: number;
  token: string;
}

async function post(m: Member, url: string, key: string, payload: Record<string, unknown>) {
  const res = await ctx.app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${m.token}`, 'idempotency-key': key },
    payload,
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown>, headers: res.headers };
}
const redeem = (m: Member, goodsId: number, key: string) => post(m, '/v1/redemptions', key, { goodsId, quantity: 1 });
const earnShare = (m: Member, key: string) => post(m, '/v1/points/earn', key, { action: 'share' });
const grant = (admin: Member, userId: number, amount: number, key: string) =>
  post(admin, '/v1/admin/points/grant', key, { userId, amount, reason: 'oom test' });

async function stateSnapshot() {
  const [{ ledger, redemptions }] = await ctx.sql<Array<{ ledger: number; redemptions: number }>>`
    SELECT (SELECT count(*) FROM ledger_entries)::int AS ledger, (SELECT count(*) FROM redemptions)::int AS redemptions`;
  return { redis: await snapshotRedis(ctx.redis, ctx.keys.prefix, NOT_STATE), ledger, redemptions };
}

async function usedMemory(): Promise<number> {
  const info = await server.admin.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

/** Waits for fire-and-forget confirms: no reservation left on any of the goods. */
async function noReservations(goodsIds: number[]) {
  await waitUntil(
    'confirms to land',
    async () => (await Promise.all(goodsIds.map((g) => ctx.redis.hlen(ctx.keys.reservations(g))))).every((n) => n === 0),
    5000,
  );
}

type Call = () => ReturnType<typeof post>;

interface OomWindow {
  members: Member[];
  /** A member never loaded into Redis: an earn must hydrate first. */
  cold: Member;
  goodsIds: number[];
  /** Every write tried while out of memory, with its answer; `call` replays it with the same key. */
  answers: Array<{ what: string; status: number; body: Record<string, unknown>; headers: Record<string, unknown>; call: Call }>;
  /** Domain state (Redis keys, ledger and redemption counts) just before memory ran out. */
  before: Awaited<ReturnType<typeof stateSnapshot>>;
}

/**
 * Members with some history (a redemption and an earn each, persisted), then every kind of write
 * — redemptions, earns, grants, hydrations — tried while Redis is out of memory. `whileOom` runs
 * before memory comes back; memory is back when this resolves.
 */
async function writesUnderOom(whileOom: (w: OomWindow) => Promise<void> = async () => {}): Promise<OomWindow> {
  const admin = await ctx.admin();
  const members = await ctx.createMembers(6);
  const [cold] = await ctx.createMembers(1);
  for (const m of members) await ctx.grant(m.id, 1000);
  const g1 = await ctx.createGoods({ pointsPrice: 100, stock: 20 });
  const g2 = await ctx.createGoods({ pointsPrice: 50, stock: 8, perUserLimit: 2 });
  const lotteryRes = await post(admin, '/v1/admin/lotteries', 'oom-lottery', {
    name: 'OOM draw',
    cost: 10,
    prizes: [
      { name: 'Limited', kind: 'points', points: 30, weight: 1, stock: 50 },
      { name: 'Nothing', kind: 'none', weight: 1 },
    ],
  });
  expect(lotteryRes.status).toBe(201);
  const lotteryId = Number(lotteryRes.body.id);
  for (const m of members) {
    expect((await redeem(m, g1.id, 'before-1')).status).toBe(201);
    expect((await earnShare(m, 'before-share')).status).toBe(200);
  }
  await noReservations([g1.id, g2.id]);
  await pipeline.drain();

  const w: OomWindow = { members, cold, goodsIds: [g1.id, g2.id], answers: [], before: await stateSnapshot() };
  await server.setOom(true);
  try {
    const track = async (what: string, call: Call) => {
      const res = await call();
      w.answers.push({ what, ...res, call });
    };
    for (const m of members) {
      await track(`redeem g1 ${m.id}`, () => redeem(m, g1.id, 'during-1'));
      await track(`redeem g2 ${m.id}`, () => redeem(m, g2.id, 'during-2'));
      await track(`earn ${m.id}`, () => earnShare(m, 'during-share'));
      await track(`grant ${m.id}`, () => grant(admin, m.id, 250, `during-grant-${m.id}`));
      await track(`lottery draw ${m.id}`, () => post(m, `/v1/lotteries/${lotteryId}/draws`, 'during-draw', {}));
    }
    await track('earn by a member not yet in Redis (hydration)', () => earnShare(cold, 'cold-share'));
    await track('grant to a member not yet in Redis (hydration)', () => grant(admin, cold.id, 100, 'cold-grant'));
    await whileOom(w);
  } finally {
    await server.setOom(false);
  }
  return w;
}

describe('Redis out of memory (noeviction)', () => {
  it('every Lua script either refuses its first write (writing nothing) or runs to completion', { timeout: 60_000 }, async () => {
    const r = ctx.redis as Redis; // the file's private single Redis
    const names = new Set(loadScripts().map((s) => s.name));
    expect([...names].filter((n) => !CASES.some((c) => c.script === n)), 'scripts without an OOM case').toEqual([]);

    const outcomes: Record<string, string> = {};
    for (const [i, c] of CASES.entries()) {
      const twinA = createKeys({ prefix: `${ctx.keys.prefix}x${i}a`, partitions: 4 });
      const twinB = createKeys({ prefix: `${ctx.keys.prefix}x${i}b`, partitions: 4 });
      await c.setup?.(r, twinA);
      await c.setup?.(r, twinB);
      // B runs with memory to spare: the reference result
      const replyB = await c.call(r, twinB);
      const snapB = await snapshotRedis(r, twinB.prefix);
      const beforeA = await snapshotRedis(r, twinA.prefix);
      let replyA: unknown;
      let errA: Error | undefined;
      await server.setOom(true);
      try {
        replyA = await c.call(r, twinA);
      } catch (err) {
        errA = err as Error;
      } finally {
        await server.setOom(false);
      }
      const afterA = await snapshotRedis(r, twinA.prefix);
      if (errA) {
        expect(errA.message, c.name).toMatch(OOM);
        expect(afterA, `${c.name}: refused, so nothing may have changed`).toEqual(beforeA);
        outcomes[c.name] = 'refused';
      } else {
        expect(replyA, c.name).toEqual(replyB);
        expect(afterA, `${c.name}: ran under OOM, so it must have done all of its work`).toEqual(snapB);
        outcomes[c.name] = 'completed';
      }
    }
    expect(outcomes).toEqual(Object.fromEntries(CASES.map((c) => [c.name, c.outcome])));
  });

  it('answers every write with 503 SERVICE_UNAVAILABLE + Retry-After and changes nothing', { timeout: 60_000 }, async () => {
    await writesUnderOom(async ({ members, goodsIds, answers, before }) => {
      const used = await usedMemory();
      const wrong = answers.filter(
        (a) => a.status !== 503 || a.body.code !== 'SERVICE_UNAVAILABLE' || a.headers['retry-after'] === undefined,
      );
      expect(wrong.map((a) => `${a.what}: ${a.status} ${JSON.stringify(a.body)}`), 'writes not answered 503 + Retry-After').toEqual([]);

      // reads and replays need no memory: they keep working
      const replay = await redeem(members[0], goodsIds[0], 'before-1');
      expect(replay.status).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      const balance = await ctx.app.inject({ method: 'GET', url: '/v1/me/points', headers: { authorization: `Bearer ${members[0].token}` } });
      expect(balance.statusCode).toBe(200);
      expect(balance.json().available).toBe(1000 - 100 + 10);

      await sleep(300); // anything fire-and-forget would have landed by now
      expect(await usedMemory(), 'still out of memory').toBeGreaterThan(1);
      const after = await stateSnapshot();
      expect(after, 'state after the refused writes').toEqual(before);
      console.info(`[redis-oom] used_memory ${used} B against maxmemory 1 B: ${answers.length} writes refused with 503, state unchanged`);
    });
  });

  it('reserve ok, then OOM at charge: the reservation is held, then released by the sweeper once memory is back', { timeout: 60_000 }, async () => {
    const { redis, keys, app } = ctx;
    const [p, x] = await ctx.createMembers(2);
    await ctx.grant(p.id, 1000); // one lot of 1000: a charge of 100 starts with HINCRBY (refused)
    await ctx.grant(x.id, 100); // one lot of 100: a charge of 100 starts with ZREM (allowed)
    const g3 = await ctx.createGoods({ pointsPrice: 100, stock: 5 });
    await pipeline.drain();

    // Fault injection: Redis runs out of memory between reserve and charge (the real script,
    // against the real server, right after the real reserve).
    // (Wrapping the service method, not the ioredis command: auto-pipelining re-enters commands.)
    const realCharge = app.points.charge;
    let armed = 0;
    app.points.charge = async (...args: Parameters<typeof realCharge>) => {
      if (armed > 0) {
        armed--;
        await server.setOom(true);
      }
      return realCharge.apply(app.points, args);
    };
    try {
      const pOp = keyHash('p-1');
      const outboxes = async () => Promise.all(Array.from({ length: keys.partitions }, (_, i) => redis.xlen(keys.outbox(i))));
      const outboxBefore = await outboxes();
      const goodsState = async () => ({
        stock: Number(await redis.hget(keys.goods(g3.id), 'stock')),
        bought: await redis.hget(keys.bought(g3.id), String(p.id)),
        reservations: Object.keys(await redis.hgetall(keys.reservations(g3.id))),
        deadlines: await redis.zcard(keys.reservationDeadlines(g3.id)),
        op: await redis.get(keys.idem(p.id, pOp)),
        avail: Number(await redis.hget(keys.account(p.id), 'avail')),
        lots: await redis.hgetall(keys.lotRemaining(p.id)),
      });
      const pLots = await redis.hgetall(keys.lotRemaining(p.id));

      armed = 1;
      const first = await redeem(p, g3.id, 'p-1');
      expect(first.status).toBe(503);
      expect(first.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(first.headers['retry-after']).toBeDefined();
      // settle could not write its tombstone, so the units stay reserved — but nothing is
      // half-done: no charge, no op, the unit is held (not sold) under its deadline
      const held = { stock: 4, bought: '1', reservations: [`${p.id}:${pOp}`], deadlines: 1, op: null, avail: 1000, lots: pLots };
      expect(await goodsState()).toEqual(held);
      expect(await outboxes()).toEqual(outboxBefore);

      // the client retries while Redis is still full: same reservation, still refused, no change
      const retry = await redeem(p, g3.id, 'p-1');
      expect(retry.status).toBe(503);
      expect(await goodsState()).toEqual(held);

      // the sweeper cannot settle it under OOM either (abort's tombstone is refused) ...
      await sleep(1100); // past the 1 s reservation deadline
      await expect(app.redemptions.sweep()).rejects.toThrow(OOM);
      expect(await goodsState()).toEqual(held);

      // ... while a charge whose first write frees memory (it empties x's only lot) goes through
      await server.setOom(false);
      armed = 1;
      const xOk = await redeem(x, g3.id, 'x-1');
      expect(xOk.status).toBe(201);
      expect(xOk.body.available).toBe(0);
      // the relay reads it (XREADGROUP is allowed) but cannot enqueue it (BullMQ refuses): it
      // stays pending under the relay's consumer name
      const xPart = keys.partitionOf(x.id);
      await waitUntil(
        'the relay to pick up the op charged under OOM',
        async () => Number(((await redis.xpending(keys.outbox(xPart), RELAY_GROUP)) as [number])[0]) > 0,
        5000,
      );
      await sleep(700); // at least one failed relay attempt
      expect(await redis.xlen(keys.outbox(xPart)), 'not relayed while OOM').toBe(outboxBefore[xPart] + 1);
      expect(Number(await redis.hget(keys.goods(g3.id), 'stock'))).toBe(3);

      // memory back: the sweeper releases p's reservation, the relay delivers x's op
      await server.setOom(false);
      expect(await app.redemptions.sweep()).toEqual({ confirmed: 0, released: 1 });
      expect(await goodsState()).toEqual({
        stock: 4,
        bought: null,
        reservations: [],
        deadlines: 0,
        op: expect.stringContaining('"kind":"aborted"'),
        avail: 1000,
        lots: pLots,
      });
      await pipeline.drain(10_000);
      const xRows = await ctx.sql`SELECT id FROM redemptions WHERE user_id = ${x.id}`;
      expect(xRows.map((r) => r.id)).toEqual([xOk.body.id]);

      // p's retry with the same key now goes through on a fresh reservation
      const again = await redeem(p, g3.id, 'p-1');
      expect(again.status).toBe(201);
      expect(again.body.available).toBe(900);
      await noReservations([g3.id]);
      expect(Number(await redis.hget(keys.goods(g3.id), 'stock'))).toBe(3);
    } finally {
      app.points.charge = realCharge;
      await server.setOom(false);
    }
  });

  it('recovers once memory is back: the refused requests succeed on retry and reconcile finds no drift', { timeout: 60_000 }, async () => {
    const { members, cold, goodsIds, answers } = await writesUnderOom();
    expect(answers.filter((a) => a.status !== 503).map((a) => a.what), 'writes that went through under OOM').toEqual([]);
    const retried = await Promise.all(answers.map((a) => a.call()));
    expect(retried.filter((r) => r.status !== 200 && r.status !== 201).map((r) => `${r.status} ${JSON.stringify(r.body)}`)).toEqual([]);
    expect(retried.filter((r) => r.body.code !== undefined)).toEqual([]);
    await noReservations(goodsIds);
    await pipeline.drain(15_000);

    expect((await queue.getFailed()).map((j) => `${j.id}: ${j.failedReason}`), 'persist jobs given up').toEqual([]);
    const reconcile = new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue });
    const report = await reconcile.run({ repair: false, confirmDelayMs: 200 });
    expect({
      drifting: report.drifting,
      negative: report.negative,
      lotMismatch: report.lotMismatch,
      mirrorDrift: report.mirrorDrift,
      stockDrift: report.stockDrift,
      inflight: report.inflight,
    }).toEqual({ drifting: [], negative: [], lotMismatch: [], mirrorDrift: [], stockDrift: [], inflight: 0 });

    // Redis balances = Postgres mirror, member by member
    const rows = await ctx.sql<Array<{ userId: number; available: number }>>`
      SELECT user_id AS "userId", available FROM point_accounts WHERE user_id = ANY(${[...members, cold].map((m) => m.id)}::bigint[])`;
    for (const row of rows) {
      expect(Number(await ctx.redis.hget(ctx.keys.account(row.userId), 'avail')), `member ${row.userId}`).toBe(row.available);
    }
    expect(rows.find((r) => r.userId === cold.id)?.available).toBe(10 + 100);
  });
});
