/**
 * Catalog services for the API, over the services plugin's goods, tiers, points and goods
 * campaign cache: search (app.goodsSearch), member prices (app.pricing), categories, goods
 * campaigns (admin).
 */
import fp from 'fastify-plugin';
import type { Deps } from '../deps.ts';
import { GoodsPricing } from '../goods/pricing.ts';
import { GoodsSearch } from '../goods/search.ts';
import { GoodsCampaignService } from './campaigns.ts';
import { CategoryService } from './categories.ts';

declare module 'fastify' {
  interface FastifyInstance {
    goodsSearch: GoodsSearch;
    pricing: GoodsPricing;
    categories: CategoryService;
    goodsCampaignAdmin: GoodsCampaignService;
  }
}

export default fp(
  async (app) => {
    const deps: Deps = { redis: app.redis, keys: app.keys, sql: app.sql, env: app.config };
    const pricing = new GoodsPricing(deps, app.goods, (userId) => app.tiers.pricePerMille(userId), app.goodsCampaigns);
    app.decorate('goodsSearch', new GoodsSearch(app.sql, app.goods));
    app.decorate('pricing', pricing);
    app.decorate('categories', new CategoryService(app.sql));
    app.decorate('goodsCampaignAdmin', new GoodsCampaignService(app.sql));
  },
  { name: 'catalog', dependencies: ['config', 'redis', 'db', 'services'] },
);
