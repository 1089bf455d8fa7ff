/**
 * Transfer routes: send points to another member (Idempotency-Key required) and the member's
 * transfer history.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, PageQuerySchema } from '../http/schemas.ts';
import { requireIdempotencyKey } from '../points/idempotency.ts';
import { TransferBodySchema, TransferConflictSchema, TransferHistorySchema, TransferSchema } from './schemas.ts';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/v1/points/transfers',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'transferPoints',
        summary: 'Transfer points to another member; the received lots keep the expiry of the lots they came from',
        description:
          'Idempotency-Key required: a retry replays the first answer (Idempotent-Replayed: true); the key with another ' +
          'body is 422. 400 TRANSFER_TO_SELF; 404 USER_NOT_FOUND (no such receiver); 409 INSUFFICIENT_POINTS, ' +
          'TRANSFER_LIMIT_REACHED (TRANSFER_DAILY_MAX per business day; the body carries remainingToday). ' +
          'A refused transfer moves nothing.',
        tags: ['points'],
        security: [{ bearer: [] }],
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ maxLength: 256 })) }),
        body: TransferBodySchema,
        response: { 201: TransferSchema, ...errors(400, 401, 404), 409: TransferConflictSchema, ...errors(422, 503) },
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const { transfer, replayed } = await app.transfers.transfer(request.userId, request.body, key);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(transfer);
    },
  );

  app.get(
    '/v1/me/transfers',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'listMyTransfers',
        summary: "The member's transfers, sent and received, newest first (as persisted)",
        tags: ['points'],
        security: [{ bearer: [] }],
        querystring: PageQuerySchema,
        response: { 200: TransferHistorySchema, ...errors(400, 401) },
      },
    },
    async (request) => app.transfers.listOwn(request.userId, request.query.limit, request.query.cursor),
  );
};

export default routes;
