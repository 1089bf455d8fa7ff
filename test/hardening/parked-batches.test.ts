/**
 * Issue 6, item 5: a persist batch is never dropped. After its attempts it is parked (kept until
 * handled), counted on /metrics, listed, and retried by an admin endpoint or an npm script;
 * reconcile never adjusts a member whose ops sit in a parked batch, and drains do not wait on it.
 */
import postgres from 'postgres';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { countParked } from '../../src/persistence/parked.ts';
import { Reconciler } from '../../src/recovery/reconcile.ts';
import { rebuildWithApiUp } from '../../src/recovery/admin-rebuild.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { childEnv, spawnTs } from '../crash/procs.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let queue: Queue;
beforeAll(async () => {
  ctx = await createTestContext({ PERSIST_ATTEMPTS: 2, PERSIST_BACKOFF_MS: 50, DATABASE_LOCK_TIMEOUT_MS: 300 });
  pipeline = await ctx.startPipeline(2);
  queue = new Queue(PERSIST_QUEUE, { connection: createRedis(ctx.env.REDIS_URL, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
});
afterAll(async () => {
  await queue?.close();
  await ctx?.close();
});

async function waitFor(what: string, check: () => Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Parks a batch: the member's account row is held by another transaction, so every attempt to
 * persist the member's grant fails on the lock timeout until the attempts are used up.
 */
async function parkAGrant(userId: number, amount: number) {
  const holder = postgres(ctx.env.DATABASE_URL, { max: 1, onnotice: () => {} });
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const locked = new Promise<void>((resolve) => {
    void holder.begin(async (tx) => {
      await tx`SELECT 1 FROM point_accounts WHERE user_id = ${userId} FOR UPDATE`;
      resolve();
      await held;
    });
  });
  await locked;
  const before = await countParked(queue);
  await ctx.grant(userId, amount);
  await waitFor('the batch to be parked', async () => (await countParked(queue)) === before + 1);
  return {
    async release() {
      release();
      await holder.end();
    },
  };
}

describe('a persist batch that used up its attempts', () => {
  it('is parked: kept, counted, listed, left alone by reconcile and drains, then retried by an admin', async () => {
    const admin = await ctx.admin();
    const [m] = await ctx.createMembers(1);
    // an earlier op whose ledger row Postgres lost: the member drifts as well
    await ctx.grant(m.id, 30);
    await pipeline.drain();
    await ctx.sql`DELETE FROM ledger_entries WHERE user_id = ${m.id}`;
    await ctx.sql`UPDATE point_accounts SET available = 0, total_earned = 0 WHERE user_id = ${m.id}`;

    const lock = await parkAGrant(m.id, 70);
    try {
      const [job] = await queue.getFailed(0, 0);
      expect(job.opts.removeOnFail, 'a parked batch is never removed').toBe(false);
      expect(job.attemptsMade).toBe(2);
      const metrics = await ctx.app.inject({ url: '/metrics' });
      expect(metrics.body).toMatch(/^pm_persist_parked_batches 1$/m);
      const list = await ctx.app.inject({ url: '/v1/admin/persist/parked', headers: { authorization: `Bearer ${admin.token}` } });
      expect(list.statusCode).toBe(200);
      expect(list.json().items).toMatchObject([{ jobId: job.id, attemptsMade: 2, members: 1 }]);

      // reconcile sees the drift but does not paper over it while Postgres is owed the batch
      const report = await new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }).run({ confirmDelayMs: 50 });
      expect(report.parked).toEqual([m.id]);
      expect(report.drifting.filter((d) => d.userId === m.id).map((d) => d.repaired)).toEqual(['parked']);
      const adjusts = await ctx.sql`SELECT op_id FROM ledger_entries WHERE user_id = ${m.id} AND kind = 'adjust'`;
      expect(adjusts).toEqual([]);

      // a rebuild's drain does not wait on it: it is refused at once, saying why
      const started = Date.now();
      await expect(
        rebuildWithApiUp({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }, {
          idempotencyTtlSeconds: 3600,
          apiNoticeMs: 10,
          flagTtlMs: 2000,
          drainTimeoutMs: 10_000,
        }),
      ).rejects.toThrow(/parked persist batch/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await lock.release();
    }

    const retry = () =>
      ctx.app.inject({
        method: 'POST',
        url: '/v1/admin/persist/parked/retry',
        headers: { authorization: `Bearer ${admin.token}`, 'idempotency-key': 'retry-parked-1' },
        payload: {},
      });
    const res = await retry();
    expect(res.statusCode).toBe(200);
    expect(res.json().retried).toHaveLength(1);
    expect((await retry()).headers['idempotent-replayed']).toBe('true');
    await pipeline.drain();
    await waitFor('the batch to be persisted', async () => (await countParked(queue)) === 0);
    const rows = await ctx.sql`SELECT delta FROM ledger_entries WHERE user_id = ${m.id} AND kind = 'earn'`;
    expect(rows.map((r) => r.delta)).toEqual([70]);
    expect((await ctx.app.inject({ url: '/metrics' })).body).toMatch(/^pm_persist_parked_batches 0$/m);
  });

  it('is retried by the persist:retry-parked command', async () => {
    const [m] = await ctx.createMembers(1);
    const lock = await parkAGrant(m.id, 45);
    await lock.release();
    const cli = spawnTs('retry-parked', 'src/cli/retry-parked.ts', [], childEnv(ctx.env));
    await new Promise((r) => cli.proc.once('exit', r));
    expect(cli.proc.exitCode, cli.output()).toBe(0);
    expect(cli.output()).toMatch(/retried 1/);
    await waitFor('the batch to be persisted', async () => (await countParked(queue)) === 0);
    await pipeline.drain();
    const rows = await ctx.sql`SELECT delta FROM ledger_entries WHERE user_id = ${m.id}`;
    expect(rows.map((r) => r.delta)).toEqual([45]);
  });
});
