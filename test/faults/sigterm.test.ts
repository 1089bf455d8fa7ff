/**
 * Fault: graceful shutdown (SIGTERM) of the API and of the workers, as real child processes.
 *
 * API: 40 keep-alive clients redeem in a loop; SIGTERM arrives with requests in flight. Each client
 * finishes its request in hand and then keeps its connection open and idle, as a load balancer
 * does; another client keeps sending new requests. Requests in flight complete (201), later ones
 * get 503 or a refused connection — never a 500, never a response cut off for a request the
 * server accepted (a request without an answer must have changed nothing) — and the process exits
 * promptly however many idle keep-alive connections the clients hold.
 *
 * Workers: the outbox holds a backlog; the workers (relay + persist) are SIGTERMed mid-drain. The
 * batches in flight finish (no job left active or stalled), the process exits cleanly, a restarted
 * worker drains the rest, and every acknowledged op is in Postgres exactly once — with no batch
 * written twice (a graceful stop redelivers nothing).
 */
import { once } from 'node:events';
import { Agent } from 'node:http';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyHash } from '../../src/points/idempotency.ts';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { childEnv, freePort, killAll, sleep, spawnTs, waitUntil, type Child } from '../crash/procs.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { httpJson, type HttpResult } from './support.ts';

const MEMBERS = 60;
const GRANT = 100_000;
const PRICE = 10;
const CLIENTS = 40;
const SIGTERM_AFTER = 150; // answers before the signal
const STOCK = 1_000_000;

let ctx: TestContext;
let port: number;
let queueConn: Redis | undefined;
let queue: Queue | undefined;
const agents: Agent[] = [];

// each test gets its own database, key prefix and port: either runs alone (-t)
beforeEach(async () => {
  ctx = await createTestContext();
  port = await freePort();
  queueConn = createRedis(ctx.env.REDIS_URL, 'worker');
  queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
});

afterEach(async () => {
  await killAll();
  for (const a of agents.splice(0)) a.destroy();
  await queue?.close().catch(() => {});
  queueConn?.disconnect();
  await ctx?.close();
});

interface Sent extends HttpResult {
  userId: number;
  key: string;
  group: 'in-flight' | 'late';
}

type Acked = Map<string, { userId: number; kind: 'grant' | 'redeem' }>;

/** Members with GRANT points each (the grants' op ids go into `acked`) and one goods item. */
async function seed(acked?: Acked) {
  const members = await ctx.createMembers(MEMBERS);
  for (const m of members) {
    const { op } = await ctx.app.points.grant(0, m.id, GRANT, 'sigterm', `seed-${m.id}`);
    acked?.set(op.opId, { userId: m.id, kind: 'grant' });
  }
  const goodsId = (await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK })).id;
  return { members, goodsId };
}

async function exitOf(child: Child, timeoutMs: number): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const t = Date.now();
  if (!child.exited()) {
    await Promise.race([once(child.proc, 'exit'), sleep(timeoutMs)]);
  }
  return { code: child.proc.exitCode, signal: child.proc.signalCode, ms: Date.now() - t };
}

