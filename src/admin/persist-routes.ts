/**
 * Parked persist batches (src/persistence/parked.ts): GET /v1/admin/persist/parked lists them,
 * POST /v1/admin/persist/parked/retry gives them (all, or the ids given) a fresh set of attempts.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { apiQueue } from '../redis/api-queue.ts';
import { errors } from '../http/schemas.ts';
import { PERSIST_QUEUE } from '../queues.ts';
import { listParked, retryParked } from '../persistence/parked.ts';
import { AdminIdempotencyHeadersSchema, adminWrite } from './idempotency.ts';
import { recordAudit } from '../audit/log.ts';

const ParkedSchema = Type.Object({
  jobId: Type.String(),
  ops: Type.Integer(),
  members: Type.Integer(),
  attemptsMade: Type.Integer(),
  failedReason: Type.String(),
  firstOpAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  parkedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const RetryBodySchema = Type.Object(
  { jobIds: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_:-]+$' }), { maxItems: 1000 })) },
  { additionalProperties: false },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue, close } = apiQueue(app.redis, PERSIST_QUEUE, app.keys.queuePrefix(PERSIST_QUEUE));
  app.addHook('onClose', close);

  app.get(
    '/v1/admin/persist/parked',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'listParkedPersistBatches',
        summary: 'Persist batches that used up their attempts and are kept until retried',
        security: [{ bearer: [] }],
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(ParkedSchema) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => ({ items: await listParked(queue, request.query.limit) }),
  );

  app.post(
    '/v1/admin/persist/parked/retry',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'retryParkedPersistBatches',
        summary: 'Give parked persist batches (all, or the ones named) a fresh set of attempts',
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        body: RetryBodySchema,
        response: {
          200: Type.Object({ retried: Type.Array(Type.String()), skipped: Type.Array(Type.String()) }),
          ...errors(400, 401, 403, 422, 503),
        },
      },
    },
    async (request, reply) =>
      // retrying is safe to repeat (a batch no longer parked is skipped), so it runs after the key's commit
      adminWrite(request, reply, 200, {
        write: async (tx) => {
          await recordAudit(tx, { action: 'persist.retry_parked', targetType: 'persist', targetId: 'parked', data: { jobIds: request.body.jobIds ?? 'all' } });
          return {};
        },
        after: () => retryParked(queue, request.body.jobIds),
      }),
  );
};

export default routes;
