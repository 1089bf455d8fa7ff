/**
 * /health/live (the process answers), /health/ready (Redis, Postgres, persistence backlog, the
 * Redis write gate open and no rebuild running) and /metrics.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { apiQueue } from '../redis/api-queue.ts';
import { PERSIST_QUEUE } from '../queues.ts';
import { registerMetrics } from './metrics.ts';

const CheckSchema = Type.Object({ ok: Type.Boolean(), error: Type.Optional(Type.String()) });

const routes: FastifyPluginAsyncTypebox = async (app) => {
  // connection trouble is reported by the readiness check itself, not as stray error events
  const { queue, close } = apiQueue(app.redis, PERSIST_QUEUE, app.keys.queuePrefix());
  app.addHook('onClose', close);

  registerMetrics(app, queue);

  app.get(
    '/health/live',
    {
      config: { rateLimit: false },
      schema: {
        tags: ['health'],
        operationId: 'getLiveness',
        summary: 'The process answers',
        security: [],
        response: { 200: Type.Object({ status: Type.String() }) },
      },
    },
    async () => ({ status: 'ok' }),
  );

  const ReadySchema = Type.Object({
    status: Type.String(),
    redis: CheckSchema,
    postgres: CheckSchema,
    backlog: Type.Object({ outbox: Type.Integer(), queued: Type.Integer(), ok: Type.Boolean() }),
    redisCurrent: Type.Object({
      ok: Type.Boolean(),
      state: Type.Union([Type.Literal('unverified'), Type.Literal('verified'), Type.Literal('behind')]),
      maintenance: Type.Boolean(),
      reason: Type.String(),
      laggingPartitions: Type.Array(Type.Integer()),
    }),
  });

  app.get(
    '/health/ready',
    {
      config: { rateLimit: false },
      schema: {
        tags: ['health'],
        operationId: 'getReadiness',
        summary: 'Redis, Postgres, the persistence backlog and the Redis write gate; 503 with the same report when any is not ok',
        security: [],
        response: { 200: ReadySchema, 503: ReadySchema },
      },
    },
    async (_request, reply) => {
      const check = async (fn: () => Promise<unknown>) => {
        try {
          await fn();
          return { ok: true };
        } catch (err) {
          return { ok: false, error: (err as Error).message };
        }
      };
      const redis = await check(() => app.redis.ping());
      const postgres = await check(() => app.sql`SELECT 1`);
      let outbox = 0;
      let queued = 0;
      if (redis.ok) {
        const lens = await Promise.all(
          Array.from({ length: app.keys.partitions }, (_, p) => app.redis.xlen(app.keys.outbox(p)).catch(() => 0)),
        );
        outbox = lens.reduce((a, b) => a + b, 0);
        const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized').catch(() => ({}));
        queued = Object.values(counts as Record<string, number>).reduce((a, b) => a + b, 0);
      }
      const backlogOk = outbox + queued <= app.config.READY_MAX_BACKLOG;
      const gate = app.redisGate;
      const current = gate.writable && !app.maintenance.on;
      const ok = redis.ok && postgres.ok && backlogOk && current;
      return reply.code(ok ? 200 : 503).send({
        status: ok ? 'ready' : 'not ready',
        redis,
        postgres,
        backlog: { outbox, queued, ok: backlogOk },
        redisCurrent: {
          ok: current,
          state: gate.state,
          maintenance: app.maintenance.on,
          reason: gate.reason,
          laggingPartitions: gate.lag.map((l) => l.partition),
        },
      });
    },
  );
};

export default routes;