describe('SIGTERM', () => {
  it('API: in-flight requests complete, later ones are refused, nothing is cut off, and the process exits promptly', { timeout: 85_000 }, async () => {
    const { keys, redis } = ctx;
    const { members, goodsId } = await seed();

    const api = spawnTs('api', 'src/server.ts', [], childEnv(ctx.env, { HOST: '127.0.0.1', PORT: port, API_PROCESSES: 1, LOG_LEVEL: 'warn' }));
    await waitUntil(
      'the API to listen',
      async () => {
        if (api.exited()) throw new Error(`api exited:\n${api.output().slice(-4000)}`);
        const probe = await httpJson(new Agent(), port, 'GET', '/health/live', {});
        return probe.status === 200;
      },
      30_000,
      100,
    );

    const sent: Sent[] = [];
    let seq = 0;
    const redeem = (agent: Agent, m: { id: number; token: string }, group: Sent['group']) => {
      const key = `sig-${seq++}`;
      return httpJson(agent, port, 'POST', '/v1/redemptions', { authorization: `Bearer ${m.token}`, 'idempotency-key': key }, { goodsId, quantity: 1 }).then(
        (r) => {
          const s: Sent = { ...r, userId: m.id, key, group };
          sent.push(s);
          return s;
        },
      );
    };

    // ---- 40 clients, one keep-alive connection each; after the signal each finishes the
    // request in hand and then holds its connection idle
    let sigtermAt = 0;
    const inflightClients = Array.from({ length: CLIENTS }, async (_, c) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      for (let i = 0; sigtermAt === 0; i++) {
        const r = await redeem(agent, members[(c + i * CLIENTS) % MEMBERS], 'in-flight');
        if (r.error) break;
      }
    });
    await waitUntil('answers before the signal', async () => sent.length >= SIGTERM_AFTER, 30_000, 1);
    sigtermAt = Date.now();
    api.proc.kill('SIGTERM');

    // ---- a client that keeps sending new requests after the signal, until refused
    const lateAgent = new Agent({ keepAlive: true, maxSockets: 4 });
    agents.push(lateAgent);
    const late = (async () => {
      for (let i = 0; Date.now() - sigtermAt < 15_000; i++) {
        const r = await redeem(lateAgent, members[i % MEMBERS], 'late');
        if (r.error === 'ECONNREFUSED') break;
      }
    })();

    const exit = await exitOf(api, 20_000);
    await Promise.all(inflightClients);
    await late;

    const afterSignal = sent.filter((s) => s.doneAt >= sigtermAt);
    const inFlightDone = afterSignal.filter((s) => s.group === 'in-flight' && s.status === 201 && s.sentAt < sigtermAt);
    const summary: Record<string, number> = {};
    for (const s of sent) {
      const k = `${s.group} ${s.status ?? s.error}${s.doneAt >= sigtermAt ? ' (after signal)' : ''}`;
      summary[k] = (summary[k] ?? 0) + 1;
    }
    console.info(`[sigterm api] exit ${JSON.stringify(exit)}; ${sent.length} requests ${JSON.stringify(summary)}`);

    expect(exit, 'the API exits by itself, cleanly and promptly').toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(10_000);
    expect(api.output(), 'nothing logged at error level').not.toMatch(/"level":(50|60)/);

    // requests in flight at the signal completed; after it, only 201 (accepted before close
    // began), 503 (close began) or a refused / reset connection (never accepted)
    expect(inFlightDone.length, 'requests in flight at the signal answered 201').toBeGreaterThan(0);
    expect(sent.filter((s) => s.status !== undefined && s.status !== 201 && s.status !== 503).map((s) => `${s.status} ${JSON.stringify(s.body)}`)).toEqual([]);
    expect(sent.filter((s) => s.status === 201 && !/^[0-9a-f]{32}$/.test(String(s.body?.id)))).toEqual([]);
    expect(sent.filter((s) => s.error?.startsWith('mid-response')).map((s) => s.error), 'responses cut off').toEqual([]);
    const late503 = sent.filter((s) => s.group === 'late' && (s.status === 503 || s.error === 'ECONNREFUSED'));
    expect(late503.length, 'new requests refused once closing').toBeGreaterThan(0);
    expect(sent.filter((s) => s.sentAt > sigtermAt + 5000 && s.status === 201), 'accepted long after the signal').toEqual([]);

    // a request without a 201 changed nothing: no charge, no reservation held
    const unanswered = sent.filter((s) => s.status !== 201);
    const touched: string[] = [];
    const holds = Object.values(await redis.hgetall(keys.reservations(goodsId))).map((r) => JSON.parse(r) as { u: number; k: string });
    for (const s of unanswered) {
      const kh = keyHash(s.key);
      const op = await redis.get(keys.idem(s.userId, kh));
      const held = holds.find((r) => r.u === s.userId && r.k === kh);
      if ((op !== null && JSON.parse(op).kind !== 'aborted') || held) {
        touched.push(`${s.key} (${s.status ?? s.error}): op ${op} reservation ${JSON.stringify(held)}`);
      }
    }
    expect(touched, 'requests with no 201 that left state behind').toEqual([]);
    // every 201 was confirmed before the process exited (confirm is sent before the answer)
    expect(await redis.hlen(keys.reservations(goodsId)), 'reservations left unconfirmed').toBe(0);
    expect(await redis.zcard(keys.reservationDeadlines(goodsId))).toBe(0);
  });

  it('workers: in-flight batches finish on SIGTERM, a restarted worker drains the rest, nothing lost or duplicated', { timeout: 85_000 }, async () => {
    const { keys, redis, sql } = ctx;
    const acked: Acked = new Map();
    const { members, goodsId } = await seed(acked);
    // a bigger backlog, straight through the services (the outbox is not being relayed yet)
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        members.map(async (m) => {
          const { redemption } = await ctx.app.redemptions.redeem(m.id, goodsId, 1, `backlog-${round}`);
          acked.set(redemption.id, { userId: m.id, kind: 'redeem' });
        }),
      );
    }
    const outboxLen = async () =>
      (await Promise.all(Array.from({ length: keys.partitions }, (_, p) => redis.xlen(keys.outbox(p))))).reduce((a, b) => a + b, 0);
    const backlog = async () => {
      const counts = await queue!.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
      return (await outboxLen()) + Object.values(counts).reduce((a, b) => a + b, 0);
    };
    expect(await outboxLen()).toBe(acked.size);

    const workerEnv = childEnv(ctx.env, { LOG_LEVEL: 'info', RELAY_BATCH: 40 });
    const args = ['--only', 'relay,persist', '--concurrency', '2'];
    const w1 = spawnTs('workers#1', 'workers/main.ts', args, workerEnv);
    await w1.waitForOutput('"msg":"workers started"', 30_000);

    // SIGTERM as soon as batches are being written
    const ledgerRows = async () => (await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM ledger_entries`)[0].n;
    const { activeAtSignal, sigtermAt } = await waitUntil(
      'persist jobs to be active',
      async () => {
        const active = await queue!.getActive();
        if (active.length === 0) return null;
        const at = Date.now();
        w1.proc.kill('SIGTERM');
        return { activeAtSignal: active.map((j) => j.id!), sigtermAt: at };
      },
      30_000,
      2,
    );
    const exit = await exitOf(w1, 30_000);
    const left = { outbox: await outboxLen(), total: await backlog() };
    const activeAfter = await queue!.getActiveCount();
    const states = await Promise.all(activeAtSignal.map(async (id) => `${id}: ${await queue!.getJobState(id)}`));
    const finishedAcrossSignal = (await queue!.getJobs(['completed'])).filter(
      (j) => j.processedOn !== undefined && j.processedOn < sigtermAt && (j.finishedOn ?? 0) >= sigtermAt,
    );
    const ledgerAtStop = await ledgerRows();
    console.info(
      `[sigterm workers] exit ${JSON.stringify(exit)}; active at the signal ${activeAtSignal.join(', ')}; ` +
        `${finishedAcrossSignal.length} jobs started before and finished after it; ledger ${ledgerAtStop}/${acked.size}; left ${JSON.stringify(left)}`,
    );

    expect(exit, 'workers exit by themselves, cleanly').toMatchObject({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(15_000);
    expect(w1.output()).toContain('"msg":"stopped"');
    expect(activeAfter, 'jobs left active (would stall)').toBe(0);
    expect(states.filter((s) => !s.endsWith(': completed')), 'jobs active at the signal that did not complete').toEqual([]);
    expect(finishedAcrossSignal.length, 'a batch in flight at the signal was finished').toBeGreaterThan(0);
    expect(left.total, 'stopped mid-drain').toBeGreaterThan(0);
    expect(ledgerAtStop).toBeLessThan(acked.size);

    // ---- a restarted worker drains the rest
    const w2 = spawnTs('workers#2', 'workers/main.ts', args, workerEnv);
    await w2.waitForOutput('"msg":"workers started"', 30_000);
    await waitUntil('the backlog to drain', async () => (await backlog()) === 0, 40_000, 100);
    w2.proc.kill('SIGTERM');
    expect(await exitOf(w2, 15_000)).toMatchObject({ code: 0, signal: null });

    // ---- exactly once, nothing else; no batch written twice
    expect((await queue!.getFailed()).map((j) => `${j.id}: ${j.failedReason}`)).toEqual([]);
    for (const w of [w1, w2]) expect(w.output(), `${w.name}: a batch re-written`).not.toContain('batch had ops already persisted');
    const ledger = await sql<Array<{ opId: string }>>`SELECT op_id AS "opId" FROM ledger_entries`;
    const inLedger = new Set(ledger.map((r) => r.opId));
    expect(ledger.length).toBe(inLedger.size);
    expect([...acked.keys()].filter((id) => !inLedger.has(id)), 'acknowledged but not persisted').toEqual([]);
    expect([...inLedger].filter((id) => !acked.has(id)), 'persisted but never acknowledged').toEqual([]);
    const [{ n }] = await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM redemptions`;
    expect(n).toBe([...acked.values()].filter((a) => a.kind === 'redeem').length);
    const accounts = await sql<Array<{ userId: number; available: number }>>`
      SELECT user_id AS "userId", available FROM point_accounts WHERE user_id = ANY(${members.map((m) => m.id)}::bigint[])`;
    const mismatched: unknown[] = [];
    for (const a of accounts) {
      const live = Number(await redis.hget(keys.account(a.userId), 'avail'));
      if (live !== a.available) mismatched.push({ userId: a.userId, redis: live, postgres: a.available });
    }
    expect(mismatched).toEqual([]);
    const stock = Number(await redis.hget(keys.goods(goodsId), 'stock'));
    expect(stock + n).toBe(STOCK);
  });
});
