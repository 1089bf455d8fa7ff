/**
 * Catalog services for the API, over the services plugin's goods, tiers, points and goods
 * campaign cache: search (app.goodsSearch), member prices (app.pricing), categories, goods
 * campaigns (admin), quick options.
 */
import fp from 'fastify-plugin';
import type { Deps } from '../deps.ts';
import { GoodsPricing } from '../goods/pricing.ts';
import { GoodsSearch } from '../goods/search.ts';
import { GoodsCampaignService } from './campaigns.ts';
import { CategoryService } from './categories.ts';
import { QuickOptions } from './quick-options.ts';

declare module 'fastify' {
  interface FastifyInstance {
    goodsSearch: GoodsSearch;
    pricing: GoodsPricing;
    categories: CategoryService;
    goodsCampaignAdmin: GoodsCampaignService;
    quickOptions: QuickOptions;
  }
}

export default fp(
  async (app) => {
    const deps: Deps = { redis: app.redis, keys: app.keys, sql: app.sql, env: app.config };
    const tierPerMille = (userId: number) => app.tiers.pricePerMille(userId);
    const pricing = new GoodsPricing(deps, app.goods, tierPerMille, app.goodsCampaigns);
    app.decorate('goodsSearch', new GoodsSearch(app.sql, app.goods));
    app.decorate('pricing', pricing);
    app.decorate('categories', new CategoryService(app.sql));
    app.decorate('goodsCampaignAdmin', new GoodsCampaignService(app.sql));
    app.decorate(
      'quickOptions',
      new QuickOptions(
        app.sql,
        pricing,
        (userId, horizonMs) => app.points.balance(userId, horizonMs),
        tierPerMille,
        () => app.goodsCampaigns.lowestRunning(Date.now()),
      ),
    );
  },
  { name: 'catalog', dependencies: ['config', 'redis', 'db', 'services'] },
);
