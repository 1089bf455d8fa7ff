/**
 * Crash tests with real processes and SIGKILL:
 *  - the API (src/server.ts) killed while transfers are in flight: running the saga, with
 *    transfers debited and not yet credited (checked in Redis at the kill), which the completer in
 *    the workers' sweeper role credits once each; running each transfer as one script (the default
 *    on one Redis), with nothing ever left between debit and credit. Clients retry what got no
 *    answer with their key.
 *  - the completer (workers/main.ts --only sweeper) killed -9 in the middle of a run over a
 *    thousand pending transfers, and started again.
 * Afterwards every transfer_out in the ledger has exactly one transfer_in of the same amount,
 * nothing else moved, balances agree between Redis and Postgres, and Σ balances is what was granted.
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHash, requestHash } from '../../src/points/idempotency.ts';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { childEnv, freePort, killAll, spawnTs, waitUntil, type Child } from '../crash/procs.ts';
import { waitForDrain } from '../support/persisted.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { members, pendingCount, type Member } from './support.ts';

const INITIAL = 1000;

let ctx: TestContext;
let queue: Queue;
const conns: Redis[] = [];

beforeAll(async () => {
  ctx = await createTestContext();
  const connection = createRedis(ctx.env.REDIS_URL, 'worker');
  conns.push(connection);
  queue = new Queue(PERSIST_QUEUE, { connection, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
});

afterAll(async () => {
  await killAll();
  await queue?.close().catch(() => {});
  for (const c of conns) c.disconnect();
  await ctx?.close();
});

async function seed(n: number): Promise<Member[]> {
  const group = await members(ctx, n);
  for (let i = 0; i < group.length; i += 50) await Promise.all(group.slice(i, i + 50).map((m) => ctx.grant(m.id, INITIAL)));
  return group;
}

/**
 * Every transfer_out has exactly one transfer_in (op id "<id>-in") of the same amount to the
 * row's receiver and no transfer_in lacks its transfer_out; every member's Redis balance equals
 * Postgres's and INITIAL + received − sent; the transfers rows are all completed; nothing pending.
 */
