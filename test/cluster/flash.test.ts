/**
 * A flash sale on a Redis Cluster of 3 masters: one item with small stock, hundreds of concurrent
 * redemptions from many members through 2 API processes, persisted by 2 worker processes, all
 * started with REDIS_CLUSTER_NODES. Nothing oversells, every 201 is persisted exactly once,
 * Postgres equals Redis, and the state really is spread: outboxes on every master, each BullMQ
 * queue inside one slot.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis, type RedisClient } from '../../src/redis/client.ts';
import { freePort, killAll } from '../crash/procs.ts';
import { waitForDrain } from '../support/persisted.ts';
import { clusterContext, keysPerMaster, postJson, startApi, startWorkers, type Answer, type ClusterSetup } from './support.ts';

const MEMBERS = 200;
const PER_MEMBER = 2;
const INITIAL = 1000;
const PRICE = 100;
const STOCK = 60;
const IN_FLIGHT = 100;

let s: ClusterSetup;
let queue: Queue | undefined;
let queueConn: RedisClient | undefined;

beforeAll(async () => {
  s = await clusterContext({ basePort: 17100 });
});

afterAll(async () => {
  await killAll();
  await queue?.close().catch(() => {});
  queueConn?.disconnect();
  await s?.ctx.close();
  await s?.cluster.destroy();
});

describe('flash sale on a Redis Cluster', () => {
  it('sells exactly the stock through 2 APIs and 2 worker processes, persisted once, spread over 3 masters', { timeout: 150_000 }, async () => {
    const { ctx, cluster } = s;
    const { keys, redis, sql } = ctx;
    const members = await ctx.createMembers(MEMBERS);
    for (let i = 0; i < members.length; i += 50) await Promise.all(members.slice(i, i + 50).map((m) => ctx.grant(m.id, INITIAL)));
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK });

    const ports = [await freePort(), await freePort()];
    await Promise.all([
      startApi('api#1', ctx, ports[0]),
      startApi('api#2', ctx, ports[1]),
      startWorkers('workers#1', ctx, 'relay,persist,sweeper', { SWEEP_EVERY_MS: 500 }),
      startWorkers('workers#2', ctx, 'relay,persist', {}),
    ]);

    const attempts = members.flatMap((m) => Array.from({ length: PER_MEMBER }, (_, i) => ({ m, key: `flash-${i}`, answer: {} as Answer })));
    attempts.sort(() => Math.random() - 0.5);
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, lane) => {
        while (next < attempts.length) {
          const a = attempts[next++];
          const url = `http://127.0.0.1:${ports[lane % 2]}/v1/redemptions`;
          a.answer = await postJson(url, a.m.token, a.key, { goodsId: goods.id, quantity: 1 });
        }
      }),
    );
    const statuses: Record<string, number> = {};
    for (const a of attempts) {
      const k = a.answer.status === 201 ? '201' : `${a.answer.status ?? a.answer.error} ${a.answer.body?.code ?? ''}`;
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
    expect(attempts.filter((a) => a.answer.status !== 201 && a.answer.body?.code !== 'SOLD_OUT').map((a) => a.answer), JSON.stringify(statuses)).toEqual([]);
    const acked = attempts.filter((a) => a.answer.status === 201);
    expect(acked.length, 'units sold').toBe(STOCK);

    queueConn = createRedis(ctx.env, 'worker');
    queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: keys.queuePrefix(PERSIST_QUEUE) });
    await waitForDrain(redis, keys, queue, 30_000);
    await expect.poll(async () => (await redis.hlen(keys.reservations(goods.id))) + (await redis.zcard(keys.reservationDeadlines(goods.id))), { timeout: 10_000 }).toBe(0);
    expect((await queue.getFailed()).map((j) => j.failedReason), 'persist jobs given up').toEqual([]);

    // persisted exactly once, nothing else
    const ackedIds = acked.map((a) => String(a.answer.body!.id));
    expect(new Set(ackedIds).size).toBe(acked.length);
    const rows = await sql<Array<{ id: string; userId: number; quantity: number; n: number }>>`
      SELECT r.id, r.user_id AS "userId", r.quantity, (SELECT count(*) FROM ledger_entries l WHERE l.op_id = r.op_id)::int AS n
      FROM redemptions r WHERE r.goods_id = ${goods.id}`;
    const persisted = new Set(rows.map((r) => r.id));
    expect(ackedIds.filter((id) => !persisted.has(id)), 'acknowledged but not persisted').toEqual([]);
    expect(rows.filter((r) => !ackedIds.includes(r.id)).map((r) => r.id), 'persisted but never acknowledged').toEqual([]);
    expect(rows.filter((r) => r.n !== 1 || r.quantity !== 1), 'ledger rows per redemption').toEqual([]);

    // Redis = Postgres: stock, balances, bought counts
    const stock = Number(await redis.hget(keys.goods(goods.id), 'stock'));
    expect({ stock, sold: rows.length }).toEqual({ stock: 0, sold: STOCK });
    const bought = new Map<number, number>();
    for (const r of rows) bought.set(Number(r.userId), (bought.get(Number(r.userId)) ?? 0) + 1);
    const accounts = new Map(
      (await sql<Array<{ userId: number; available: number }>>`SELECT user_id AS "userId", available FROM point_accounts`).map((a) => [Number(a.userId), Number(a.available)]),
    );
    const mismatched: unknown[] = [];
    for (const m of members) {
      const want = INITIAL - PRICE * (bought.get(m.id) ?? 0);
      const live = Number(await redis.hget(keys.account(m.id), 'avail'));
      if (live !== want || accounts.get(m.id) !== want) mismatched.push({ member: m.id, want, redis: live, postgres: accounts.get(m.id) });
    }
    expect(mismatched, 'balances: Redis vs Postgres vs sold').toEqual([]);

    // spread: every master holds state and outboxes; each queue's keys sit on one master
    const all = await keysPerMaster(cluster, keys.prefix);
    const outboxes = await keysPerMaster(cluster, keys.prefix, '*:outbox');
    const persistQueue = await keysPerMaster(cluster, keys.queuePrefix(PERSIST_QUEUE));
    const where = (m: Map<number, string[]>) => [...m].map(([port, ks]) => `${port}:${ks.length}`).join(' ');
    const queueKeys = await keysPerMaster(cluster, keys.prefix, '{q:*');
    console.info(
      `[cluster flash] ${JSON.stringify(statuses)}; keys per master ${where(all)}; outboxes ${where(outboxes)}; ` +
        `persist queue ${where(persistQueue)}; all queues ${where(queueKeys)}`,
    );
    expect(all.size).toBe(3);
    expect([...all.values()].every((ks) => ks.length > 0), 'every master holds keys').toBe(true);
    expect([...outboxes.values()].every((ks) => ks.length > 0), 'every master holds outbox streams').toBe(true);
    expect([...outboxes.values()].reduce((a, ks) => a + ks.length, 0)).toBe(keys.partitions);
    expect([...persistQueue.values()].filter((ks) => ks.length > 0).length, 'the persist queue in one slot').toBe(1);
    expect([...queueKeys.values()].filter((ks) => ks.length > 0).length, 'queues on more than one master').toBeGreaterThan(1);
  });
});
