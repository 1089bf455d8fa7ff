/**
 * Catalog: categories (public list, admin CRUD), goods campaigns (admin), the member's quick
 * options. Admin writes take an Idempotency-Key (src/admin/idempotency.ts) and are audited.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AdminIdempotencyHeadersSchema, adminWrite } from '../admin/idempotency.ts';
import { errors } from '../http/schemas.ts';
import { GOODS_TYPES } from '../goods/service.ts';
import { MIN_POINTS } from './quick-options.ts';

const Nullable = <T extends ReturnType<typeof Type.Integer> | ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const SerialId = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });
const SerialParamsSchema = Type.Object({ id: SerialId }, { additionalProperties: false });

const CategorySchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  slug: Type.String(),
  position: Type.Integer({ description: 'Display order, ascending (ties by id)' }),
  goodsCount: Type.Integer({ description: 'Goods of the category that are switched on' }),
});
const categoryFields = {
  name: Type.String({ minLength: 1, maxLength: 64, pattern: '\\S' }),
  slug: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', description: 'Lower-case words joined by hyphens; unique' }),
  position: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
};
const CreateCategorySchema = Type.Object(
  { name: categoryFields.name, slug: categoryFields.slug, position: Type.Optional(categoryFields.position) },
  { additionalProperties: false },
);
const PatchCategorySchema = Type.Partial(Type.Object(categoryFields), { additionalProperties: false, minProperties: 1 });

const CampaignStatus = Type.Union([Type.Literal('scheduled'), Type.Literal('running'), Type.Literal('ended')]);
const campaignFields = {
  name: Type.String({ maxLength: 200 }),
  goodsIds: Type.Array(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), { minItems: 1, maxItems: 500 }),
  categoryId: SerialId,
  discount: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, description: 'The factor paid: 0.85 = 15 % off (to the thousandth)' }),
  startsAt: Type.String({ format: 'date-time' }),
  endsAt: Type.String({ format: 'date-time' }),
};
const CreateCampaignSchema = Type.Object(
  {
    name: Type.Optional(campaignFields.name),
    goodsIds: Type.Optional(campaignFields.goodsIds),
    categoryId: Type.Optional(campaignFields.categoryId),
    discount: campaignFields.discount,
    startsAt: campaignFields.startsAt,
    endsAt: campaignFields.endsAt,
  },
  { additionalProperties: false, description: 'Exactly one of goodsIds and categoryId' },
);
const PatchCampaignSchema = Type.Partial(Type.Object(campaignFields), {
  additionalProperties: false,
  minProperties: 1,
  description: 'goodsIds or categoryId (not both) retargets the campaign',
});
const GoodsCampaignSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  goodsIds: Type.Union([Type.Array(Type.Integer()), Type.Null()]),
  categoryId: Nullable(Type.Integer()),
  discount: Type.Number(),
  startsAt: Type.String({ format: 'date-time' }),
  endsAt: Type.String({ format: 'date-time' }),
  status: CampaignStatus,
});

const QuickOptionSchema = Type.Object({
  goodsId: Type.Integer(),
  name: Type.String(),
  imageUrl: Nullable(Type.String()),
  type: Type.Union(GOODS_TYPES.map((t) => Type.Literal(t))),
  price: Type.Integer({ description: "The member's price of one unit now" }),
  stock: Type.Integer(),
  canRedeem: Type.Boolean({ description: 'Nothing stops the member redeeming one now (per-member and daily limits included)' }),
  redeemedLast7Days: Type.Integer({ description: 'Redemptions of the item by all members in the last 7 days' }),
  pointsAfter: Type.Integer({ description: 'Available points after redeeming one' }),
  expiringWarning: Type.Union([
    Type.Object({
      points: Type.Integer({ description: 'Points expiring within 7 days (at least the price)' }),
      message: Type.String(),
    }),
    Type.Null(),
  ]),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = { onRequest: app.requireAdmin };
  const bearer = [{ bearer: [] }];
  /** Goods campaigns price the next redemption in this process at once; others within RULES_REFRESH_MS. */
  const refreshed = async <T>(answer: T) => {
    await app.goodsCampaigns.refresh();
    return answer;
  };

  app.get(
    '/v1/categories',
    {
      schema: {
        tags: ['goods'],
        operationId: 'listCategories',
        summary: 'Catalog categories, in display order',
        security: [],
        response: { 200: Type.Object({ items: Type.Array(CategorySchema) }) },
      },
    },
    async () => ({ items: await app.categories.list() }),
  );

  app.get(
    '/v1/me/quick-options',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['goods'],
        operationId: 'quickOptions',
        summary: `Up to 3 goods for 0.3×–1.0× of the member's available points, nearest 0.7× first (none below ${MIN_POINTS} points)`,
        security: bearer,
        response: {
          200: Type.Object({
            available: Type.Integer(),
            minPoints: Type.Integer({ description: `Below this many available points the list is empty (${MIN_POINTS})` }),
            items: Type.Array(QuickOptionSchema, { maxItems: 3 }),
          }),
          ...errors(401, 404, 503),
        },
      },
    },
    async (request) => app.quickOptions.forMember(request.userId),
  );

  app.get(
    '/v1/admin/categories',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'adminListCategories',
        summary: 'Every category, in display order',
        security: bearer,
        response: { 200: Type.Object({ items: Type.Array(CategorySchema) }), ...errors(401, 403) },
      },
    },
    async () => ({ items: await app.categories.list() }),
  );

  app.get(
    '/v1/admin/categories/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'getCategory',
        summary: 'One category',
        security: bearer,
        params: SerialParamsSchema,
        response: { 200: CategorySchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => app.categories.get(request.params.id),
  );

  app.post(
    '/v1/admin/categories',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'createCategory',
        summary: 'Create a category (its slug must be free)',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        body: CreateCategorySchema,
        response: { 201: CategorySchema, ...errors(400, 401, 403, 409, 422, 503) },
      },
    },
    async (request, reply) => adminWrite(request, reply, 201, { write: (tx) => app.categories.create(tx, request.userId, request.body) }),
  );

  app.patch(
    '/v1/admin/categories/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'updateCategory',
        summary: 'Rename, re-slug or reorder a category',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        params: SerialParamsSchema,
        body: PatchCategorySchema,
        response: { 200: CategorySchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, { write: (tx) => app.categories.update(tx, request.userId, request.params.id, request.body) }),
  );

  app.delete(
    '/v1/admin/categories/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'deleteCategory',
        summary: 'Delete a category no goods or goods campaign points at (409 CATEGORY_IN_USE otherwise)',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        params: SerialParamsSchema,
        response: { 200: Type.Object({ id: Type.Integer(), deleted: Type.Literal(true) }), ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => adminWrite(request, reply, 200, { write: (tx) => app.categories.remove(tx, request.userId, request.params.id) }),
  );

  app.post(
    '/v1/admin/goods-campaigns',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'createGoodsCampaign',
        summary: 'Discount goods with dynamic pricing (listed, or a whole category) for a window; the lowest factor running wins',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        body: CreateCampaignSchema,
        response: { 201: GoodsCampaignSchema, ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 201, {
        write: (tx) => app.goodsCampaignAdmin.create(tx, request.userId, request.body),
        after: refreshed,
      }),
  );

  app.get(
    '/v1/admin/goods-campaigns',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'listGoodsCampaigns',
        summary: 'Goods campaigns, newest first',
        security: bearer,
        querystring: Type.Object(
          {
            status: Type.Optional(CampaignStatus),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,10}$' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(GoodsCampaignSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errors(400, 401, 403),
        },
      },
    },
    async (request) =>
      app.goodsCampaignAdmin.list({
        status: request.query.status,
        limit: request.query.limit,
        cursor: request.query.cursor ? Number(request.query.cursor) : undefined,
      }),
  );

  app.get(
    '/v1/admin/goods-campaigns/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'getGoodsCampaign',
        summary: 'One goods campaign',
        security: bearer,
        params: SerialParamsSchema,
        response: { 200: GoodsCampaignSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => app.goodsCampaignAdmin.get(request.params.id),
  );

  app.patch(
    '/v1/admin/goods-campaigns/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'updateGoodsCampaign',
        summary: 'Change a goods campaign (name, target, discount, window); ending it early: endsAt now',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        params: SerialParamsSchema,
        body: PatchCampaignSchema,
        response: { 200: GoodsCampaignSchema, ...errors(400, 401, 403, 404, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: (tx) => app.goodsCampaignAdmin.update(tx, request.userId, request.params.id, request.body),
        after: refreshed,
      }),
  );
};

export default routes;