async function expectEachTransferOnce(group: Member[]): Promise<number> {
  const { sql, redis, keys } = ctx;
  expect((await queue.getFailed()).map((j) => `${j.id}: ${j.failedReason}`), 'persist jobs given up').toEqual([]);
  // the reads below are three queries: wait until nothing more is being written, so that one batch
  // committing between them (a fresh-clone CI run once saw a transfers row completed by a credit
  // the ledger read just before had not shown) cannot pass for a missing or a doubled credit
  let last = -1;
  await waitUntil('the ledger to stop growing', async () => {
    const [{ n }] = await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM ledger_entries`;
    const still = n === last;
    last = n;
    return still;
  }, 15_000, 500);
  const ids = group.map((m) => m.id);
  const outs = await sql<Array<{ id: string; from: number; amount: number }>>`
    SELECT biz_id AS id, user_id AS from, -delta AS amount FROM ledger_entries WHERE biz_type = 'transfer_out' AND user_id = ANY(${ids}::bigint[])`;
  const ins = await sql<Array<{ id: string; opId: string; to: number; amount: number }>>`
    SELECT biz_id AS id, op_id AS "opId", user_id AS to, delta AS amount FROM ledger_entries
    WHERE biz_type = 'transfer_in' AND user_id = ANY(${ids}::bigint[])`;
  const rows = new Map(
    (await sql<Array<{ id: string; to: number; amount: number; completed: boolean }>>`
      SELECT id, to_user_id AS to, amount, completed_at IS NOT NULL AS completed FROM transfers
      WHERE from_user_id = ANY(${ids}::bigint[])`).map((r) => [r.id, r]),
  );
  const inById = new Map<string, Array<(typeof ins)[number]>>();
  for (const i of ins) inById.set(i.id, [...(inById.get(i.id) ?? []), i]);
  const wrong = outs.filter((o) => {
    const credit = inById.get(o.id) ?? [];
    const row = rows.get(o.id);
    return credit.length !== 1 || credit[0].opId !== `${o.id}-in` || credit[0].amount !== o.amount || !row || !row.completed || row.to !== credit[0].to;
  });
  if (wrong.length > 0) {
    // what the ledger holds under the missing credits' op ids, whoever's rows they are
    const found = await sql`SELECT op_id, user_id, biz_type, delta FROM ledger_entries WHERE op_id = ANY(${wrong.map((o) => `${o.id}-in`)}::text[])`;
    console.error(`[transfer-kill] credits of the wrong transfers in the ledger: ${JSON.stringify(found)}`);
  }
  expect(wrong.map((o) => ({ ...o, credits: inById.get(o.id) ?? [], row: rows.get(o.id) })), 'transfers not credited exactly once').toEqual([]);
  expect(ins.filter((i) => !outs.some((o) => o.id === i.id)), 'credits without a debit').toEqual([]);
  expect(rows.size).toBe(outs.length);

  const net = new Map<number, number>();
  for (const o of outs) net.set(o.from, (net.get(o.from) ?? 0) - o.amount);
  for (const i of ins) net.set(i.to, (net.get(i.to) ?? 0) + i.amount);
  const mirror = new Map(
    (await sql<Array<{ userId: number; available: number }>>`
      SELECT user_id AS "userId", available FROM point_accounts WHERE user_id = ANY(${ids}::bigint[])`).map((r) => [r.userId, r.available]),
  );
  const mismatched: unknown[] = [];
  let total = 0;
  for (const m of group) {
    const live = Number(await redis.hget(keys.account(m.id), 'avail'));
    const want = INITIAL + (net.get(m.id) ?? 0);
    total += live;
    if (live !== want || mirror.get(m.id) !== want) mismatched.push({ member: m.id, want, redis: live, postgres: mirror.get(m.id) });
  }
  expect(mismatched, 'balances').toEqual([]);
  expect(total).toBe(group.length * INITIAL);
  expect(await pendingCount(ctx)).toBe(0);
  return outs.length;
}

interface Attempt {
  from: Member;
  to: Member;
  amount: number;
  key: string;
  status?: number;
  body?: { transferId?: string; code?: string };
  error?: string;
}

// TRANSFER_PATH=saga: the kill lands with transfers between their debit and their credit (on the
// pending set); auto (one script per transfer on this single-node Redis): nothing is ever between
// the steps, the kill lands with requests in hand and nothing may be half done
describe.each([
  ['saga', 'with transfers between their debit and their credit'],
  ['auto', 'with transfers in flight, each one script (TRANSFER_PATH=auto)'],
] as const)('API (TRANSFER_PATH=%s) killed -9 %s', (transferPath, _when) => {
  const claim =
    transferPath === 'saga'
      ? 'the completer credits every debited transfer exactly once; retries with the key replay'
      : 'no transfer is left between its debit and its credit; every one is credited exactly once; retries with the key replay';
  it(claim, { timeout: 90_000 }, async () => {
    const group = await seed(60);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const workers = spawnTs(
      'workers',
      'workers/main.ts',
      ['--only', 'relay,persist,sweeper', '--concurrency', '2'],
      childEnv(ctx.env, { LOG_LEVEL: 'info', SWEEP_EVERY_MS: 300, RESERVATION_TIMEOUT_MS: 1000, TASK_LOCK_MS: 1000 }),
    );
    await workers.waitForOutput('"msg":"workers started"', 30_000);
    const startApi = async (name: string): Promise<Child> => {
      const api = spawnTs(
        name,
        'src/server.ts',
        [],
        childEnv(ctx.env, { HOST: '127.0.0.1', PORT: port, API_PROCESSES: 1, LOG_LEVEL: 'warn', TRANSFER_PATH: transferPath }),
      );
      await waitUntil(`${name} up`, async () => {
        if (api.exited()) throw new Error(`${name} exited:\n${api.output().slice(-4000)}`);
        return fetch(`${base}/health/live`).then((r) => r.ok, () => false);
      }, 30_000, 100);
      return api;
    };

    let inFlight = 0;
    const send = async (a: Attempt) => {
      inFlight++;
      try {
        const res = await fetch(`${base}/v1/points/transfers`, {
          method: 'POST',
          headers: { authorization: `Bearer ${a.from.token}`, 'idempotency-key': a.key, 'content-type': 'application/json' },
          body: JSON.stringify({ toUsername: a.to.username, amount: a.amount }),
          signal: AbortSignal.timeout(20_000),
        });
        a.body = (await res.json()) as Attempt['body'];
        a.status = res.status;
        a.error = undefined;
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        a.error = e.cause?.code ?? e.message;
      } finally {
        inFlight--;
      }
    };
    const attempts: Attempt[] = Array.from({ length: 1200 }, (_, i) => ({
      from: group[i % group.length],
      to: group[(i * 7 + 1 + Math.floor(i / group.length)) % group.length],
      amount: 1 + (i % 9),
      key: `kill-${i}`,
    })).filter((a) => a.from.id !== a.to.id);

    // a kill lands while requests are in hand and, for the saga, transfers are between debit and
    // done (the pending set is not empty); one that lands otherwise restarts the API and tries again
    const saga = transferPath === 'saga';
    let next = 0;
    let pendingAtKill = 0;
    let landed = false;
    for (let life = 1; !landed; life++) {
      if (life > 4) throw new Error('no kill landed with a transfer between its debit and its credit in 4 tries');
      const api = await startApi(`api#${life}`);
      let killed = false;
      const senders = Promise.all(
        Array.from({ length: 80 }, async () => {
          while (!killed && next < attempts.length) await send(attempts[next++]);
        }),
      );
      await waitUntil('a transfer between its steps with requests in hand', async () => {
        if (next >= attempts.length) throw new Error('every transfer was answered before a kill landed');
        if (next < 200 * life || inFlight < 20 || (saga && (await pendingCount(ctx)) === 0)) return false;
        killed = true;
        await api.kill9();
        return true;
      }, 40_000, 1);
      pendingAtKill = await pendingCount(ctx);
      landed = !saga || pendingAtKill > 0;
      await senders;
    }
    const cutOff = attempts.filter((a) => a.status === undefined && a.error !== undefined).length;
    expect(cutOff, 'requests the kill cut off').toBeGreaterThan(0);
    // one script per transfer: the kill cannot land between a debit and its credit
    if (!saga) expect(pendingAtKill).toBe(0);

    // with no API up, only the completer can credit what the dead process debited
    await waitUntil('the completer to credit the pending transfers', async () => (await pendingCount(ctx)) === 0, 20_000, 100);
    // the sweeper logs its run's summary once the run is over, which may be after the last credit
    if (saga) await waitUntil('the completer to log its run', async () => /"msg":"completed pending transfers"/.test(workers.output()), 10_000, 50);

    const api = await startApi('api#last');
    const unanswered = attempts.filter((a) => a.status === undefined);
    await Promise.all(unanswered.map(send));
    expect(attempts.filter((a) => a.status === undefined).map((a) => a.error), 'retries without an answer').toEqual([]);
    expect(attempts.filter((a) => a.status !== 201).map((a) => a.body?.code), 'refused').toEqual([]);
    await waitForDrain(ctx.redis, ctx.keys, queue);
    const acked = attempts.map((a) => a.body!.transferId!);
    expect(new Set(acked).size).toBe(attempts.length);
    const persisted = await expectEachTransferOnce(group);
    expect(persisted).toBe(attempts.length);
    console.info(`[transfer-api-kill ${transferPath}] ${pendingAtKill} transfers between debit and done at the kill, ${cutOff} requests cut off, ${persisted} transfers`);
    await api.kill9();
    await workers.kill9();
  });
});

