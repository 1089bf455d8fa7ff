/**
 * Lottery routes: public listing with odds, draws (Idempotency-Key required) and the member's draw
 * history, admin create / read / patch (each write with an Idempotency-Key) and statistics.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { AdminIdempotencyHeadersSchema, adminWrite } from '../admin/idempotency.ts';
import { errors, PageQuerySchema } from '../http/schemas.ts';
import { requireIdempotencyKey } from '../points/idempotency.ts';
import {
  AdminLotterySchema,
  CreateLotteryBodySchema,
  DrawConflictSchema,
  DrawHistorySchema,
  DrawSchema,
  LotteryListQuerySchema,
  LotteryStatsSchema,
  PatchLotteryBodySchema,
  PublicLotterySchema,
} from './schemas.ts';

/** Lottery ids are Postgres `serial`s: anything larger names no lottery and is refused as input. */
const LotteryParamsSchema = Type.Object(
  { id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) },
  { additionalProperties: false },
);

const page = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });

/**
 * An admin write without its Idempotency-Key is refused as such before its body is validated,
 * the same answer whatever the body.
 */
async function keyFirst(request: FastifyRequest): Promise<void> {
  requireIdempotencyKey(request.headers['idempotency-key']);
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  // every view (public and admin) loads a lottery Redis lacks from Postgres to show its live
  // stock: a gated write, hence 503 while the write gate is closed
  app.get(
    '/v1/lotteries',
    {
      schema: {
        operationId: 'listLotteries',
        summary: 'Lotteries members can draw in or soon can, with their prizes and current odds',
        tags: ['lottery'],
        security: [],
        querystring: LotteryListQuerySchema,
        response: { 200: page(PublicLotterySchema), ...errors(400, 503) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      return app.lottery.listPublic(limit, cursor ? Number(cursor) : undefined);
    },
  );

  app.get(
    '/v1/lotteries/:id',
    {
      schema: {
        operationId: 'getLottery',
        summary: 'A lottery with its prizes and current odds',
        tags: ['lottery'],
        security: [],
        params: LotteryParamsSchema,
        response: { 200: PublicLotterySchema, ...errors(400, 404, 503) },
      },
    },
    async (request) => app.lottery.getPublic(request.params.id),
  );

  app.post(
    '/v1/lotteries/:id/draws',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'drawLottery',
        summary: 'Pay the cost and draw a prize (a points prize is credited in the same step)',
        description:
          'Idempotency-Key required: a retry replays the first answer (Idempotent-Replayed: true); the key with another ' +
          'lottery is 422. 409: INSUFFICIENT_POINTS, LOTTERY_COOLDOWN (with retryAfterSeconds and Retry-After), ' +
          'LOTTERY_NOT_ACTIVE, DAILY_LIMIT_REACHED (per business day), SOLD_OUT (every prize won).',
        tags: ['lottery'],
        security: [{ bearer: [] }],
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ maxLength: 256 })) }),
        params: LotteryParamsSchema,
        response: { 201: DrawSchema, ...errors(400, 401, 404), 409: DrawConflictSchema, ...errors(422, 503) },
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const { draw, replayed } = await app.lottery.draw(request.userId, request.params.id, key);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(draw);
    },
  );

  app.get(
    '/v1/me/lottery-draws',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'listMyLotteryDraws',
        summary: "The member's draws, newest first (as persisted)",
        tags: ['lottery'],
        security: [{ bearer: [] }],
        querystring: PageQuerySchema,
        response: { 200: DrawHistorySchema, ...errors(400, 401) },
      },
    },
    async (request) => app.lottery.listOwn(request.userId, request.query.limit, request.query.cursor),
  );

  const admin = { onRequest: app.requireAdmin };

  app.post(
    '/v1/admin/lotteries',
    {
      ...admin,
      preValidation: keyFirst,
      schema: {
        operationId: 'createLottery',
        summary: 'Create a lottery with its prizes',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        body: CreateLotteryBodySchema,
        response: { 201: AdminLotterySchema, ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 201, {
        write: (tx) => app.lottery.insert(tx, request.body, request.userId),
        after: ({ id }) => app.lottery.sync(id),
      }),
  );

  app.get(
    '/v1/admin/lotteries',
    {
      ...admin,
      schema: {
        operationId: 'adminListLotteries',
        summary: 'Every lottery, switched on or not, with stock and odds',
        tags: ['admin'],
        security: [{ bearer: [] }],
        querystring: LotteryListQuerySchema,
        response: { 200: page(AdminLotterySchema), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      return app.lottery.adminList(limit, cursor ? Number(cursor) : undefined);
    },
  );

  app.get(
    '/v1/admin/lotteries/:id',
    {
      ...admin,
      schema: {
        operationId: 'adminGetLottery',
        summary: 'A lottery with its settings, prizes, stock and odds',
        tags: ['admin'],
        security: [{ bearer: [] }],
        params: LotteryParamsSchema,
        response: { 200: AdminLotterySchema, ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request) => app.lottery.adminGet(request.params.id),
  );

  app.patch(
    '/v1/admin/lotteries/:id',
    {
      ...admin,
      preValidation: keyFirst,
      schema: {
        operationId: 'updateLottery',
        summary: 'Change settings; with `prizes`, the new prize list (prizes left out are retired)',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        params: LotteryParamsSchema,
        body: PatchLotteryBodySchema,
        response: { 200: AdminLotterySchema, ...errors(400, 401, 403, 404, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: (tx) => app.lottery.applyPatch(tx, request.params.id, request.body, request.userId),
        after: ({ id }) => app.lottery.sync(id),
      }),
  );

  app.get(
    '/v1/admin/lotteries/:id/stats',
    {
      ...admin,
      schema: {
        operationId: 'lotteryStats',
        summary: 'Draws, points collected and paid, payout ratio against the expected value, wins per prize',
        tags: ['admin'],
        security: [{ bearer: [] }],
        params: LotteryParamsSchema,
        response: { 200: LotteryStatsSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => app.lottery.stats(request.params.id),
  );
};

export default routes;
