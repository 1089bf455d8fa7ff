/**
 * Admin jobs: POST /v1/admin/jobs/rebuild queues a rebuild of Redis from Postgres (run by the
 * reconcile role while the API refuses writes; once per Idempotency-Key); GET /v1/admin/jobs/:id
 * reports its state.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { apiQueue } from '../redis/api-queue.ts';
import { DomainError } from '../errors/domain-error.ts';
import { AdminIdempotencyHeadersSchema, adminWrite } from './idempotency.ts';
import { errors } from '../http/schemas.ts';
import { ADMIN_JOBS_QUEUE } from '../queues.ts';
import { recordAudit } from '../audit/log.ts';

const JobSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: Type.String(),
  result: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  failedReason: Type.Union([Type.String(), Type.Null()]),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const { queue, close } = apiQueue(app.redis, ADMIN_JOBS_QUEUE, app.keys.queuePrefix(ADMIN_JOBS_QUEUE));
  app.addHook('onClose', close);

  app.post(
    '/v1/admin/jobs/rebuild',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'queueRebuild',
        summary: 'Queue a rebuild of Redis from Postgres (writes are refused while it runs; once per Idempotency-Key)',
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        response: { 202: Type.Object({ id: Type.String(), state: Type.String() }), ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      // the job id is fixed with the key; a replay re-adds the same id, which BullMQ ignores while
      // the job is kept (7 days, longer than any key lives)
      adminWrite(request, reply, 202, {
        write: async (tx) => {
          const id = `rebuild-${Date.now()}`;
          await recordAudit(tx, { action: 'recovery.rebuild', targetType: 'job', targetId: id });
          return { id };
        },
        after: async ({ id }) => {
          const job = await queue.add('rebuild', { requestedBy: request.userId }, {
            jobId: id,
            attempts: 1,
            removeOnComplete: { age: 7 * 86_400 },
            removeOnFail: { age: 7 * 86_400 },
          });
          return { id, state: await job.getState() };
        },
      }),
  );

  app.get(
    '/v1/admin/jobs/:id',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'getJob',
        summary: "An admin job's state, result or failure",
        security: [{ bearer: [] }],
        params: Type.Object({ id: Type.String({ pattern: '^rebuild-[0-9]{1,15}$' }) }, { additionalProperties: false }),
        response: { 200: JobSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const job = await queue.getJob(request.params.id);
      if (!job) throw new DomainError('NOT_FOUND', 'No such job');
      return {
        id: String(job.id),
        name: job.name,
        state: await job.getState(),
        result: (job.returnvalue as Record<string, unknown> | null) ?? null,
        failedReason: job.failedReason ?? null,
      };
    },
  );
};

export default routes;
