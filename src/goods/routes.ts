/**
 * Catalog goods: public search and listing, the hot list (from Redis), one item (with the
 * caller's price when a token comes with it); admin create, patch and restock (each with an
 * Idempotency-Key: the Postgres write and the key commit together, Redis follows from the row).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdminIdempotencyHeadersSchema, adminWrite } from '../admin/idempotency.ts';
import { errors, IdParamsSchema } from '../http/schemas.ts';
import { HOT_GOODS_KEPT, hotGoods } from './hot.ts';
import {
  CreateGoodsBodySchema,
  GoodsPageSchema,
  GoodsSchema,
  HotGoodsSchema,
  PatchGoodsBodySchema,
  RestockBodySchema,
  SearchQuerySchema,
} from './schemas.ts';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = { onRequest: app.requireAdmin };
  const bearer = [{ bearer: [] }];
  /** A token is optional here; one that is sent must be valid. */
  const optionalMember = async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.headers.authorization !== undefined) await app.authenticate(request, reply);
  };
  /** After a write that may move goods between categories, this process's campaign cache follows at once. */
  const refreshed = async <T>(answer: T) => {
    await app.goodsCampaigns.refresh();
    return answer;
  };

  // the list and the item load goods Redis lacks (their live stock) from Postgres: a gated write,
  // hence 503 while the write gate is closed
  app.get(
    '/v1/goods',
    {
      schema: {
        tags: ['goods'],
        operationId: 'searchGoods',
        summary: 'Search and list goods: text, category, tag, list price range, in stock; sorted new, price, -price or popular',
        security: [],
        querystring: SearchQuerySchema,
        response: { 200: GoodsPageSchema, ...errors(400, 503) },
      },
    },
    async (request) => app.goodsSearch.search(request.query),
  );

  app.get(
    '/v1/goods/hot',
    {
      schema: {
        tags: ['goods'],
        operationId: 'hotGoods',
        summary: 'The most redeemed goods of the last 7 days (from Redis; refreshed by the catalog worker role)',
        security: [],
        querystring: Type.Object(
          { limit: Type.Integer({ minimum: 1, maximum: HOT_GOODS_KEPT, default: 10 }) },
          { additionalProperties: false },
        ),
        response: { 200: HotGoodsSchema, ...errors(400) },
      },
    },
    async (request) => hotGoods(app.redis, app.keys, request.query.limit),
  );

  app.get(
    '/v1/goods/:id',
    {
      onRequest: optionalMember,
      schema: {
        tags: ['goods'],
        operationId: 'getGoods',
        summary: "One goods item; with a bearer token, the caller's price now and how it is made",
        security: [{}, { bearer: [] }],
        params: IdParamsSchema,
        response: { 200: GoodsSchema, ...errors(400, 401, 404, 503) },
      },
    },
    async (request) => {
      const goods = await app.goods.get(request.params.id);
      if (!request.userId) return goods;
      const q = await app.pricing.quote(request.userId, goods.id);
      const { base, tierFactor, campaignDiscount, stockFactor, price } = q;
      return { ...goods, stock: q.stock, price, pricing: { base, tierFactor, campaignDiscount, stockFactor, price } };
    },
  );

  app.post(
    '/v1/admin/goods',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'createGoods',
        summary: 'Create a goods item (physical, virtual, coupon or vip) and put it on sale',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        body: CreateGoodsBodySchema,
        response: { 201: GoodsSchema, ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 201, {
        write: (tx) => app.goods.insert(tx, request.body, request.userId),
        after: async ({ id }) => refreshed(await app.goods.sync(id)),
      }),
  );

  app.patch(
    '/v1/admin/goods/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'updateGoods',
        summary: 'Change a goods item (anything but its stock: restock for that)',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        params: IdParamsSchema,
        body: PatchGoodsBodySchema,
        response: { 200: GoodsSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: (tx) => app.goods.applyPatch(tx, request.params.id, request.body, request.userId),
        after: async ({ id }) => refreshed(await app.goods.sync(id)),
      }),
  );

  app.post(
    '/v1/admin/goods/:id/restock',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'restockGoods',
        summary: 'Add units to a goods item',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        params: IdParamsSchema,
        body: RestockBodySchema,
        response: { 200: GoodsSchema, ...errors(400, 401, 403, 404, 422, 503) },
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