describe('completer killed -9 mid-run', () => {
  it('finishes after a restart, crediting each pending transfer once', { timeout: 90_000 }, async () => {
    const pipeline = await ctx.startPipeline();
    const group = await seed(100);
    const N = 1500;
    for (let i = 0; i < N; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, N - i) }, async (_, j) => {
          const from = group[(i + j) % group.length];
          const to = group[(i + j + 1 + ((i / 100) % 50)) % group.length];
          const key = `pending-${i + j}-${randomBytes(4).toString('hex')}`;
          const hash = requestHash('points-transfer', { toUsername: to.username, amount: 3, note: null });
          await ctx.app.transfers.debit(from.id, to.id, { toUsername: to.username, amount: 3 }, keyHash(key), hash);
        }),
      );
    }
    expect(await pendingCount(ctx)).toBe(N);

    const env = childEnv(ctx.env, { LOG_LEVEL: 'info', SWEEP_EVERY_MS: 200, RESERVATION_TIMEOUT_MS: 1000, TASK_LOCK_MS: 1000 });
    const first = spawnTs('completer#1', 'workers/main.ts', ['--only', 'sweeper'], env);
    const left = await waitUntil('the completer to be mid-run', async () => {
      const n = await pendingCount(ctx);
      if (n === 0) throw new Error('the completer finished before it could be killed');
      if (n >= N) return false;
      await first.kill9();
      return n;
    }, 40_000, 2);
    const afterKill = await pendingCount(ctx);
    expect(afterKill).toBeGreaterThan(0);

    const second = spawnTs('completer#2', 'workers/main.ts', ['--only', 'sweeper'], env);
    await waitUntil('the restarted completer to finish', async () => (await pendingCount(ctx)) === 0, 40_000, 100);
    await pipeline.drain();
    await waitForDrain(ctx.redis, ctx.keys, queue);
    const persisted = await expectEachTransferOnce(group);
    expect(persisted).toBeGreaterThanOrEqual(N);
    console.info(`[transfer-completer-kill] killed with ${left}..${afterKill} of ${N} pending`);
    await second.kill9();
  });
});
