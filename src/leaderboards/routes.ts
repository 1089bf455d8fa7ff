/**
 * Leaderboards: public top lists per period, and the caller's own rank.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../http/schemas.ts';

const PeriodParamsSchema = Type.Object(
  {
    period: Type.Union([Type.Literal('daily'), Type.Literal('weekly'), Type.Literal('monthly'), Type.Literal('all')]),
  },
  { additionalProperties: false },
);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/leaderboards/:period/me/history',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['leaderboards'],
        operationId: 'getMyLeaderboardHistory',
        summary: "The member's rank and points on each board of the last `days` business days, newest first",
        security: [{ bearer: [] }],
        params: Type.Object(
          { period: Type.Union([Type.Literal('daily'), Type.Literal('weekly'), Type.Literal('monthly')]) },
          { additionalProperties: false },
        ),
        querystring: Type.Object({ days: Type.Integer({ minimum: 1, maximum: 31, default: 7 }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            period: Type.String(),
            items: Type.Array(
              Type.Object({
                bucket: Type.String({ description: 'daily 20261122, weekly 2026W47 (ISO week), monthly 202611 (BUSINESS_TIMEZONE)' }),
                rank: Type.Union([Type.Integer(), Type.Null()]),
                points: Type.Integer(),
                members: Type.Integer({ description: 'members on that board' }),
              }),
            ),
          }),
          ...errors(400, 401),
        },
      },
    },
    async (request) => app.leaderboards.history(request.params.period, request.userId, request.query.days),
  );

  app.get(
    '/v1/leaderboards/:period',
    {
      schema: {
        tags: ['leaderboards'],
        operationId: 'getLeaderboard',
        summary: 'The top members of a period by points earned',
        security: [],
        params: PeriodParamsSchema,
        querystring: Type.Object(
          { limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            period: Type.String(),
            items: Type.Array(
              Type.Object({ rank: Type.Integer(), userId: Type.Integer(), username: Type.String(), points: Type.Integer() }),
            ),
          }),
          ...errors(400),
        },
      },
    },
    async (request) => app.leaderboards.top(request.params.period, request.query.limit),
  );

  app.get(
    '/v1/leaderboards/:period/me',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['leaderboards'],
        operationId: 'getMyLeaderboardRank',
        summary: "The member's rank and points on the current board of a period",
        security: [{ bearer: [] }],
        params: PeriodParamsSchema,
        response: {
          200: Type.Object({
            rank: Type.Union([Type.Integer(), Type.Null()]),
            points: Type.Integer(),
            topPercent: Type.Union([Type.Number(), Type.Null()]),
          }),
          ...errors(400, 401),
        },
      },
    },
    async (request) => app.leaderboards.me(request.params.period, request.userId),
  );
};

export default routes;
