/**
 * Crash on a Redis Cluster: 2 API processes and 2 worker processes (relay, persist, sweeper) on 3
 * masters; mid-sale, one API and one worker process are SIGKILLed with requests and batches in
 * flight. Clients retry what got no answer on the surviving API with the same Idempotency-Key;
 * the surviving relay claims the dead one's pending entries, BullMQ redelivers its stalled
 * batch, the sweeper settles orphaned reservations. Then: every 201 is in Postgres exactly once,
 * nothing was persisted that was not acknowledged, balances and stock add up in Redis and
 * Postgres, and no reservation is left.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis, type RedisClient } from '../../src/redis/client.ts';
import { freePort, killAll, waitUntil } from '../crash/procs.ts';
import { waitForDrain } from '../support/persisted.ts';
import { clusterContext, postJson, startApi, startWorkers, type Answer, type ClusterSetup } from './support.ts';

const MEMBERS = 200;
const PER_MEMBER = 3;
const INITIAL = 1000;
const PRICE = 100;
const STOCK = 450;
const IN_FLIGHT = 80;
const KILL_AFTER_SOLD = 30;
const DEFINITE = new Set(['201', '409 SOLD_OUT', '409 RESERVATION_EXPIRED']);

let s: ClusterSetup;
let queue: Queue | undefined;
let queueConn: RedisClient | undefined;

beforeAll(async () => {
  s = await clusterContext({ basePort: 17110 });
});

afterAll(async () => {
  await killAll();
  await queue?.close().catch(() => {});
  queueConn?.disconnect();
  await s?.ctx.close();
  await s?.cluster.destroy();
});

const kind = (a: Answer) => (a.status === undefined ? `error ${a.error}` : a.status === 201 ? '201' : `${a.status} ${a.body?.code ?? ''}`);

describe('API and worker processes killed on a Redis Cluster', () => {
  it('loses and duplicates nothing acknowledged', { timeout: 150_000 }, async () => {
    const { ctx } = s;
    const { keys, redis, sql } = ctx;
    const members = await ctx.createMembers(MEMBERS);
    for (let i = 0; i < members.length; i += 50) await Promise.all(members.slice(i, i + 50).map((m) => ctx.grant(m.id, INITIAL)));
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK });

    const ports = [await freePort(), await freePort()];
    const workerEnv = { SWEEP_EVERY_MS: 500, RELAY_CLAIM_IDLE_MS: 1000, RESERVATION_TIMEOUT_MS: 1500 };
    const apiEnv = { RESERVATION_TIMEOUT_MS: 1500 };
    const [api1, , workers1] = await Promise.all([
      startApi('api#1', ctx, ports[0], apiEnv),
      startApi('api#2', ctx, ports[1], apiEnv),
      startWorkers('workers#1', ctx, 'relay,persist,sweeper', workerEnv),
      startWorkers('workers#2', ctx, 'relay,persist,sweeper', workerEnv),
    ]);

    const attempts = members.flatMap((m) => Array.from({ length: PER_MEMBER }, (_, i) => ({ m, key: `crash-${i}`, answers: [] as Answer[] })));
    attempts.sort(() => Math.random() - 0.5);
    let apiUp = [true, true];
    const inFlight = [0, 0];
    const send = async (a: (typeof attempts)[number], lane: number) => {
      const i = apiUp[lane % 2] ? lane % 2 : 1;
      inFlight[i]++;
      a.answers.push(await postJson(`http://127.0.0.1:${ports[i]}/v1/redemptions`, a.m.token, a.key, { goodsId: goods.id, quantity: 1 }));
      inFlight[i]--;
    };
    let next = 0;
    const senders = Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, lane) => {
        while (next < attempts.length) await send(attempts[next++], lane);
      }),
    );
    const stockNow = async () => Number(await redis.hget(keys.goods(goods.id), 'stock'));
    await waitUntil(
      'the sale to be under way with requests in flight at api#1',
      async () => STOCK - (await stockNow()) >= KILL_AFTER_SOLD && inFlight[0] >= 10,
      30_000,
      1,
    );
    // api#1 keeps getting requests until it is gone: some are always in flight when the SIGKILL
    // lands (waiting for 10 in flight was not enough: on a busy host their answers could already
    // sit in this process's socket buffers, all written before the kill)
    await Promise.all([api1.kill9(), workers1.kill9()]);
    apiUp = [false, true];
    await senders;
    const first = attempts.map((a) => kind(a.answers[0]));
    const cutOff = first.filter((k) => k.startsWith('error')).length;
    expect(cutOff, 'requests cut off by the kill').toBeGreaterThan(0);

    // retry whatever has no definite answer on the surviving API, same key, until it has one
    let r = 0;
    const open = attempts.filter((a) => !DEFINITE.has(kind(a.answers[a.answers.length - 1])));
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (r < open.length) {
          const a = open[r++];
          await waitUntil(
            `a definite answer for member ${a.m.id} ${a.key}`,
            async () => {
              await send(a, 1);
              return DEFINITE.has(kind(a.answers[a.answers.length - 1]));
            },
            20_000,
            200,
          );
        }
      }),
    );
    const finalKinds: Record<string, number> = {};
    for (const a of attempts) {
      const k = kind(a.answers[a.answers.length - 1]);
      finalKinds[k] = (finalKinds[k] ?? 0) + 1;
    }
    console.info(`[cluster crash] ${cutOff} requests cut off by the kill, ${open.length} retried; final ${JSON.stringify(finalKinds)}`);

    queueConn = createRedis(ctx.env, 'worker');
    queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: keys.queuePrefix(PERSIST_QUEUE) });
    await waitUntil(
      'no reservation left, outbox and persist queue drained',
      async () => (await redis.hlen(keys.reservations(goods.id))) + (await redis.zcard(keys.reservationDeadlines(goods.id))) === 0,
      20_000,
      100,
    );
    await waitForDrain(redis, keys, queue, 30_000);
    expect((await queue.getFailed()).map((j) => j.failedReason), 'persist jobs given up').toEqual([]);

    // a key answered 201 always names the same redemption
    const acked = attempts.filter((a) => a.answers.some((x) => x.status === 201));
    for (const a of acked) expect(new Set(a.answers.filter((x) => x.status === 201).map((x) => x.body!.id)).size).toBe(1);
    const ackedIds = acked.map((a) => String(a.answers.find((x) => x.status === 201)!.body!.id));
    const rows = await sql<Array<{ id: string; userId: number; quantity: number; n: number }>>`
      SELECT r.id, r.user_id AS "userId", r.quantity, (SELECT count(*) FROM ledger_entries l WHERE l.op_id = r.op_id)::int AS n
      FROM redemptions r WHERE r.goods_id = ${goods.id}`;
    const persisted = new Set(rows.map((x) => x.id));
    expect(ackedIds.filter((id) => !persisted.has(id)), 'acknowledged but not persisted').toEqual([]);
    expect(rows.filter((x) => !ackedIds.includes(x.id)).map((x) => x.id), 'persisted but never acknowledged').toEqual([]);
    expect(rows.filter((x) => x.n !== 1 || x.quantity !== 1), 'ledger rows per redemption').toEqual([]);

    const stock = await stockNow();
    expect({ stock, sold: rows.length, total: stock + rows.length }).toEqual({ stock: STOCK - rows.length, sold: rows.length, total: STOCK });
    const bought = new Map<number, number>();
    for (const x of rows) bought.set(Number(x.userId), (bought.get(Number(x.userId)) ?? 0) + 1);
    const accounts = new Map(
      (await sql<Array<{ userId: number; available: number }>>`SELECT user_id AS "userId", available FROM point_accounts`).map((a) => [Number(a.userId), Number(a.available)]),
    );
    const mismatched: unknown[] = [];
    for (const m of members) {
      const want = INITIAL - PRICE * (bought.get(m.id) ?? 0);
      const live = Number(await redis.hget(keys.account(m.id), 'avail'));
      if (live !== want || accounts.get(m.id) !== want) mismatched.push({ member: m.id, want, redis: live, postgres: accounts.get(m.id) });
    }
    expect(mismatched, 'balances: Redis vs Postgres vs persisted redemptions').toEqual([]);
  });
});
