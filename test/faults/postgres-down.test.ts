/**
 * Fault: Postgres unreachable for 20 s under a steady load of redemptions, earns and grants.
 *
 * The machine has one shared Postgres server, so it is not stopped: instead the API (in process)
 * and the persist workers (a child process: workers/main.ts --only relay,persist) reach it through
 * a TCP proxy that the test cuts — every open connection reset, every new one reset on accept —
 * for 20 s and then restores. The test's own checks use a direct connection.
 *
 * While Postgres is away the API keeps answering from Redis (201/200, never 5xx), the ledger does
 * not move, persist jobs fail and are retried with exponential backoff (PERSIST_JOB_OPTIONS); once
 * it is back the backlog drains and every acknowledged op is in ledger_entries exactly once,
 * redemptions match the 201s and point_accounts match the Redis balances.
 */
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { PERSIST_JOB_OPTIONS, PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { childEnv, killAll, sleep, spawnTs, waitUntil, type Child } from '../crash/procs.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { dbUrl } from '../support/urls.ts';
import { startTcpProxy, type TcpProxy } from './support.ts';

const OUTAGE_MS = 20_000;
const MEMBERS = 40;
const PRICE = 10;
const GRANT = 100_000;
const CAPS = { share: { points: 10, perDay: 5 }, review: { points: 20, perDay: 3 } } as const;

let ctx: TestContext;
let proxy: TcpProxy;
let api: FastifyInstance | undefined;
let queueConn: Redis | undefined;
let queue: Queue | undefined;
let producing = false;
let producer: Promise<void> | undefined;

beforeAll(async () => {
  ctx = await createTestContext({ RELAY_BATCH: 50 });
  const direct = new URL(dbUrl(ctx.dbName));
  proxy = await startTcpProxy(Number(direct.port || 5432), direct.hostname);
});

afterAll(async () => {
  producing = false;
  await producer?.catch(() => {});
  await killAll();
  await api?.close().catch(() => {});
  await queue?.close().catch(() => {});
  queueConn?.disconnect();
  await proxy?.close();
  await ctx?.close();
});

interface Outcome {
  kind: 'redeem' | 'earn' | 'grant';
  userId: number;
  status: number;
  code?: string;
  opId?: string;
  sentAt: number;
  doneAt: number;
}

describe('Postgres unreachable for 20 s under load', () => {
  it('keeps accepting from Redis, retries persistence with backoff, then persists every acknowledged op once', { timeout: 85_000 }, async () => {
    const { keys, redis, sql } = ctx;
    const t0 = Date.now();
    const marks: string[] = [];
    const mark = (what: string) => marks.push(`${what}@${((Date.now() - t0) / 1000).toFixed(1)}s`);

    // API and workers both reach Postgres only through the proxy
    const proxied = new URL(dbUrl(ctx.dbName));
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    api = await buildApp({ ...ctx.env, DATABASE_URL: proxied.toString(), DATABASE_POOL: 4 }, { logger: false });
    const workers: Child = spawnTs(
      'workers',
      'workers/main.ts',
      ['--only', 'relay,persist', '--concurrency', '2'],
      // a shorter first backoff than production's 500 ms: a slow machine fails a job more times in
      // the 20 s outage, and at 500 ms its 7th wait alone is 32 s, past the drain this test allows
      childEnv(ctx.env, { DATABASE_URL: proxied.toString(), LOG_LEVEL: 'info', PERSIST_BACKOFF_MS: 150 }),
    );
    queueConn = createRedis(ctx.env.REDIS_URL, 'worker');
    queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: keys.queuePrefix(PERSIST_QUEUE) });

    const outcomes: Outcome[] = [];
    const call = async (
      kind: Outcome['kind'],
      userId: number,
      token: string,
      url: string,
      key: string,
      payload: Record<string, unknown>,
    ) => {
      const sentAt = Date.now();
      const res = await api!.inject({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${token}`, 'idempotency-key': key },
        payload,
      });
      const body = res.json() as { id?: string; opId?: string; code?: string };
      outcomes.push({ kind, userId, status: res.statusCode, code: body.code, opId: body.id ?? body.opId, sentAt, doneAt: Date.now() });
    };

    // ---- seed: members with points, one goods item with plenty of stock
    const members = await ctx.createMembers(MEMBERS);
    const admin = await ctx.admin();
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: 1_000_000 });
    for (let i = 0; i < members.length; i += 20) {
      await Promise.all(
        members.slice(i, i + 20).map((m) =>
          call('grant', m.id, admin.token, '/v1/admin/points/grant', `seed-${m.id}`, { userId: m.id, amount: GRANT, reason: 'seed' }),
        ),
      );
    }
    await workers.waitForOutput('"msg":"workers started"', 30_000);
    mark('seeded');

    // ---- steady load: 10 redemptions every 100 ms, an earn every tick while caps allow, a grant every 5th tick
    const earned = new Map<string, number>();
    producing = true;
    let tick = 0;
    producer = (async () => {
      while (producing) {
        const t = tick++;
        const batch: Array<Promise<void>> = [];
        for (let i = 0; i < 10; i++) {
          const m = members[(t * 10 + i) % members.length];
          batch.push(call('redeem', m.id, m.token, '/v1/redemptions', `r-${t}-${i}`, { goodsId: goods.id, quantity: 1 }));
        }
        const e = members[t % members.length];
        for (const action of ['share', 'review'] as const) {
          const n = earned.get(`${e.id}:${action}`) ?? 0;
          if (n < CAPS[action].perDay) {
            earned.set(`${e.id}:${action}`, n + 1);
            batch.push(call('earn', e.id, e.token, '/v1/points/earn', `${action}-${n}`, { action }));
            break;
          }
        }
        if (t % 5 === 0) {
          const g = members[(t / 5) % members.length];
          batch.push(call('grant', g.id, admin.token, '/v1/admin/points/grant', `g-${t}`, { userId: g.id, amount: 50, reason: 'load' }));
        }
        await Promise.all(batch);
        await sleep(100);
      }
    })();

    const ledgerRows = async () => (await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM ledger_entries`)[0].n;
    await waitUntil('ops to reach Postgres before the outage', async () => (await ledgerRows()) > MEMBERS, 20_000, 100);
    await sleep(2000);
    mark('steady');

    // ---- outage
    proxy.cut();
    const cutAt = Date.now();
    mark('cut');
    await sleep(1000); // a transaction cut mid-flight rolls back; nothing commits after this
    const ledgerAtCut = await ledgerRows();
    // what needs Postgres (history) is refused as unavailable — promptly, and never as a 500
    const history = [];
    for (const m of members.slice(0, 3)) {
      const sentAt = Date.now();
      const res = await api.inject({ method: 'GET', url: '/v1/me/ledger', headers: { authorization: `Bearer ${m.token}` } });
      history.push({ status: res.statusCode, code: (res.json() as { code?: string }).code, retryAfter: res.headers['retry-after'], ms: Date.now() - sentAt });
    }
    await sleep(cutAt + OUTAGE_MS - Date.now());
    const ledgerAtRestore = await ledgerRows();
    const backlogAtRestore = await backlog();
    proxy.restore();
    const restoreAt = Date.now();
    mark('restored');
    await sleep(3000);
    producing = false;
    await producer;
    mark('load stopped');

    // ---- the backlog drains
    await waitUntil('the backlog to drain', async () => (await backlog()) === 0, 45_000, 100).catch(async (err: Error) => {
      // what was left, and what the workers last said: a drain that never ends must be diagnosable
      const counts = await queue!.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed');
      const outboxes = await Promise.all(Array.from({ length: keys.partitions }, (_, p) => redis.xlen(keys.outbox(p))));
      throw new Error(
        `${err.message} (${marks.join(' ')}; jobs ${JSON.stringify(counts)}; outbox entries ${outboxes.join(',')}; ` +
          `workers' last lines:\n${workers.output().split('\n').slice(-15).join('\n')})`,
      );
    });
    mark('drained');

    // ---- what the clients saw
    const during = outcomes.filter((o) => o.sentAt >= cutAt && o.doneAt <= restoreAt);
    const byStatus: Record<string, number> = {};
    for (const o of outcomes) byStatus[`${o.status}${o.code ? ` ${o.code}` : ''}`] = (byStatus[`${o.status}${o.code ? ` ${o.code}` : ''}`] ?? 0) + 1;
    const failedAttempts = workers
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"persist job failed"'))
      .map((l) => JSON.parse(l) as { jobId: string; attempts: number });
    const maxAttempts = Math.max(0, ...failedAttempts.map((f) => f.attempts));
    console.info(
      `[postgres-down] ${marks.join(' ')}; ${outcomes.length} requests ${JSON.stringify(byStatus)}, ` +
        `${during.filter((o) => o.status < 300).length} accepted during the ${OUTAGE_MS / 1000} s outage; ` +
        `backlog at restore ${backlogAtRestore}; ${failedAttempts.length} failed persist attempts ` +
        `(${new Set(failedAttempts.map((f) => f.jobId)).size} jobs, most attempts on one job ${maxAttempts}); ` +
        `drained ${((Date.now() - restoreAt) / 1000).toFixed(1)} s after restore; ${proxy.accepted} connections through the proxy; ` +
        `history during the outage ${JSON.stringify(history)}`,
    );

    expect(history.map((h) => ({ ...h, ms: h.ms < 5000 }))).toEqual(
      history.map(() => ({ status: 503, code: 'SERVICE_UNAVAILABLE', retryAfter: '1', ms: true })),
    );
    // never a 5xx; the only refusals are daily earn caps (should the test cross UTC midnight)
    expect(outcomes.filter((o) => o.status >= 300 && o.code !== 'DAILY_LIMIT_REACHED').map((o) => `${o.kind} ${o.status} ${o.code}`)).toEqual([]);
    expect(during.filter((o) => o.kind === 'redeem' && o.status === 201).length, 'redemptions accepted during the outage').toBeGreaterThan(50);
    expect(during.filter((o) => o.kind === 'earn' && o.status === 200).length, 'earns accepted during the outage').toBeGreaterThan(5);
    expect(during.filter((o) => o.kind === 'grant' && o.status === 200).length, 'grants accepted during the outage').toBeGreaterThan(5);

    // the outage was real: nothing reached Postgres, a backlog built up, jobs failed and were retried
    expect(ledgerAtRestore, 'ledger rows written while Postgres was cut off').toBe(ledgerAtCut);
    expect(backlogAtRestore).toBeGreaterThan(0);
    expect(failedAttempts.length, 'persist attempts that failed').toBeGreaterThan(0);
    // every job that failed was retried until it went through
    const failedIds = [...new Set(failedAttempts.map((f) => f.jobId))];
    const retried = await Promise.all(failedIds.map(async (id) => `${id}: ${await queue!.getJobState(id)}`));
    expect(retried.filter((r) => !r.endsWith(': completed')), 'failed jobs not completed on retry').toEqual([]);
    // the retry budget outlasts the outage with room to spare: exponential backoff from `delay`
    // gives a job at most 1 + log2(outage / delay + 1) failed attempts in an outage
    const { attempts, backoff } = PERSIST_JOB_OPTIONS as { attempts: number; backoff: { type: string; delay: number } };
    expect(backoff.type).toBe('exponential');
    const worstCase = 1 + Math.ceil(Math.log2(OUTAGE_MS / backoff.delay + 1));
    expect(worstCase).toBeLessThan(attempts);
    expect(maxAttempts).toBeLessThanOrEqual(worstCase);
    expect((await queue!.getFailed()).map((j) => `${j.id}: ${j.failedReason}`), 'jobs that exhausted their attempts').toEqual([]);

    // ---- Postgres has every acknowledged op exactly once, and nothing else
    const acked = outcomes.filter((o) => o.status < 300);
    const ackedIds = new Set(acked.map((o) => o.opId!));
    expect(ackedIds.size, 'one op per acknowledged request').toBe(acked.length);
    const ledger = await sql<Array<{ opId: string; n: number }>>`
      SELECT op_id AS "opId", count(*)::int AS n FROM ledger_entries GROUP BY op_id`;
    expect(ledger.filter((r) => r.n !== 1)).toEqual([]);
    const inLedger = new Set(ledger.map((r) => r.opId));
    expect([...ackedIds].filter((id) => !inLedger.has(id)), 'acknowledged but not in the ledger').toEqual([]);
    expect([...inLedger].filter((id) => !ackedIds.has(id)), 'in the ledger but never acknowledged').toEqual([]);

    const [{ redemptions }] = await sql<Array<{ redemptions: number }>>`
      SELECT count(*)::int AS redemptions FROM redemptions WHERE goods_id = ${goods.id}`;
    expect(redemptions).toBe(acked.filter((o) => o.kind === 'redeem').length);

    const accounts = await sql<Array<{ userId: number; available: number }>>`
      SELECT user_id AS "userId", available FROM point_accounts WHERE user_id = ANY(${members.map((m) => m.id)}::bigint[])`;
    const mismatched: unknown[] = [];
    for (const a of accounts) {
      const live = Number(await redis.hget(keys.account(a.userId), 'avail'));
      if (live !== a.available) mismatched.push({ userId: a.userId, redis: live, postgres: a.available });
    }
    expect(accounts.length).toBe(MEMBERS);
    expect(mismatched, 'point_accounts vs Redis balances').toEqual([]);

    async function backlog(): Promise<number> {
      const lens = await Promise.all(Array.from({ length: keys.partitions }, (_, p) => redis.xlen(keys.outbox(p))));
      const counts = await queue!.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
      return lens.reduce((a, b) => a + b, 0) + Object.values(counts).reduce((a, b) => a + b, 0);
    }
  });
});
