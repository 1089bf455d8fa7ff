/**
 * /health/live (the process answers), /health/ready (Redis, Postgres, persistence backlog, the
 * Redis write gate open and no rebuild running) and /health/business (the ledger moving, no drift,
 * no negative balance, no parked batch: src/metrics/business.ts). /metrics is src/metrics/plugin.ts.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { apiQueue } from '../redis/api-queue.ts';
import { DomainError } from '../errors/domain-error.ts';
import { ErrorSchema } from '../http/schemas.ts';
import { PERSIST_QUEUE } from '../queues.ts';
import { countParked } from '../persistence/parked.ts';
import { assessHealth, lastTransactionAt, readBusiness, readReconcile } from '../metrics/business.ts';

const CheckSchema = Type.Object({ ok: Type.Boolean(), error: Type.Optional(Type.String()) });

const routes: FastifyPluginAsyncTypebox = async (app) => {
  // connection trouble is reported by the readiness check itself, not as stray error events
  const { queue, close } = apiQueue(app.redis, PERSIST_QUEUE, app.keys.queuePrefix(PERSIST_QUEUE));
  app.addHook('onClose', close);

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

  const ReasonSchema = Type.Object({
    code: Type.Union(['NO_RECENT_TRANSACTIONS', 'DRIFT', 'NEGATIVE_BALANCES', 'PARKED_BATCHES'].map((c) => Type.Literal(c))),
    severity: Type.Union([Type.Literal('warning'), Type.Literal('critical')]),
    message: Type.String(),
  });
  const BusinessSchema = Type.Object({
    status: Type.Union([Type.Literal('healthy'), Type.Literal('warning'), Type.Literal('critical')]),
    reasons: Type.Array(ReasonSchema),
    checkedAt: Type.String({ format: 'date-time' }),
    secondsSinceLastTransaction: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'Since the newest persisted op; null when the ledger is empty',
    }),
    drift: Type.Integer({ minimum: 0, description: 'Drifting balances, mirror rows and stock found by the last reconcile' }),
    negativeBalances: Type.Integer({ minimum: 0 }),
    parkedBatches: Type.Integer({ minimum: 0 }),
  });

  app.get(
    '/health/business',
    {
      config: { rateLimit: false },
      schema: {
        tags: ['health'],
        operationId: 'getBusinessHealth',
        summary: 'Business health: warning when no op was persisted for 10 minutes; critical (503) on drift, negative balances or parked persist batches',
        security: [],
        response: {
          200: { description: 'healthy, or warning (see reasons)', ...BusinessSchema },
          503: {
            description: 'critical (see reasons) — or Redis/Postgres unreachable, answered as SERVICE_UNAVAILABLE',
            anyOf: [BusinessSchema, ErrorSchema],
          },
        },
      },
    },
    async (_request, reply) => {
      let inputs;
      try {
        const [last, reconcile, snapshot, parkedBatches] = await Promise.all([
          lastTransactionAt(app.sql),
          readReconcile(app.redis, app.keys),
          readBusiness(app.redis, app.keys),
          countParked(queue),
        ]);
        inputs = { now: Date.now(), lastTransactionAt: last, reconcile, snapshot, parkedBatches };
      } catch (err) {
        throw new DomainError('SERVICE_UNAVAILABLE', `business health cannot be read: ${(err as Error).message}`);
      }
      const health = assessHealth(inputs);
      return reply.code(health.status === 'critical' ? 503 : 200).send(health);
    },
  );
};

export default routes;
