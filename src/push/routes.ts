/**
 * Notifications: a member's push history; for admins the push records by status (the dead-letter
 * list), retrying a dead push, and broadcasts to a segment of members (both writes once per
 * Idempotency-Key).
 */
import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AdminIdempotencyHeadersSchema, adminWrite } from '../admin/idempotency.ts';
import { errors, IdParamsSchema, PageQuerySchema } from '../http/schemas.ts';
import { recordAudit } from '../audit/log.ts';

const PushStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('sent'),
  Type.Literal('failed'),
  Type.Literal('dead'),
]);

const nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) =>
  Type.Union([t, Type.Null()]);

const notificationFields = {
  id: Type.Integer(),
  deviceId: nullable(Type.Integer()),
  type: Type.String(),
  title: Type.String(),
  body: Type.String(),
  data: Type.Record(Type.String(), Type.String()),
  status: PushStatusSchema,
  createdAt: Type.String({ format: 'date-time' }),
  sentAt: nullable(Type.String({ format: 'date-time' })),
};

const NotificationSchema = Type.Object({
  id: Type.Integer({ description: 'The push (whatever the number of devices it went to)' }),
  type: Type.String(),
  title: Type.String(),
  body: Type.String(),
  data: Type.Record(Type.String(), Type.String()),
  // the best delivery of its devices: sent, then pending, failed, dead
  status: PushStatusSchema,
  devices: Type.Integer({ minimum: 0, description: 'Devices it was sent to (0: in-app inbox only)' }),
  createdAt: Type.String({ format: 'date-time' }),
  sentAt: nullable(Type.String({ format: 'date-time' })),
  opened: Type.Boolean(),
  openedAt: nullable(Type.String({ format: 'date-time' })),
});

const NotificationPageSchema = Type.Object({
  items: Type.Array(NotificationSchema),
  nextCursor: nullable(Type.String()),
});

const AdminPushPageSchema = Type.Object({
  items: Type.Array(
    Type.Object({
      ...notificationFields,
      pushId: Type.Union([Type.Integer(), Type.Null()], { description: 'The push this record delivers to one more device; null: the record is the push' }),
      userId: Type.Integer(),
      error: nullable(Type.String()),
      attempts: Type.Integer(),
    }),
  ),
  nextCursor: nullable(Type.String()),
});

const AdminPushQuerySchema = Type.Composite([PageQuerySchema, Type.Object({ status: Type.Optional(PushStatusSchema) })], {
  additionalProperties: false,
});

export const SegmentSchema = Type.Union([
  Type.Literal('all'),
  Type.Literal('members-with-devices'),
  Type.Object({ minBalance: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) }, { additionalProperties: false }),
]);

export const BroadcastBodySchema = Type.Object(
  {
    // both providers cap a payload at 4 KB; these leave room for the rest of it
    title: Type.String({ minLength: 1, maxLength: 200 }),
    body: Type.String({ minLength: 1, maxLength: 1000 }),
    segment: SegmentSchema,
  },
  { additionalProperties: false },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/me/notifications',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['notifications'],
        operationId: 'listMyNotifications',
        summary: "The member's push history, newest first, one entry per push however many devices got it",
        security: [{ bearer: [] }],
        querystring: PageQuerySchema,
        response: { 200: NotificationPageSchema, ...errors(400, 401) },
      },
    },
    async (request) => app.pushes.listForMember(request.userId, request.query.limit, request.query.cursor),
  );

  app.post(
    '/v1/me/notifications/:id/opened',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['notifications'],
        operationId: 'markNotificationOpened',
        summary: 'Record that the member opened a push (idempotent: the first open time stays)',
        description: "Counts toward the push open rate (docs/analytics.md). Another member's push is 404 PUSH_NOT_FOUND.",
        security: [{ bearer: [] }],
        params: IdParamsSchema,
        response: {
          200: Type.Object({ id: Type.Integer(), opened: Type.Literal(true), openedAt: Type.String({ format: 'date-time' }) }),
          ...errors(400, 401, 404, 503),
        },
      },
    },
    async (request) => app.pushes.markOpened(request.userId, request.params.id),
  );

  app.get(
    '/v1/admin/pushes',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'listPushes',
        summary: 'Push records, by status (dead: the dead-letter list)',
        security: [{ bearer: [] }],
        querystring: AdminPushQuerySchema,
        response: { 200: AdminPushPageSchema, ...errors(400, 401, 403) },
      },
    },
    async (request) => app.pushes.listByStatus(request.query.status, request.query.limit, request.query.cursor),
  );

  app.post(
    '/v1/admin/pushes/:id/retry',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'retryPush',
        summary: 'Send a dead push again (once per Idempotency-Key)',
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        params: IdParamsSchema,
        response: {
          202: Type.Object({ id: Type.Integer(), status: Type.Literal('pending') }),
          ...errors(400, 401, 403, 404, 409, 422, 503),
        },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 202, {
        write: async (tx) => {
          await app.pushes.markForRetry(request.params.id, tx);
          await recordAudit(tx, { action: 'push.retry', targetType: 'push', targetId: request.params.id });
          return { id: request.params.id, status: 'pending' as const };
        },
        after: async (answer) => {
          await app.pushes.queueRetry(answer.id);
          return answer;
        },
      }),
  );

  app.post(
    '/v1/admin/broadcasts',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'createBroadcast',
        summary: 'Push a message to a segment of members, in batches (once per Idempotency-Key)',
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        body: BroadcastBodySchema,
        response: {
          202: Type.Object({ broadcastId: Type.String(), members: Type.Integer() }),
          ...errors(400, 401, 403, 422, 503),
        },
      },
    },
    async (request, reply) => {
      const { title, body, segment } = request.body;
      // the broadcast id is fixed with the key, so a replay queues the same broadcast
      return adminWrite(request, reply, 202, {
        write: async (tx) => {
          const broadcastId = randomUUID();
          await recordAudit(tx, { action: 'push.broadcast', targetType: 'broadcast', targetId: broadcastId, data: { title, segment } });
          return { broadcastId };
        },
        after: ({ broadcastId }) => app.broadcasts.accept(title, body, segment, app.config.BROADCAST_BATCH, broadcastId),
      });
    },
  );
};

export default routes;
