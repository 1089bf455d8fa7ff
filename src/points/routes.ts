/**
 * Points: live balance, persisted history, earn by rule, admin grant.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, PageQuerySchema } from '../http/schemas.ts';
import { requireIdempotencyKey } from './idempotency.ts';
import { listLedger } from './ledger.ts';
import { requestContext } from '../risk/rules.ts';
import { auditContextOf } from '../audit/context.ts';

export const BalanceSchema = Type.Object({
  available: Type.Integer(),
  frozen: Type.Integer(),
  totalEarned: Type.Integer({ description: 'Lifetime earned points that set the tier (admin grants, refunds and transfers received do not count)' }),
  expiring: Type.Array(
    Type.Object({
      date: Type.String({ format: 'date' }),
      points: Type.Integer(),
      expiresAt: Type.String({ format: 'date-time' }),
    }),
  ),
});

const LotsPageSchema = Type.Object({
  items: Type.Array(
    Type.Object({ id: Type.String(), remaining: Type.Integer(), expiresAt: Type.String({ format: 'date-time' }) }),
  ),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export const LedgerItemSchema = Type.Object({
  opId: Type.String(),
  kind: Type.String(),
  delta: Type.Integer(),
  balanceAfter: Type.Integer(),
  bizType: Type.String(),
  bizId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
});

const LedgerPageSchema = Type.Object({
  items: Type.Array(LedgerItemSchema),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export const EarnBodySchema = Type.Object(
  { action: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9_.-]+$' }) },
  { additionalProperties: false },
);

export const GrantBodySchema = Type.Object(
  {
    userId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    amount: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);

const idempotencyHeader = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ maxLength: 256 })) });

const routes: FastifyPluginAsyncTypebox = async (app) => {
  // the balance reads load an account Redis lacks from Postgres, a gated write: 503 while the
  // write gate is closed, 404 for a token whose member Postgres does not know
  app.get(
    '/v1/me/points',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['points'],
        operationId: 'getMyPoints',
        summary: "The member's live balance: available, frozen, lifetime earned, and what expires in the next 30 days",
        security: [{ bearer: [] }],
        response: { 200: BalanceSchema, ...errors(401, 404, 503) },
      },
    },
    async (request) => app.points.balance(request.userId),
  );

  app.get(
    '/v1/me/lots',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['points'],
        operationId: 'listMyLots',
        summary: "The member's live points lots, earliest expiry first",
        security: [{ bearer: [] }],
        description: 'Live lots, earliest expiry first, in pages of `limit`; pass `nextCursor` back as `cursor`.',
        querystring: PageQuerySchema,
        response: { 200: LotsPageSchema, ...errors(400, 401, 404, 503) },
      },
    },
    async (request) => app.points.lots(request.userId, request.query),
  );

  app.get(
    '/v1/me/ledger',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['points'],
        operationId: 'listMyLedger',
        summary: "The member's persisted ledger, newest first",
        security: [{ bearer: [] }],
        querystring: PageQuerySchema,
        response: { 200: LedgerPageSchema, ...errors(400, 401) },
      },
    },
    async (request) => listLedger(app.sql, request.userId, request.query.limit, request.query.cursor),
  );

  app.post(
    '/v1/points/earn',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['points'],
        operationId: 'earnPoints',
        summary: 'Earn points for an action by its rule (Idempotency-Key required)',
        security: [{ bearer: [] }],
        headers: idempotencyHeader,
        body: EarnBodySchema,
        response: {
          200: Type.Object({
            opId: Type.String(),
            delta: Type.Integer({ description: 'Points credited: the rule points × tier × campaign, floored' }),
            available: Type.Integer(),
            multiplier: Type.Number({ description: 'The multiplier used (tier × the highest running campaign)' }),
          }),
          ...errors(400, 401, 404, 409, 422, 503),
        },
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const { op, replayed } = await app.points.earn(request.userId, request.body.action, key, requestContext(request));
      if (replayed) reply.header('idempotent-replayed', 'true');
      return { opId: op.opId, delta: op.delta, available: op.available, multiplier: (op.mult ?? 1000) / 1000 };
    },
  );

  app.post(
    '/v1/admin/points/grant',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'grantPoints',
        summary: 'Grant points to a member (Idempotency-Key required; does not count toward the tier)',
        security: [{ bearer: [] }],
        headers: idempotencyHeader,
        body: GrantBodySchema,
        response: {
          200: Type.Object({ opId: Type.String(), available: Type.Integer() }),
          ...errors(400, 401, 403, 404, 422, 503),
        },
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const { userId, amount, reason } = request.body;
      const { op, replayed } = await app.points.grant(request.userId, userId, amount, reason, key, auditContextOf(request));
      if (replayed) reply.header('idempotent-replayed', 'true');
      return { opId: op.opId, available: op.available };
    },
  );
};

export default routes;
