/**
 * Rebuild as an admin job: queued through the API, run by the reconcile role while every API
 * process refuses writes, and Redis ends up equal to Postgres. The maintenance flag is renewed
 * by a heartbeat, so a rebuild whose process dies frees writes within TASK_LOCK_MS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { rebuildWithApiUp } from '../../src/recovery/admin-rebuild.ts';
import { createRedis } from '../../src/redis/client.ts';
import { createLogger } from '../../workers/logger.ts';
import { startReconciler } from '../../workers/reconcile.ts';
import { childEnv, killAll, sleep, spawnTs, waitUntil } from '../crash/procs.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ LAG_CHECK_MS: 100 });
});
afterAll(async () => {
  await killAll();
  await ctx?.close();
});

describe('admin rebuild job', () => {
  it('refuses writes while it runs and leaves Redis equal to Postgres', async () => {
    const pipeline = await ctx.startPipeline();
    const admin = await ctx.admin();
    const members = await ctx.createMembers(20);
    await Promise.all(members.map((m) => ctx.grant(m.id, 500)));
    await pipeline.drain();
    // damage Redis behind the system's back: the rebuild must restore it
    await ctx.redis.hset(ctx.keys.account(members[0].id), 'avail', 1);

    const auth = { authorization: `Bearer ${admin.token}` };
    const queued = await ctx.app.inject({ method: 'POST', url: '/v1/admin/jobs/rebuild', headers: { ...auth, 'idempotency-key': 'rebuild-1' } });
    expect(queued.statusCode).toBe(202);
    const { id } = queued.json();
    const member = await ctx.app.inject({
      method: 'POST',
      url: '/v1/admin/jobs/rebuild',
      headers: { authorization: `Bearer ${members[1].token}` },
    });
    expect(member.statusCode).toBe(403);

    const role = await startReconciler({
      ...(await ctx.roleConnections()),
      keys: ctx.keys,
      sql: ctx.sql,
      everyMs: 60_000,
      idempotencyTtlSeconds: 3600,
      apiNoticeMs: 400,
      log: createLogger('silent', 'test'),
    });
    try {
      let sawRefusal = false;
      let state = '';
      const deadline = Date.now() + 30_000;
      while (state !== 'completed' && Date.now() < deadline) {
        const earn = await ctx.app.inject({
          method: 'POST',
          url: '/v1/points/earn',
          headers: { authorization: `Bearer ${members[2].token}`, 'idempotency-key': `probe-${Date.now()}` },
          payload: { action: 'share' },
        });
        if (earn.statusCode === 503) sawRefusal = true;
        state = (await ctx.app.inject({ url: `/v1/admin/jobs/${id}`, headers: auth })).json().state;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(state).toBe('completed');
      expect(sawRefusal).toBe(true);
      const job = (await ctx.app.inject({ url: `/v1/admin/jobs/${id}`, headers: auth })).json();
      expect(job.result.members).toBeGreaterThanOrEqual(21);
      await new Promise((r) => setTimeout(r, 300));
      expect(ctx.app.maintenance.on).toBe(false);
      expect((await ctx.app.points.balance(members[0].id)).available).toBe(500);
      expect((await ctx.app.inject({ url: '/health/ready' })).statusCode).toBe(200);
    } finally {
      await role.close();
      await pipeline.stop();
    }
  });

  it('frees writes within TASK_LOCK_MS of the rebuild process dying, and not while it lives', { timeout: 60_000 }, async () => {
    const FLAG_TTL = 1000;
    const admin = await ctx.admin();
    const [m] = await ctx.createMembers(1);
    // an op no persist worker will take: the rebuild waits in its drain with the flag up
    await ctx.grant(m.id, 50);
    const earn = (key: string) =>
      ctx.app.inject({
        method: 'POST',
        url: '/v1/points/earn',
        headers: { authorization: `Bearer ${m.token}`, 'idempotency-key': key },
        payload: { action: 'share' },
      });

    const worker = spawnTs('reconcile', 'workers/main.ts', ['--only', 'reconcile'], childEnv(ctx.env, { TASK_LOCK_MS: FLAG_TTL }));
    const queued = await ctx.app.inject({
      method: 'POST',
      url: '/v1/admin/jobs/rebuild',
      headers: { authorization: `Bearer ${admin.token}`, 'idempotency-key': 'rebuild-heartbeat' },
    });
    expect(queued.statusCode).toBe(202);
    await waitUntil('the maintenance flag', async () => (await ctx.redis.exists(ctx.keys.maintenance())) === 1, 30_000);
    const ttl = await ctx.redis.pttl(ctx.keys.maintenance());
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(FLAG_TTL);

    // alive for several lifetimes of the flag: the heartbeat keeps writes refused
    await sleep(FLAG_TTL * 3);
    expect((await earn('while-alive')).statusCode).toBe(503);

    await worker.kill9();
    const killedAt = Date.now();
    await waitUntil('a write accepted after the rebuild died', async () => (await earn(`after-${Date.now()}`)).statusCode === 200, 5_000, 50);
    expect(Date.now() - killedAt).toBeLessThan(FLAG_TTL + ctx.env.LAG_CHECK_MS + 1000);
  });

  it('sets a lapsed flag again at once and fails the rebuild, which may have overwritten writes', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 70); // held in the outbox until the pipeline starts
    const queueConn = createRedis(ctx.env.REDIS_URL, 'worker');
    const queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
    const flag = ctx.keys.maintenance();
    const run = rebuildWithApiUp({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }, {
      idempotencyTtlSeconds: 3600,
      apiNoticeMs: 50,
      flagTtlMs: 600,
    }).then(() => null, (err: Error) => err);
    try {
      await waitUntil('the maintenance flag', async () => (await ctx.redis.exists(flag)) === 1, 5_000);
      await ctx.redis.del(flag); // what a stall past the TTL looks like from outside
      await waitUntil('the flag set again', async () => (await ctx.redis.exists(flag)) === 1, 2_000, 20);
      const pipeline = await ctx.startPipeline();
      try {
        const err = await run;
        expect(err?.message).toMatch(/maintenance flag lapsed.*run the rebuild again/);
      } finally {
        await pipeline.stop();
      }
      expect(await ctx.redis.exists(flag)).toBe(0);
    } finally {
      await run;
      await queue.close();
      queueConn.disconnect();
    }
  });
});

