/**
 * Admin holds for integrators: freeze a member's points, then capture (all or part; the rest goes
 * back) or release them. An expired hold releases itself (the orders role's pump).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, IdempotencyHeadersSchema } from '../http/schemas.ts';
import { requireIdempotencyKey } from './idempotency.ts';
import { adminWrite } from '../admin/idempotency.ts';
import { recordAudit } from '../audit/log.ts';
import { auditContextOf } from '../audit/context.ts';

const HoldSchema = Type.Object({
  holdId: Type.String({ description: 'h<userId>-<32 hex>' }),
  userId: Type.Integer(),
  amount: Type.Integer({ description: 'Points frozen' }),
  state: Type.Union([Type.Literal('frozen'), Type.Literal('captured'), Type.Literal('released')]),
  captured: Type.Integer({ description: 'Points spent by the capture (0 unless captured)' }),
  reason: Type.String(),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  settledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const HoldParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/v1/admin/points/holds',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'createPointsHold',
        summary: "Freeze a member's points for an integrator (Idempotency-Key required)",
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        body: Type.Object(
          {
            userId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
            amount: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
            reason: Type.String({ minLength: 1, maxLength: 200 }),
            ttlSeconds: Type.Integer({ minimum: 1, description: 'The hold releases itself after this long (at most HOLD_MAX_TTL_SECONDS)' }),
          },
          { additionalProperties: false },
        ),
        response: { 201: HoldSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const { hold, replayed } = await app.holds.createAdmin(request.userId, request.body, key, auditContextOf(request));
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(hold);
    },
  );

  app.get(
    '/v1/admin/points/holds/:id',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'getPointsHold',
        summary: 'A hold and its state',
        tags: ['admin'],
        security: [{ bearer: [] }],
        params: HoldParams,
        response: { 200: HoldSchema, ...errors(401, 403, 404) },
      },
    },
    async (request) => app.holds.getAdmin(request.params.id),
  );

  app.post(
    '/v1/admin/points/holds/:id/capture',
    {
      onRequest: app.requireAdmin,
      // no body at all means "capture everything"
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        operationId: 'capturePointsHold',
        summary: 'Spend a hold (all of it, or `amount` and release the rest); Idempotency-Key required',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        params: HoldParams,
        body: Type.Object(
          { amount: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Points to spend (default: all); the rest is released' })) },
          { additionalProperties: false },
        ),
        response: { 200: HoldSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: async (tx) => {
          await app.holds.assertSettleable(request.params.id, 'capture', request.body.amount);
          await recordAudit(tx, { action: 'points.hold_capture', targetType: 'hold', targetId: request.params.id, data: { amount: request.body.amount ?? 'all' } });
          return {};
        },
        after: async () => (await app.holds.settleAdmin(request.userId, request.params.id, 'capture', request.body.amount)).hold,
      }),
  );

  app.post(
    '/v1/admin/points/holds/:id/release',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'releasePointsHold',
        summary: 'Give a hold back to the member; Idempotency-Key required',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        params: HoldParams,
        response: { 200: HoldSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: async (tx) => {
          await app.holds.assertSettleable(request.params.id, 'release');
          await recordAudit(tx, { action: 'points.hold_release', targetType: 'hold', targetId: request.params.id });
          return {};
        },
        after: async () => (await app.holds.settleAdmin(request.userId, request.params.id, 'release')).hold,
      }),
  );
};

export default routes;
