/**
 * GET /health/business against real Redis and Postgres, one state at a time: an empty or quiet
 * ledger is a warning; drift (from a reconcile run), negative balances (from the metrics role's
 * snapshot) and parked persist batches are critical with 503; a moving ledger with none of those
 * is healthy.
 */
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { computeBusiness, storeBusiness, type BusinessHealth } from '../../src/metrics/business.ts';
import { reconcileOnce } from '../../src/recovery/reconcile-task.ts';
import { createLogger } from '../../workers/logger.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let queue: Queue;

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline(2);
  queue = new Queue(PERSIST_QUEUE, { connection: createRedis(ctx.env.REDIS_URL, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
});
afterAll(async () => {
  await queue?.close();
  await ctx?.close();
});

async function health(): Promise<{ status: number; body: BusinessHealth }> {
  const res = await ctx.app.inject({ url: '/health/business' });
  return { status: res.statusCode, body: res.json() as BusinessHealth };
}

const codes = (b: BusinessHealth) => b.reasons.map((r) => r.code).sort();

async function reconcile() {
  const { writer, raw, gate } = await ctx.roleConnections();
  const log = createLogger('silent', 'test');
  return reconcileOnce({ sql: ctx.sql, writer, raw, keys: ctx.keys, queue, gate, log }, { idempotencyTtlSeconds: 3600, confirmDelayMs: 50 });
}

describe('GET /health/business', () => {
  it('warns while nothing has been persisted yet', async () => {
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body.status).toBe('warning');
    expect(codes(body)).toEqual(['NO_RECENT_TRANSACTIONS']);
    expect(body.secondsSinceLastTransaction).toBeNull();
  });

  it('warns when the newest persisted op is older than 10 minutes', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.sql`
      INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, created_at)
      VALUES ('old-op-1', ${m.id}, 0, 0, 'adjust', 'test', now() - interval '11 minutes')`;
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'warning', drift: 0, negativeBalances: 0, parkedBatches: 0 });
    expect(body.secondsSinceLastTransaction).toBeGreaterThanOrEqual(660);
    expect(body.reasons[0].message).toMatch(/No transaction persisted for \d+ s/);
  });

  it('is healthy once ops are flowing and nothing drifts', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    await pipeline.drain();
    expect(await reconcile()).toMatchObject({ drifting: 0, negative: 0 });
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'healthy', reasons: [], drift: 0 });
    expect(body.secondsSinceLastTransaction).toBeLessThan(60);
  });

  it('is critical (503) when the last reconcile found drift, and healthy after the next clean run', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    await pipeline.drain();
    await ctx.redis.hincrby(ctx.keys.account(m.id), 'avail', 40);
    expect(await reconcile()).toMatchObject({ drifting: 1 });
    const { status, body } = await health();
    expect(status).toBe(503);
    expect(body.status).toBe('critical');
    expect(codes(body)).toEqual(['DRIFT']);
    expect(body.reasons[0]).toMatchObject({ severity: 'critical' });
    expect(await reconcile()).toMatchObject({ drifting: 0 });
    expect((await health()).body.status).toBe('healthy');
  });

  it('is critical (503) with a negative balance in the metrics role’s snapshot', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.sql`UPDATE point_accounts SET available = -5 WHERE user_id = ${m.id}`;
    await storeBusiness(ctx.redis, ctx.keys, await computeBusiness(ctx.sql));
    const { status, body } = await health();
    expect(status).toBe(503);
    expect(codes(body)).toEqual(['NEGATIVE_BALANCES']);
    expect(body.negativeBalances).toBe(1);
    await ctx.sql`UPDATE point_accounts SET available = 0 WHERE user_id = ${m.id}`;
    await storeBusiness(ctx.redis, ctx.keys, await computeBusiness(ctx.sql));
    expect((await health()).status).toBe(200);
  });

  it('is critical (503) while a persist batch is parked', async () => {
    await pipeline.stop();
    const failing = new Worker(
      PERSIST_QUEUE,
      async () => {
        throw new Error('simulated persist failure');
      },
      { connection: createRedis(ctx.env.REDIS_URL, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) },
    );
    try {
      await queue.add('batch', { ops: [] }, { jobId: 'parked-probe', attempts: 1, removeOnFail: false });
      const deadline = Date.now() + 10_000;
      while ((await queue.getFailedCount()) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const { status, body } = await health();
      expect(status).toBe(503);
      expect(codes(body)).toEqual(['PARKED_BATCHES']);
      expect(body.parkedBatches).toBe(1);
    } finally {
      await failing.close();
      await queue.obliterate({ force: true });
    }
    expect((await health()).status).toBe(200);
  });
});
