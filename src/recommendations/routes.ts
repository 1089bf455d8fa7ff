/**
 * GET /v1/me/recommendations: goods picked for the member from the model the recommend role
 * keeps in Redis (src/recommendations/service.ts); answered without Postgres.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../http/schemas.ts';
import { GoodsSchema } from '../goods/schemas.ts';
import { REASONS } from './scoring.ts';

export const MAX_LIMIT = 20;

const RecommendationsSchema = Type.Object({
  items: Type.Array(
    Type.Object({
      goods: GoodsSchema,
      score: Type.Number({
        description:
          'The hybrid score in [0, 1] (0.6 × collaborative + 0.4 × content, each relative to the best candidate); ' +
          'for a cold start the item’s 7-day redemptions relative to the top fitting item; 0 for items that only fill the list',
      }),
      reason: Type.Union(REASONS.map((r) => Type.Literal(r)), {
        description:
          'similar_members_redeemed: the collaborative part dominates; same_category_as_last: the content part dominates ' +
          'and the item shares the category of the last redeemed item; fits_your_points: the content part dominates in ' +
          'another category, or the item only fits the points window; popular: no history, most redeemed in 7 days',
      }),
    }),
    { maxItems: MAX_LIMIT },
  ),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/me/recommendations',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['goods'],
        operationId: 'recommendations',
        summary:
          "Goods for the member: in stock, on sale, priced 0.5×–1.5× of their available points, ranked by similar members' " +
          'redemptions and likeness to their own (from the model in Redis)',
        security: [{ bearer: [] }],
        querystring: Type.Object(
          { limit: Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: 5 }) },
          { additionalProperties: false },
        ),
        response: { 200: RecommendationsSchema, ...errors(400, 401) },
      },
    },
    async (request) => ({ items: await app.recommendations.forMember(request.userId, request.query.limit) }),
  );
};

export default routes;
