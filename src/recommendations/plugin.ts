/**
 * Recommendations for the API (app.recommendations): the model reader over Redis and the live
 * reads that stay off Postgres (balance, tier, quotes).
 */
import fp from 'fastify-plugin';
import { ModelReader } from './model.ts';
import { RecommendationService } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    recommendations: RecommendationService;
  }
}

export default fp(
  async (app) => {
    app.decorate(
      'recommendations',
      new RecommendationService({
        model: new ModelReader(app.redis, app.keys),
        available: (userId) => app.points.loadedAvailable(userId),
        tierPerMille: (userId) => app.tiers.loadedPricePerMille(userId),
        lowestDiscount: () => app.goodsCampaigns.lowestRunning(Date.now()),
        quote: (userId, ids, tierPm) => app.pricing.quoteLoaded(userId, ids, tierPm),
      }),
    );
  },
  { name: 'recommendations', dependencies: ['redis', 'services', 'catalog'] },
);
