/**
 * The audit trail for operators: GET /v1/admin/audit, newest first, by actor, action and time.
 * The plugin decorates the audit service and the login burst watch the auth routes report to.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import { errors } from '../http/schemas.ts';
import { LoginBurstWatch } from './security.ts';
import { AuditService } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditService;
    loginBursts: LoginBurstWatch;
  }
}

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) => Type.Union([t, Type.Null()]);

const AuditRowSchema = Type.Object({
  id: Type.Integer(),
  opId: Nullable(Type.String({ description: 'The points op the row records (grants, holds, reconcile adjustments)' })),
  actorId: Nullable(Type.Integer({ description: 'The user who acted; null: a worker, the CLI or an anonymous caller' })),
  action: Type.String({ description: '<area>.<verb>, e.g. goods.update, member.freeze, security.login_failed_burst' }),
  targetType: Type.String(),
  targetId: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  requestId: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
});

export const auditPlugin = fp(
  async (app) => {
    app.decorate('audit', new AuditService(app.sql));
    app.decorate('loginBursts', new LoginBurstWatch(app.redis, app.keys, app.sql));
  },
  { name: 'audit', dependencies: ['config', 'redis', 'db'] },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/admin/audit',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'listAuditLog',
        summary: 'The audit trail, newest first, by actor, action and time (cursor-paginated)',
        description:
          'Admin actions, security events and config changes, each with its actor, IP, user agent and request id. ' +
          'Rows are kept AUDIT_RETENTION_DAYS days. Bad parameters (an unknown shape, `from` not before `to`, a cursor not from this endpoint) are 400 VALIDATION_FAILED.',
        tags: ['admin'],
        security: [{ bearer: [] }],
        querystring: Type.Object(
          {
            actor: Type.Optional(Type.String({ pattern: '^([1-9][0-9]{0,14}|system)$', description: 'A user id, or `system` for rows without a user' })),
            action: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Exact action, e.g. member.freeze' })),
            from: Type.Optional(Type.String({ format: 'date-time', description: 'Rows at or after this time' })),
            to: Type.Optional(Type.String({ format: 'date-time', description: 'Rows before this time' })),
            limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
            cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page (same filters)' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(AuditRowSchema), nextCursor: Nullable(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => app.audit.list(request.query),
  );
};

export default routes;
