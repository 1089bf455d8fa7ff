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
    '/v1/leaderboards/:period',
    {
      schema: {
        tags: ['leaderboards'],
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
