/**
 * Failover on a Redis Cluster: 3 masters with one replica each (AOF, appendfsync always), the API
 * answering a write only once a replica holds it (REDIS_WAIT_REPLICAS=1). Clients keep granting
 * points while one master is SIGKILLed: its replica is promoted, the killed node comes back as the
 * new master's replica. Every write that was refused meanwhile got a 503 (or no answer), every
 * acknowledged op is still in Redis after the failover and in Postgres, and once the refused ones
 * are retried with their Idempotency-Keys, the ledger holds exactly the acknowledged ops.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis, type RedisClient } from '../../src/redis/client.ts';
import { freePort, killAll, sleep, waitUntil } from '../crash/procs.ts';
import { expectBalancesMatch, expectLedgerExactlyOnce, waitForDrain, type AckedOp } from '../support/persisted.ts';
import { clusterContext, postJson, startApi, startWorkers, type Answer, type ClusterSetup } from './support.ts';

const MEMBERS = 40;
const LANES = 16;

let s: ClusterSetup;
let queue: Queue | undefined;
let queueConn: RedisClient | undefined;

beforeAll(async () => {
  s = await clusterContext(
    { basePort: 17130, replicas: 1, appendonly: true, nodeTimeoutMs: 1000 },
    { REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 500, LAG_CHECK_MS: 300 },
  );
});

afterAll(async () => {
  await killAll();
  await queue?.close().catch(() => {});
  queueConn?.disconnect();
  await s?.ctx.close();
  await s?.cluster.destroy();
});

interface Write {
  userId: number;
  key: string;
  amount: number;
  answers: Answer[];
  phase: string;
}

describe('failover of a Redis Cluster master', () => {
  it('loses no acknowledged write and refuses the rest with 503 while a replica takes over', { timeout: 150_000 }, async () => {
    const { ctx, cluster } = s;
    const { keys, redis, sql } = ctx;
    const members = await ctx.createMembers(MEMBERS);
    const admin = await ctx.admin();
    const port = await freePort();
    const [api] = await Promise.all([
      startApi('api', ctx, port, { LAG_CHECK_MS: 300 }),
      startWorkers('workers', ctx, 'relay,persist,sweeper,reconcile', { RECONCILE_EVERY_MS: 1000, LAG_CHECK_MS: 300 }),
    ]);
    const url = `http://127.0.0.1:${port}/v1/admin/points/grant`;

    let phase = 'before';
    let stop = false;
    let seq = 0;
    const writes: Write[] = [];
    const send = async (w: Write) => {
      w.answers.push(await postJson(url, admin.token, w.key, { userId: w.userId, amount: w.amount, reason: 'failover test' }, 10_000));
    };
    const acked = () => writes.filter((w) => w.answers.some((a) => a.status === 200));
    const writers = Promise.all(
      Array.from({ length: LANES }, async () => {
        while (!stop) {
          const m = members[seq % MEMBERS];
          const w: Write = { userId: m.id, key: `fo-${seq}`, amount: 1 + (seq % 9), answers: [], phase };
          seq++;
          writes.push(w);
          await send(w);
          if (w.answers[0].status !== 200) await sleep(20);
        }
      }),
    );
    const ackedIn = (p: string) => acked().filter((w) => w.phase === p).length;
    await waitUntil('writes acknowledged before the kill', async () => ackedIn('before') >= 60, 30_000, 50);

    // ---- kill a master; its replica is promoted; the old master comes back as a replica
    const [victim] = await cluster.masters();
    phase = 'failover';
    const killedAt = Date.now();
    await victim.kill9();
    await cluster.waitForOk(30_000, 3);
    const promotedMs = Date.now() - killedAt;
    await victim.restart();
    await cluster.waitForOk(30_000, 3);
    const rejoinedMs = Date.now() - killedAt;
    phase = 'after';
    await waitUntil('writes acknowledged after the failover', async () => ackedIn('after') >= 60, 30_000, 50);
    stop = true;
    await writers;

    // ---- what was refused was refused as unavailable, never as a client or server error
    const first = writes.map((w) => w.answers[0]);
    const refused = writes.filter((w) => w.answers[0].status !== 200);
    const kinds: Record<string, number> = {};
    for (const a of first) {
      const k = a.status === 200 ? '200' : `${a.status ?? a.error} ${a.body?.code ?? ''}`.trim();
      kinds[k] = (kinds[k] ?? 0) + 1;
    }
    console.info(
      `[cluster failover] promoted after ${promotedMs} ms, old master rejoined after ${rejoinedMs} ms; ${writes.length} writes: ` +
        `${JSON.stringify(kinds)}; refused per phase ${JSON.stringify(Object.fromEntries(['before', 'failover', 'after'].map((p) => [p, refused.filter((w) => w.phase === p).length])))}`,
    );
    const errorsLogged = api.output().split('\n').filter((l) => l.includes('"code":"INTERNAL"')).slice(0, 3).join('\n');
    expect(refused.filter((w) => !(w.answers[0].status === 503 || w.answers[0].status === undefined)).map((w) => w.answers[0]), `refusals other than 503; API errors:\n${errorsLogged}`).toEqual([]);
    expect(refused.filter((w) => w.phase === 'failover').length, 'writes refused during the failover').toBeGreaterThan(0);

    // ---- every acknowledged op survived: in Redis (balances) and, once drained, in Postgres
    queueConn = createRedis(ctx.env, 'worker');
    queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: keys.queuePrefix(PERSIST_QUEUE) });
    await waitForDrain(redis, keys, queue, 30_000);
    const ackedOps = new Map<string, AckedOp>();
    for (const w of acked()) ackedOps.set(String(w.answers.find((a) => a.status === 200)!.body!.opId), { userId: w.userId, delta: w.amount });
    const inLedger = new Set(
      (await sql<Array<{ opId: string }>>`SELECT op_id AS "opId" FROM ledger_entries WHERE op_id = ANY(${[...ackedOps.keys()]}::text[])`).map((r) => r.opId),
    );
    expect([...ackedOps.keys()].filter((id) => !inLedger.has(id)), 'acknowledged ops missing from Postgres after the failover').toEqual([]);
    const short: unknown[] = [];
    for (const m of members) {
      const want = [...ackedOps.values()].filter((a) => a.userId === m.id).reduce((a, b) => a + b.delta, 0);
      const live = Number(await redis.hget(keys.account(m.id), 'avail'));
      if (live < want) short.push({ member: m.id, acknowledged: want, redis: live });
    }
    expect(short, 'Redis balances missing acknowledged points after the failover').toEqual([]);

    // ---- retry every refused write with its key until it has an answer: then the ledger is
    // exactly the acknowledged ops, and Redis = Postgres = the sum of them
    let r = 0;
    await Promise.all(
      Array.from({ length: LANES }, async () => {
        while (r < refused.length) {
          const w = refused[r++];
          await waitUntil(
            `a definite answer for ${w.key}`,
            async () => {
              await send(w);
              return w.answers[w.answers.length - 1].status === 200;
            },
            20_000,
            100,
          );
        }
      }),
    );
    await waitForDrain(redis, keys, queue, 30_000);
    const all = new Map<string, AckedOp>();
    for (const w of writes) {
      const ok = w.answers.filter((a) => a.status === 200).map((a) => String(a.body!.opId));
      expect(new Set(ok).size, `one op for ${w.key}`).toBe(1);
      all.set(ok[0], { userId: w.userId, delta: w.amount });
    }
    await expectLedgerExactlyOnce(sql, queue, all);
    await expectBalancesMatch(sql, redis, keys, members.map((m) => m.id), all);
  });
});
