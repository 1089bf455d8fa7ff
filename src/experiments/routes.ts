/**
 * A/B experiments: admin definitions and results under /v1/admin/experiments (writes with an
 * Idempotency-Key), a member's sticky variant (GET /v1/me/experiments/:key) and their events
 * (POST /v1/me/events).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import { AdminIdempotencyHeadersSchema, adminWrite } from '../admin/idempotency.ts';
import type { Deps } from '../deps.ts';
import { errors, IdempotencyHeadersSchema } from '../http/schemas.ts';
import { requestHash, requireIdempotencyKey } from '../points/idempotency.ts';
import {
  AssignmentSchema,
  CreateExperimentBodySchema,
  EventBodySchema,
  EventSchema,
  ExperimentParamsSchema,
  ExperimentSchema,
  PatchExperimentBodySchema,
  ResultsSchema,
} from './schemas.ts';
import { ExperimentService } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    experiments: ExperimentService;
  }
}

export const experimentsPlugin = fp(
  async (app) => {
    const deps: Deps = { redis: app.redis, keys: app.keys, sql: app.sql, env: app.config };
    app.decorate('experiments', new ExperimentService(deps));
  },
  { name: 'experiments', dependencies: ['config', 'redis', 'db'] },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = { onRequest: app.requireAdmin };
  const adminSchema = { tags: ['admin'], security: [{ bearer: [] }] };

  app.get(
    '/v1/admin/experiments',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'listExperiments',
        summary: 'Every experiment, whatever its status',
        response: { 200: Type.Object({ items: Type.Array(ExperimentSchema) }), ...errors(401, 403) },
      },
    },
    async () => ({ items: await app.experiments.list() }),
  );

  app.get(
    '/v1/admin/experiments/:key',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'getExperiment',
        summary: 'One experiment',
        params: ExperimentParamsSchema,
        response: { 200: ExperimentSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => app.experiments.get(request.params.key),
  );

  app.post(
    '/v1/admin/experiments',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'createExperiment',
        summary: 'Define an experiment: 2-10 weighted variants with payloads, the conversion event, an optional window',
        headers: AdminIdempotencyHeadersSchema,
        body: CreateExperimentBodySchema,
        response: { 201: ExperimentSchema, ...errors(400, 401, 403, 409, 422, 503) },
      },
    },
    async (request, reply) => adminWrite(request, reply, 201, { write: (tx) => app.experiments.createTx(tx, request.body, request.userId) }),
  );

  app.patch(
    '/v1/admin/experiments/:key',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'updateExperiment',
        summary: "Change an experiment's status (draft → running → stopped), weights, payloads, description or window",
        description:
          'Weights apply to members not yet assigned; assigned members keep their variant. Variant names and the ' +
          'conversion event change only in draft (EXPERIMENT_STATE_CONFLICT otherwise), as does any backward status change.',
        headers: AdminIdempotencyHeadersSchema,
        params: ExperimentParamsSchema,
        body: PatchExperimentBodySchema,
        response: { 200: ExperimentSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, { write: (tx) => app.experiments.updateTx(tx, request.params.key, request.body, request.userId) }),
  );

  app.get(
    '/v1/admin/experiments/:key/results',
    {
      ...admin,
      schema: {
        ...adminSchema,
        operationId: 'getExperimentResults',
        summary: 'Per variant: exposed, converted, rate, mean value, lift against the first variant with a 95% CI, two-sided p-value',
        params: ExperimentParamsSchema,
        response: { 200: ResultsSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => app.experiments.results(request.params.key),
  );

  app.get(
    '/v1/me/experiments/:key',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['experiments'],
        operationId: 'getMyExperimentVariant',
        summary: "The member's variant of a running experiment and its payload (sticky; the first call records the exposure)",
        security: [{ bearer: [] }],
        params: ExperimentParamsSchema,
        response: { 200: AssignmentSchema, ...errors(400, 401, 404, 409, 503) },
      },
    },
    async (request) => app.experiments.assignment(request.userId, request.params.key),
  );

  app.post(
    '/v1/me/events',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['experiments'],
        operationId: 'recordMyEvent',
        summary: "Record an event (a conversion when it is the named experiment's conversion event and the member was exposed); Idempotency-Key required",
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        body: EventBodySchema,
        response: { 201: EventSchema, ...errors(400, 401, 404, 422, 503) },
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const hash = requestHash(`${request.method} ${request.routeOptions.url}`, request.body);
      const { event, replayed } = await app.experiments.recordEvent(request.userId, key, hash, request.body);
      if (replayed) reply.header('idempotent-replayed', 'true');
      reply.code(201);
      return event;
    },
  );
};

export default routes;
