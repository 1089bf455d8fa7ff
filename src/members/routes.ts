/**
 * Member lookup for operators: GET /v1/admin/members?q= (search) and GET /v1/admin/members/:id
 * (balance, frozen points, tier, risk status, recent ledger and orders). Freezing and unfreezing
 * a member are risk control's (src/risk/routes.ts).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../http/schemas.ts';
import { LedgerItemSchema } from '../points/routes.ts';
import { MemberTierSchema } from '../engagement/routes.ts';
import { MemberLookup, RECENT } from './service.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const memberFields = {
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  role: Type.Union([Type.Literal('member'), Type.Literal('admin')]),
  riskStatus: Type.Union([Type.Literal('normal'), Type.Literal('flagged'), Type.Literal('frozen')]),
  createdAt: Type.String({ format: 'date-time' }),
};
const MemberSummarySchema = Type.Object(memberFields);
const MemberDetailSchema = Type.Object({
  ...memberFields,
  balance: Type.Object({
    available: Type.Integer({ description: 'Spendable points (frozen ones left out)' }),
    frozen: Type.Integer({ description: 'Points held by open holds (pending payments, integrator holds)' }),
    totalEarned: Type.Integer(),
    source: Type.Union([Type.Literal('redis'), Type.Literal('postgres')], {
      description: 'redis: the live balance; postgres: the persisted one (behind by the ops in flight), when Redis could not answer',
    }),
  }),
  tier: MemberTierSchema,
  recentLedger: Type.Array(LedgerItemSchema, { description: `The last ${RECENT} persisted ledger entries, newest first` }),
  recentOrders: Type.Array(
    Type.Object({
      id: Type.String(),
      orderNo: Type.String(),
      source: Type.String({ description: 'order | redemption' }),
      status: Type.String(),
      pointsTotal: Type.Integer(),
      cashTotal: Type.Integer(),
      createdAt: Type.String({ format: 'date-time' }),
    }),
    { description: `The last ${RECENT} orders and redemptions, newest first` },
  ),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const members = new MemberLookup(app.sql, app.points, app.tiers, app.orders, app.log);

  app.get(
    '/v1/admin/members',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'searchMembers',
        summary: 'Members whose username or email starts with q (any case), by id',
        tags: ['admin'],
        security: [{ bearer: [] }],
        querystring: Type.Object(
          {
            q: Type.String({ minLength: 2, maxLength: 254, pattern: '\\S', description: 'The start of a username or email, at least 2 characters' }),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(MemberSummarySchema), nextCursor: Nullable(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => members.search(request.query),
  );

  app.get(
    '/v1/admin/members/:id',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'getMember',
        summary: "A member's balance, frozen points, tier, risk status, recent ledger and orders",
        tags: ['admin'],
        security: [{ bearer: [] }],
        params: Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }, { additionalProperties: false }),
        response: { 200: MemberDetailSchema, ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request) => members.detail(request.params.id),
  );
};

export default routes;
