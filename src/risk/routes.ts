/**
 * Risk control for operators: rules, events, members by risk status, freeze and unfreeze.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import { adminWrite } from '../admin/idempotency.ts';
import type { Deps } from '../deps.ts';
import { errors, IdempotencyHeadersSchema } from '../http/schemas.ts';
import { RISK_RULES, requestContext } from './rules.ts';
import { RiskService } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    risk: RiskService;
  }
}

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const RuleName = Type.Union(RISK_RULES.map((r) => Type.Literal(r)));
const RuleSchema = Type.Object(
  {
    rule: RuleName,
    enabled: Type.Boolean(),
    threshold: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    windowSeconds: Type.Integer({ minimum: 0, maximum: 31 * 86_400, description: 'The window the threshold counts over (DAILY_GAIN: the business day, whatever this says)' }),
    action: Type.Union([Type.Literal('flag'), Type.Literal('freeze'), Type.Literal('block')]),
  },
  { additionalProperties: false },
);
const RulesSchema = Type.Object({ rules: Type.Array(RuleSchema) });
const EventSchema = Type.Object({
  id: Type.Integer(),
  userId: Type.Integer(),
  rule: Type.String({ description: 'A rule name, or ADMIN for an operator’s freeze / unfreeze' }),
  action: Type.String({ description: 'flag | freeze | block | unfreeze' }),
  evidence: Type.Record(Type.String(), Type.Unknown()),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
});
const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20 });
const Cursor = Type.Optional(Type.String({ minLength: 1, maxLength: 200 }));
const MemberParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }, { additionalProperties: false });
const FreezeResult = Type.Object({ userId: Type.Integer(), riskStatus: Type.Union([Type.Literal('frozen'), Type.Literal('normal')]) });

export const riskPlugin = fp(
  async (app) => {
    const deps: Deps = { redis: app.redis, keys: app.keys, sql: app.sql, env: app.config };
    app.decorate('risk', new RiskService(deps, app.riskRules));
  },
  { name: 'risk', dependencies: ['config', 'redis', 'db', 'services'] },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/admin/risk/rules',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'listRiskRules',
        summary: 'The risk rules with their thresholds, windows and actions',
        tags: ['admin'],
        security: [{ bearer: [] }],
        response: { 200: RulesSchema, ...errors(401, 403) },
      },
    },
    async () => ({ rules: app.risk.list() }),
  );

  app.put(
    '/v1/admin/risk/rules',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'updateRiskRules',
        summary: 'Replace the listed rules’ settings (Idempotency-Key required); the others stay',
        description:
          'Actions each rule can take: IP_MULTI_ACCOUNT, DEVICE_SHARING, TRANSFER_FAN_IN flag or freeze; HIGH_FREQUENCY flags; DAILY_GAIN freezes; EARN_BURST blocks (429).',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        body: Type.Object({ rules: Type.Array(RuleSchema, { minItems: 1, maxItems: RISK_RULES.length }) }, { additionalProperties: false }),
        response: { 200: RulesSchema, ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, { write: async (tx) => ({ rules: await app.risk.updateTx(tx, request.userId, request.body.rules) }) }),
  );

  app.get(
    '/v1/admin/risk/events',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'listRiskEvents',
        summary: 'Risk events, newest first, by rule, member and time',
        tags: ['admin'],
        security: [{ bearer: [] }],
        querystring: Type.Object(
          {
            rule: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            member: Type.Optional(Type.Integer({ minimum: 1 })),
            from: Type.Optional(Type.String({ format: 'date-time' })),
            to: Type.Optional(Type.String({ format: 'date-time' })),
            limit: Limit,
            cursor: Cursor,
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(EventSchema), nextCursor: Nullable(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => app.risk.events(request.query),
  );

  app.get(
    '/v1/admin/risk/members',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'listRiskMembers',
        summary: 'Members flagged or frozen, with their last risk event',
        tags: ['admin'],
        security: [{ bearer: [] }],
        querystring: Type.Object(
          { status: Type.Optional(Type.Union([Type.Literal('flagged'), Type.Literal('frozen')])), limit: Limit, cursor: Cursor },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({
                id: Type.Integer(),
                username: Type.String(),
                riskStatus: Type.String(),
                events: Type.Integer(),
                lastRule: Nullable(Type.String()),
                lastAt: Nullable(Type.String({ format: 'date-time' })),
              }),
            ),
            nextCursor: Nullable(Type.String()),
          }),
          ...errors(400, 401, 403),
        },
      },
    },
    async (request) => app.risk.members(request.query),
  );

  for (const mode of ['freeze', 'unfreeze'] as const) {
    app.post(
      `/v1/admin/members/:id/${mode}`,
      {
        onRequest: app.requireAdmin,
        schema: {
          operationId: mode === 'freeze' ? 'freezeMember' : 'unfreezeMember',
          summary:
            mode === 'freeze'
              ? 'Freeze a member: every write that moves their points or stock is refused (403 ACCOUNT_FROZEN); reads and login still work'
              : 'Unfreeze a member (their day’s DAILY_GAIN count starts again)',
          tags: ['admin'],
          security: [{ bearer: [] }],
          headers: IdempotencyHeadersSchema,
          params: MemberParams,
          body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
          response: { 200: FreezeResult, ...errors(400, 401, 403, 404, 422, 503) },
        },
      },
      async (request, reply) => {
        const ctx = requestContext(request);
        const id = request.params.id;
        return adminWrite<{ userId: number; riskStatus: 'frozen' | 'normal' }>(request, reply, 200, {
          write: (tx) =>
            mode === 'freeze'
              ? app.risk.freezeTx(tx, request.userId, id, request.body.reason, ctx)
              : app.risk.unfreezeTx(tx, request.userId, id, request.body.reason, ctx),
          after: async (written) => {
            await app.risk.enforce(id, mode === 'freeze');
            return written;
          },
        });
      },
    );
  }
};

export default routes;
