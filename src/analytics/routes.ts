/**
 * Analytics for operators (admin only): GET /v1/admin/analytics/overview and /daily, read from
 * the daily rollups the analytics worker role keeps (never from the ledger). Definitions:
 * docs/analytics.md.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import { errors } from '../http/schemas.ts';
import { AnalyticsService, DAILY_METRICS } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    analytics: AnalyticsService;
  }
}

export const analyticsPlugin = fp(
  async (app) => {
    app.decorate('analytics', new AnalyticsService(app.sql, app.config.BUSINESS_TIMEZONE));
  },
  { name: 'analytics', dependencies: ['config', 'db'] },
);

const Nullable = <T extends ReturnType<typeof Type.Number> | ReturnType<typeof Type.Integer> | ReturnType<typeof Type.String>>(t: T) =>
  Type.Union([t, Type.Null()]);
const Rate = Nullable(Type.Number({ minimum: 0, description: 'null when the denominator is 0' }));
const Day = Type.String({ format: 'date', description: 'A business day (BUSINESS_TIMEZONE), YYYY-MM-DD' });

const WindowQuery = {
  from: Type.Optional(Type.String({ format: 'date', description: 'First business day (default: 29 days before `to`)' })),
  to: Type.Optional(Type.String({ format: 'date', description: 'Last business day, included (default: today)' })),
};

const OverviewSchema = Type.Object({
  from: Day,
  to: Day,
  daysRolledUp: Type.Integer({ description: 'Days of the window the rollup has reached' }),
  lastDay: Nullable(Day),
  members: Type.Object({
    dauAverage: Nullable(Type.Number()),
    dauPeak: Nullable(Type.Integer()),
    mau: Type.Integer({ description: 'Members active in the 30 days ending on the last day' }),
    activeInWindow: Type.Integer(),
    newMembers: Type.Integer(),
  }),
  points: Type.Object({
    issued: Type.Integer(),
    spent: Type.Integer(),
    expired: Type.Integer(),
    refunded: Type.Integer(),
    outstanding: Type.Integer({ description: 'Points members hold at the end of the last day' }),
  }),
  redemptions: Type.Integer(),
  redemptionRate: Type.Object({ redeemers: Type.Integer(), earners: Type.Integer(), rate: Rate }),
  expiryRate: Type.Object({ days: Type.Integer(), expired: Type.Integer(), issued: Type.Integer(), rate: Rate }),
  repurchaseRate: Type.Object({ repeatRedeemers: Type.Integer(), redeemers: Type.Integer(), rate: Rate }),
  retention: Type.Array(Type.Object({ days: Type.Integer(), cohort: Type.Integer(), retained: Type.Integer(), rate: Rate })),
  firstRedemption: Type.Object({ members: Type.Integer(), averageDaysFromFirstEarn: Nullable(Type.Number()) }),
  taskCompletionRate: Type.Object({ started: Type.Integer(), completed: Type.Integer(), rate: Rate }),
  pushOpenRate: Type.Object({ pushes: Type.Integer(), opened: Type.Integer(), rate: Rate }),
  topGoods: Type.Array(
    Type.Object({ goodsId: Type.Integer(), name: Nullable(Type.String()), redemptions: Type.Integer(), quantity: Type.Integer(), points: Type.Integer() }),
  ),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/admin/analytics/overview',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['analytics'],
        operationId: 'getAnalyticsOverview',
        summary: 'Members, points, rates, retention and top goods over a window of business days',
        description:
          'Read from the daily rollups (the analytics worker role, every ANALYTICS_EVERY_MS); formulas in docs/analytics.md. ' +
          'A date that is not YYYY-MM-DD, `from` after `to` or a window over 3660 days is 400 VALIDATION_FAILED.',
        security: [{ bearer: [] }],
        querystring: Type.Object(WindowQuery, { additionalProperties: false }),
        response: { 200: OverviewSchema, ...errors(400, 401, 403) },
      },
    },
    async (request) => app.analytics.overview(app.analytics.window(request.query.from, request.query.to)),
  );

  app.get(
    '/v1/admin/analytics/daily',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['analytics'],
        operationId: 'getAnalyticsDaily',
        summary: 'One metric per business day over a window',
        description: 'One point per day the rollup has reached. Rates are null on days whose denominator is 0. Formulas in docs/analytics.md.',
        security: [{ bearer: [] }],
        querystring: Type.Object(
          { metric: Type.Union(DAILY_METRICS.map((m) => Type.Literal(m))), ...WindowQuery },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            metric: Type.String(),
            from: Day,
            to: Day,
            points: Type.Array(Type.Object({ day: Day, value: Nullable(Type.Number()) })),
          }),
          ...errors(400, 401, 403),
        },
      },
    },
    async (request) => app.analytics.daily(request.query.metric, app.analytics.window(request.query.from, request.query.to)),
  );
};

export default routes;
