/**
 * Crash test of the single-script redemption (lua/redeem-9.lua, REDEEM_PATH=auto on one Redis
 * node): the API is a real process, the workers another. 300 redemptions from 150 members, 150 in
 * flight at any time, hit one item with 280 units; the API is SIGKILLed once 60 units are sold and
 * with requests in hand (restarted and killed again if a kill cuts nothing off). Then it restarts,
 * clients retry every request that got no answer with its Idempotency-Key and replay some that
 * did, the pipeline drains, and: every 201 is in Postgres exactly once, nothing unacknowledged was
 * charged, balances in Redis and Postgres match what was sold, stock adds up, and no reservation
 * exists (this path holds none).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/redis/client.ts';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { childEnv, freePort, killAll, postRedemption, shuffledAttempts, spawnTs, waitUntil, type Child, type RedeemAttempt } from './procs.ts';

const MEMBERS = 150;
const PER_MEMBER = 2;
const INITIAL = 1000;
const PRICE = 100;
const STOCK = 280;
const IN_FLIGHT = 150;
const KILL_AFTER_SOLD = 60;
const MAX_KILLS = 4;

let ctx: TestContext;
let port: number;
let queue: Queue | undefined;
const conns: Redis[] = [];

beforeAll(async () => {
  ctx = await createTestContext();
  port = await freePort();
});

afterAll(async () => {
  await killAll();
  await queue?.close().catch(() => {});
  for (const c of conns) c.disconnect();
  await ctx?.close();
});

describe('API killed with single-script redemptions in flight', () => {
  it('loses no acknowledged redemption and charges nobody for one it did not record', { timeout: 85_000 }, async () => {
    const { keys, redis, sql } = ctx;
    const members = await ctx.createMembers(MEMBERS);
    for (let i = 0; i < members.length; i += 50) {
      await Promise.all(members.slice(i, i + 50).map((m) => ctx.grant(m.id, INITIAL)));
    }
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK });

    const base = `http://127.0.0.1:${port}`;
    const apiEnv = childEnv(ctx.env, { HOST: '127.0.0.1', PORT: port, API_PROCESSES: 1, LOG_LEVEL: 'warn', REDEEM_PATH: 'auto' });
    const startApi = async (name: string): Promise<Child> => {
      const api = spawnTs(name, 'src/server.ts', [], apiEnv);
      await waitUntil(
        `${name} to answer on ${base}`,
        async () => {
          if (api.exited()) throw new Error(`${name} exited:\n${api.output().slice(-4000)}`);
          return fetch(`${base}/health/live`).then((r) => r.ok, () => false);
        },
        30_000,
        100,
      );
      return api;
    };
    const workers = spawnTs(
      'workers',
      'workers/main.ts',
      ['--only', 'relay,persist,sweeper', '--concurrency', '2', '--lock-ms', '2000'],
      childEnv(ctx.env, { LOG_LEVEL: 'warn', SWEEP_EVERY_MS: 500 }),
    );
    let api = await startApi('api#1');

    let inFlight = 0;
    const send = async (a: RedeemAttempt): Promise<void> => {
      inFlight++;
      try {
        await postRedemption(base, goods.id, a);
      } finally {
        inFlight--;
      }
    };

    const attempts = shuffledAttempts(members, PER_MEMBER, 'crash-a');
    const stockNow = async () => Number(await redis.hget(keys.goods(goods.id), 'stock'));
    let next = 0;
    let cutOff = 0;
    const lives: string[] = [];
    for (let life = 1; cutOff === 0; life++) {
      if (life > MAX_KILLS) throw new Error(`no kill cut off a request in ${MAX_KILLS} tries: ${lives.join('; ')}`);
      if (life > 1) api = await startApi(`api#${life}`);
      let killed = false;
      let sendersDone = false;
      const senders = Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (!killed && next < attempts.length) {
            const a = attempts[next++];
            await send(a);
            // cut off, or refused by the API that is gone: this sender stops
            if (a.error !== undefined) break;
          }
        }),
      ).then(() => {
        sendersDone = true;
      });
      const stockAtStart = await stockNow();
      const enough = life === 1 ? KILL_AFTER_SOLD : 0;
      await waitUntil(
        `${api.name} to sell ${enough} units with requests in hand`,
        async () => {
          if (sendersDone) throw new Error(`every request was answered before a kill landed: ${lives.join('; ')}`);
          const stock = await stockNow();
          if (stockAtStart - stock < enough && stock > 0) return false;
          if (inFlight < IN_FLIGHT / 10) return false;
          // the senders keep sending until the SIGKILL has landed (each stops at its first request
          // without an answer): stopping them first let a fast API (one script call per batch of
          // redemptions) answer every request in hand before the kill took effect, and the kill
          // cut nothing off
          await api.kill9();
          killed = true;
          return true;
        },
        40_000,
        1,
      );
      await senders;
      cutOff = attempts.filter((a) => a.status === undefined && a.error !== undefined).length;
      lives.push(`${api.name}: ${cutOff} requests cut off so far`);
    }
    const unanswered = attempts.filter((a) => a.status === undefined);

    // restart; retry what got no answer, replay some that did
    api = await startApi(`api#${lives.length + 1}`);
    await Promise.all(unanswered.map(send));
    const answered = attempts.filter((a) => a.status === 201).slice(0, 20);
    const replays = answered.map((a) => ({ ...a, status: undefined, body: undefined, replayed: undefined }));
    await Promise.all(replays.map(send));
    expect(attempts.filter((a) => a.status === undefined).map((a) => a.error), 'retries without an answer').toEqual([]);
    for (let i = 0; i < replays.length; i++) {
      expect(replays[i]).toMatchObject({ status: 201, replayed: true, body: { id: answered[i].body!.id } });
    }

    const queueConn = createRedis(ctx.env.REDIS_URL, 'worker');
    conns.push(queueConn);
    queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: keys.queuePrefix(PERSIST_QUEUE) });
    await waitUntil(
      'outbox and persist queue empty',
      async () => {
        const lens = await Promise.all(Array.from({ length: keys.partitions }, (_, p) => redis.xlen(keys.outbox(p))));
        const counts = await queue!.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
        return lens.reduce((a, b) => a + b, 0) + Object.values(counts).reduce((a, b) => a + b, 0) === 0;
      },
      30_000,
      100,
    );
    console.info(`[api-kill-atonce] ${lives.join('; ')}; ${unanswered.length} retried`);

    expect((await queue.getFailed()).map((j) => `${j.id}: ${j.failedReason}`), 'persist jobs given up').toEqual([]);
    const acked = attempts.filter((a) => a.status === 201);
    const ackedIds = acked.map((a) => a.body!.id!);
    expect(new Set(ackedIds).size, 'one redemption per (member, key)').toBe(acked.length);
    expect(attempts.filter((a) => a.status !== 201 && a.body?.code !== 'SOLD_OUT')).toEqual([]);

    const rows = await sql<Array<{ id: string; user_id: number; quantity: number; points_spent: number; n: number }>>`
      SELECT r.id, r.user_id, r.quantity, r.points_spent,
             (SELECT count(*) FROM ledger_entries l WHERE l.op_id = r.op_id)::int AS n
      FROM redemptions r WHERE r.goods_id = ${goods.id}`;
    const persisted = new Set(rows.map((r) => r.id));
    expect(ackedIds.filter((id) => !persisted.has(id)), 'acknowledged but not persisted').toEqual([]);
    expect(rows.filter((r) => !ackedIds.includes(r.id)).map((r) => r.id), 'persisted but never acknowledged').toEqual([]);
    expect(rows.filter((r) => r.n !== 1 || r.quantity !== 1 || Number(r.points_spent) !== PRICE)).toEqual([]);

    const perMember = new Map<number, number>();
    for (const r of rows) perMember.set(Number(r.user_id), (perMember.get(Number(r.user_id)) ?? 0) + r.quantity);
    const accounts = new Map(
      (await sql<Array<{ user_id: number; available: number }>>`SELECT user_id, available FROM point_accounts`).map((a) => [
        Number(a.user_id),
        Number(a.available),
      ]),
    );
    const mismatched: unknown[] = [];
    for (const m of members) {
      const expected = INITIAL - PRICE * (perMember.get(m.id) ?? 0);
      const live = Number(await redis.hget(keys.account(m.id), 'avail'));
      const bought = Number((await redis.hget(keys.bought(goods.id), String(m.id))) ?? 0);
      if (live !== expected || accounts.get(m.id) !== expected || bought !== (perMember.get(m.id) ?? 0)) {
        mismatched.push({ member: m.id, expected, redis: live, postgres: accounts.get(m.id), bought });
      }
    }
    expect(mismatched, 'balances vs persisted redemptions').toEqual([]);
    const sold = rows.reduce((a, r) => a + r.quantity, 0);
    expect({ stock: await stockNow(), sold }).toEqual({ stock: STOCK - sold, sold });
    expect(await redis.hlen(keys.reservations(goods.id)), 'reservations (this path holds none)').toBe(0);
  });
});
