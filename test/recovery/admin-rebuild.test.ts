/**
 * Rebuild as an admin job: queued through the API, run by the reconcile role while every API
 * process refuses writes, and Redis ends up equal to Postgres.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/redis/client.ts';
import { createLogger } from '../../workers/logger.ts';
import { startReconciler } from '../../workers/reconcile.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ LAG_CHECK_MS: 100 });
});
afterAll(async () => ctx?.close());

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
      connection: createRedis(ctx.env.REDIS_URL, 'worker'),
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
      expect(ctx.app.redisLag.maintenance).toBe(false);
      expect((await ctx.app.points.balance(members[0].id)).available).toBe(500);
      expect((await ctx.app.inject({ url: '/health/ready' })).statusCode).toBe(200);
    } finally {
      await role.close();
      await pipeline.stop();
    }
  });
});
