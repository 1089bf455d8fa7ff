/**
 * Catalog: public listing with live stock; admin create, patch and restock (each with an
 * Idempotency-Key: the Postgres write and the key commit together, Redis follows from the row).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AdminIdempotencyHeadersSchema, adminWrite } from '../admin/idempotency.ts';
import { errors, IdParamsSchema } from '../http/schemas.ts';

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) =>
  Type.Union([t, Type.Null()]);

const GoodsType = Type.Union([Type.Literal('physical'), Type.Literal('virtual'), Type.Literal('coupon')]);

export const GoodsSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  category: Type.String(),
  type: GoodsType,
  pointsPrice: Type.Integer(),
  stock: Type.Integer(),
  perUserLimit: Nullable(Type.Integer()),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  active: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
});

const goodsFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.String({ maxLength: 2000 }),
  category: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
  type: GoodsType,
  pointsPrice: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
  perUserLimit: Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  active: Type.Boolean(),
};

export const CreateGoodsBodySchema = Type.Object(
  {
    name: goodsFields.name,
    description: Type.Optional(goodsFields.description),
    category: Type.Optional(goodsFields.category),
    type: goodsFields.type,
    pointsPrice: goodsFields.pointsPrice,
    stock: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
    perUserLimit: Type.Optional(goodsFields.perUserLimit),
    startsAt: Type.Optional(goodsFields.startsAt),
    endsAt: Type.Optional(goodsFields.endsAt),
    active: Type.Optional(goodsFields.active),
  },
  { additionalProperties: false },
);

export const PatchGoodsBodySchema = Type.Partial(Type.Object(goodsFields), {
  additionalProperties: false,
  minProperties: 1,
});

export const RestockBodySchema = Type.Object(
  { quantity: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }) },
  { additionalProperties: false },
);

const ListQuerySchema = Type.Object(
  {
    category: Type.Optional(goodsFields.category),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
  },
  { additionalProperties: false },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = { onRequest: app.requireAdmin };

  app.get(
    '/v1/goods',
    {
      schema: {
        tags: ['goods'],
        querystring: ListQuerySchema,
        response: {
          200: Type.Object({ items: Type.Array(GoodsSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errors(400),
        },
      },
    },
    async (request) => {
      const { category, limit, cursor } = request.query;
      return app.goods.list({ category, limit, cursor: cursor ? Number(cursor) : undefined });
    },
  );

  app.get(
    '/v1/goods/:id',
    { schema: { tags: ['goods'], params: IdParamsSchema, response: { 200: GoodsSchema, ...errors(400, 404) } } },
    async (request) => app.goods.get(request.params.id),
  );

  app.post(
    '/v1/admin/goods',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        body: CreateGoodsBodySchema,
        response: { 201: GoodsSchema, ...errors(400, 401, 403, 422) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 201, {
        write: (tx) => app.goods.insert(tx, request.body, request.userId),
        after: ({ id }) => app.goods.sync(id),
      }),
  );

  app.patch(
    '/v1/admin/goods/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        params: IdParamsSchema,
        body: PatchGoodsBodySchema,
        response: { 200: GoodsSchema, ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: (tx) => app.goods.applyPatch(tx, request.params.id, request.body, request.userId),
        after: ({ id }) => app.goods.sync(id),
      }),
  );

  app.post(
    '/v1/admin/goods/:id/restock',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: AdminIdempotencyHeadersSchema,
        params: IdParamsSchema,
        body: RestockBodySchema,
        response: { 200: GoodsSchema, ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: (tx) => app.goods.addStock(tx, request.params.id, request.body.quantity, request.userId),
        after: ({ id }) => app.goods.sync(id),
      }),
  );
};

export default routes;
