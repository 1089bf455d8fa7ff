/**
 * Engagement: check-in (POST/GET /v1/me/checkins), the member's tier (GET /v1/me/tier), running
 * campaigns (GET /v1/campaigns/active); admin: check-in and daily-login settings, the tier table,
 * multiplier campaigns.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AdminIdempotencyHeadersSchema, adminWrite } from '../admin/idempotency.ts';
import { ErrorSchema, errors, IdParamsSchema } from '../http/schemas.ts';
import { presentTier, replaceTiers, saveSetting } from './settings.ts';
import { businessDate } from './business-day.ts';
import { requestContext } from '../risk/rules.ts';

const CheckinSchema = Type.Object({
  day: Type.String({ format: 'date', description: 'The business day (BUSINESS_TIMEZONE)' }),
  streak: Type.Integer({ description: 'Consecutive days checked in, today included' }),
  points: Type.Integer({ description: 'Points credited (streak points × tier × campaign, floored)' }),
  available: Type.Integer(),
});

const AlreadyCheckedInSchema = Type.Composite([ErrorSchema, Type.Object({ today: CheckinSchema })]);

const CheckinSettingsSchema = Type.Object(
  {
    base: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    streakBonuses: Type.Array(
      Type.Object({ days: Type.Integer({ minimum: 2, maximum: 3650 }), points: Type.Integer({ minimum: 1, maximum: 1_000_000 }) }, { additionalProperties: false }),
      { maxItems: 50 },
    ),
    expiryDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500 })),
  },
  { additionalProperties: false },
);

const DailyLoginSchema = Type.Object(
  {
    enabled: Type.Boolean(),
    points: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    expiryDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500 })),
  },
  { additionalProperties: false },
);

const TierSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 32 }),
    minPoints: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    earnMultiplier: Type.Number({ minimum: 1, maximum: 10, description: 'On rule earns; 1.05 = +5 %' }),
    priceFactor: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'On redemption prices; 0.95 = −5 %' }),
  },
  { additionalProperties: false },
);

export const MemberTierSchema = Type.Object({
  tier: Type.String(),
  position: Type.Integer(),
  earnMultiplier: Type.Number(),
  priceFactor: Type.Number(),
  lifetimeEarned: Type.Integer(),
  next: Type.Union([Type.Object({ tier: Type.String(), needPoints: Type.Integer(), progressPercent: Type.Number() }), Type.Null()]),
});

const BizTypes = Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9_.-]+$' }), { minItems: 1, maxItems: 20 });
const campaignFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  bizTypes: BizTypes,
  multiplier: Type.Number({ exclusiveMinimum: 1, maximum: 10 }),
  startsAt: Type.String({ format: 'date-time' }),
  endsAt: Type.String({ format: 'date-time' }),
  notify: Type.Boolean(),
};
const CreateCampaignSchema = Type.Object(
  { ...campaignFields, notify: Type.Optional(campaignFields.notify) },
  { additionalProperties: false },
);
const PatchCampaignSchema = Type.Partial(Type.Object(campaignFields), { additionalProperties: false, minProperties: 1 });
const Status = Type.Union([Type.Literal('scheduled'), Type.Literal('running'), Type.Literal('ended')]);
const CampaignSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  bizTypes: Type.Array(Type.String()),
  multiplier: Type.Number(),
  startsAt: Type.String({ format: 'date-time' }),
  endsAt: Type.String({ format: 'date-time' }),
  notify: Type.Boolean(),
  notifiedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  status: Status,
});
const ActiveCampaignSchema = Type.Omit(CampaignSchema, ['notify', 'notifiedAt']);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const member = { onRequest: app.authenticate };
  const admin = { onRequest: app.requireAdmin };
  const bearer = [{ bearer: [] }];

  app.post(
    '/v1/me/checkins',
    {
      ...member,
      schema: {
        tags: ['engagement'],
        operationId: 'checkIn',
        summary: "Check in for today's business day (once a day; points by streak)",
        security: bearer,
        response: { 201: CheckinSchema, 409: AlreadyCheckedInSchema, ...errors(401, 403, 429, 503) },
      },
    },
    async (request, reply) => reply.code(201).send(await app.checkins.checkIn(request.userId, undefined, requestContext(request))),
  );

  app.get(
    '/v1/me/checkins',
    {
      ...member,
      schema: {
        tags: ['engagement'],
        operationId: 'listCheckins',
        summary: "The member's check-in days of a month, the current and longest streak",
        security: bearer,
        querystring: Type.Object(
          { month: Type.Optional(Type.String({ pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$', description: 'YYYY-MM (default: this month)' })) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            month: Type.String(),
            days: Type.Array(Type.String({ format: 'date' })),
            streak: Type.Integer(),
            longestStreak: Type.Integer(),
            checkedInToday: Type.Boolean(),
          }),
          ...errors(400, 401),
        },
      },
    },
    async (request) =>
      app.checkins.month(request.userId, request.query.month ?? businessDate(app.config.BUSINESS_TIMEZONE, Date.now()).slice(0, 7)),
  );

  app.get(
    '/v1/me/tier',
    {
      ...member,
      schema: {
        tags: ['engagement'],
        operationId: 'getMyTier',
        summary: "The member's tier, its multipliers, and how far the next one is",
        security: bearer,
        response: { 200: MemberTierSchema, ...errors(401, 404, 503) },
      },
    },
    async (request) => app.tiers.describe(request.userId),
  );

  app.get(
    '/v1/campaigns/active',
    {
      schema: {
        tags: ['engagement'],
        operationId: 'listActiveCampaigns',
        summary: 'Multiplier campaigns running now',
        security: [],
        response: { 200: Type.Object({ items: Type.Array(ActiveCampaignSchema) }) },
      },
    },
    async () => ({ items: app.campaigns.active() }),
  );

  // ---- admin

  app.get(
    '/v1/admin/engagement/checkin',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'getCheckinSettings',
        summary: 'Check-in points: the base and the streak bonuses (the longest streak reached replaces the base)',
        security: bearer,
        response: { 200: CheckinSettingsSchema, ...errors(401, 403) },
      },
    },
    async () => app.engagement.checkin,
  );

  app.put(
    '/v1/admin/engagement/checkin',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'putCheckinSettings',
        summary: 'Replace the check-in points (every API process applies them within RULES_REFRESH_MS)',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        body: CheckinSettingsSchema,
        response: { 200: CheckinSettingsSchema, ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: async (tx) => {
          const value = { ...request.body, expiryDays: request.body.expiryDays ?? 365 };
          await saveSetting(tx, request.userId, 'checkin', value);
          return value;
        },
        after: async (value) => {
          app.engagement.checkin = value;
          return value;
        },
      }),
  );

  app.get(
    '/v1/admin/engagement/daily-login',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'getDailyLoginSettings',
        summary: 'The daily login bonus',
        security: bearer,
        response: { 200: DailyLoginSchema, ...errors(401, 403) },
      },
    },
    async () => app.engagement.dailyLogin,
  );

  app.put(
    '/v1/admin/engagement/daily-login',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'putDailyLoginSettings',
        summary: 'Set the daily login bonus (points, on/off)',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        body: DailyLoginSchema,
        response: { 200: DailyLoginSchema, ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: async (tx) => {
          const value = { ...request.body, expiryDays: request.body.expiryDays ?? 365 };
          await saveSetting(tx, request.userId, 'daily_login', value);
          return value;
        },
        after: async (value) => {
          app.engagement.dailyLogin = value;
          return value;
        },
      }),
  );

  app.get(
    '/v1/admin/tiers',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'getTiers',
        summary: 'The tier table, by lifetime earned points',
        security: bearer,
        response: { 200: Type.Object({ tiers: Type.Array(TierSchema) }), ...errors(401, 403) },
      },
    },
    async () => ({ tiers: app.engagement.tiers.map(presentTier) }),
  );

  app.put(
    '/v1/admin/tiers',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'putTiers',
        summary: 'Replace the tier table (first tier at 0; minPoints strictly increasing; never fewer tiers than members hold)',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        body: Type.Object({ tiers: Type.Array(TierSchema, { minItems: 1, maxItems: 20 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ tiers: Type.Array(TierSchema) }), ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: async (tx) => {
          await replaceTiers(tx, request.userId, request.body.tiers, app.engagement);
          return { tiers: request.body.tiers };
        },
      }),
  );

  app.post(
    '/v1/admin/campaigns',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'createCampaign',
        summary: 'Create a multiplier campaign (1 < multiplier ≤ 10) for some bizTypes and a window',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        body: CreateCampaignSchema,
        response: { 201: CampaignSchema, ...errors(400, 401, 403, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 201, {
        write: (tx) => app.campaigns.create(tx, request.userId, request.body),
        after: async (view) => {
          await app.engagement.refresh();
          return view;
        },
      }),
  );

  app.get(
    '/v1/admin/campaigns',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'listCampaigns',
        summary: 'Campaigns, newest first',
        security: bearer,
        querystring: Type.Object(
          {
            status: Type.Optional(Status),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(CampaignSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errors(400, 401, 403),
        },
      },
    },
    async (request) =>
      app.campaigns.list({ status: request.query.status, limit: request.query.limit, cursor: request.query.cursor ? Number(request.query.cursor) : undefined }),
  );

  app.get(
    '/v1/admin/campaigns/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'getCampaign',
        summary: 'One campaign',
        security: bearer,
        params: IdParamsSchema,
        response: { 200: CampaignSchema, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => app.campaigns.get(request.params.id),
  );

  app.patch(
    '/v1/admin/campaigns/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        operationId: 'updateCampaign',
        summary: 'Change a campaign (its name, bizTypes, multiplier, window, notify)',
        security: bearer,
        headers: AdminIdempotencyHeadersSchema,
        params: IdParamsSchema,
        body: PatchCampaignSchema,
        response: { 200: CampaignSchema, ...errors(400, 401, 403, 404, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, {
        write: (tx) => app.campaigns.update(tx, request.userId, request.params.id, request.body),
        after: async (view) => {
          await app.engagement.refresh();
          return view;
        },
      }),
  );
};

export default routes;
