/**
 * Redemptions: POST /v1/redemptions (Idempotency-Key required), own history and lookup.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors, ErrorSchema, PageQuerySchema } from '../http/schemas.ts';
import { requireIdempotencyKey } from '../points/idempotency.ts';

const Status = Type.Union([Type.Literal('confirmed'), Type.Literal('fulfilled'), Type.Literal('cancelled')]);

export const RedeemBodySchema = Type.Object(
  {
    goodsId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    quantity: Type.Integer({ minimum: 1, maximum: 100 }),
    expectedPrice: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000_000,
        description: 'The unit price the member was shown (GET /v1/goods/:id `price`); any other price is 409 PRICE_CHANGED, nothing charged',
      }),
    ),
  },
  { additionalProperties: false },
);

/** 409 answers of a redemption: PRICE_CHANGED carries the price the item has now. */
const RedeemConflictSchema = Type.Composite([
  ErrorSchema,
  Type.Object({
    currentPrice: Type.Optional(Type.Integer({ description: 'PRICE_CHANGED: the unit price now' })),
    expectedPrice: Type.Optional(Type.Integer({ description: 'PRICE_CHANGED: the unit price the request expected' })),
  }),
]);

const RedemptionCreatedSchema = Type.Object({
  id: Type.String(),
  exchangeNo: Type.String(),
  goodsId: Type.Integer(),
  quantity: Type.Integer(),
  pointsSpent: Type.Integer(),
  available: Type.Integer(),
  status: Status,
});

const RedemptionSchema = Type.Object({
  id: Type.String(),
  exchangeNo: Type.String(),
  goodsId: Type.Integer(),
  quantity: Type.Integer(),
  pointsSpent: Type.Integer(),
  status: Status,
  createdAt: Type.String({ format: 'date-time' }),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/v1/redemptions',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['redemptions'],
        operationId: 'redeem',
        summary: 'Redeem goods for points (Idempotency-Key required; optional expectedPrice guards against a price change)',
        security: [{ bearer: [] }],
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ maxLength: 256 })) }),
        body: RedeemBodySchema,
        response: { 201: RedemptionCreatedSchema, ...errors(400, 401, 404), 409: RedeemConflictSchema, ...errors(422, 503) },
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const { goodsId, quantity, expectedPrice } = request.body;
      const { redemption, replayed } = await app.redemptions.redeem(request.userId, goodsId, quantity, key, expectedPrice);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(redemption);
    },
  );

  app.get(
    '/v1/me/redemptions',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['redemptions'],
        operationId: 'listMyRedemptions',
        summary: "The member's persisted redemptions, newest first",
        security: [{ bearer: [] }],
        querystring: PageQuerySchema,
        response: {
          200: Type.Object({ items: Type.Array(RedemptionSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errors(400, 401),
        },
      },
    },
    async (request) => app.redemptions.listOwn(request.userId, request.query.limit, request.query.cursor),
  );

  app.get(
    '/v1/redemptions/:id',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['redemptions'],
        operationId: 'getMyRedemption',
        summary: "One of the member's redemptions, live or persisted (another member's is 404)",
        security: [{ bearer: [] }],
        params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{32}$' }) }, { additionalProperties: false }),
        response: { 200: RedemptionSchema, ...errors(400, 401, 404) },
      },
    },
    async (request) => app.redemptions.getOwn(request.userId, request.params.id),
  );
};

export default routes;
