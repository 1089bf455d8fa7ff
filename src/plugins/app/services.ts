/**
 * Domain services over the external plugins: auth, rules, points, goods, redemptions,
 * leaderboards. Routes call these; they never touch Redis or Postgres directly.
 */
import fp from 'fastify-plugin';
import { AuthService } from '../../auth/service.ts';
import type { Deps } from '../../deps.ts';
import { GoodsService } from '../../goods/service.ts';
import { LeaderboardService } from '../../leaderboards/service.ts';
import { RulesCache } from '../../points/rules.ts';
import { EngagementConfig } from '../../engagement/config.ts';
import { CheckinService } from '../../engagement/checkin.ts';
import { TierService } from '../../engagement/tiers.ts';
import { CampaignService } from '../../engagement/campaigns.ts';
import { DailyLoginBonus } from '../../engagement/daily-login.ts';
import { PointsService } from '../../points/service.ts';
import { RedemptionService } from '../../redemptions/service.ts';
import { HoldService } from '../../points/holds.ts';
import { RiskRules } from '../../risk/rules.ts';
import { GoodsCampaignCache } from '../../catalog/campaigns.ts';

declare module 'fastify' {
  interface FastifyInstance {
    authService: AuthService;
    rules: RulesCache;
    engagement: EngagementConfig;
    checkins: CheckinService;
    tiers: TierService;
    campaigns: CampaignService;
    dailyLogin: DailyLoginBonus;
    points: PointsService;
    holds: HoldService;
    riskRules: RiskRules;
    goods: GoodsService;
    redemptions: RedemptionService;
    goodsCampaigns: GoodsCampaignCache;
    leaderboards: LeaderboardService;
  }
}

export default fp(
  async (app) => {
    const deps: Deps = { redis: app.redis, keys: app.keys, sql: app.sql, env: app.config };
    const rules = new RulesCache(app.sql);
    await rules.refresh();
    rules.start(app.config.RULES_REFRESH_MS);
    const engagement = new EngagementConfig(app.sql);
    await engagement.refresh();
    engagement.start(app.config.RULES_REFRESH_MS);
    const goodsCampaigns = new GoodsCampaignCache(app.sql);
    await goodsCampaigns.refresh();
    goodsCampaigns.start(app.config.RULES_REFRESH_MS);
    app.addHook('onClose', async () => {
      rules.stop();
      engagement.stop();
      goodsCampaigns.stop();
    });
    const riskRules = new RiskRules(app.sql);
    await riskRules.refresh();
    riskRules.start(app.config.RULES_REFRESH_MS);
    app.addHook('onClose', async () => riskRules.stop());
    app.decorate('riskRules', riskRules);
    const points = new PointsService(deps, rules, engagement, riskRules);
    const goods = new GoodsService(deps);
    app.decorate('authService', new AuthService(app.sql));
    app.decorate('rules', rules);
    app.decorate('engagement', engagement);
    app.decorate('points', points);
    app.decorate('holds', new HoldService(deps, points));
    app.decorate('goods', goods);
    const tiers = new TierService(deps, points, engagement);
    app.decorate('goodsCampaigns', goodsCampaigns);
    app.decorate(
      'redemptions',
      new RedemptionService(
        deps,
        points,
        goods,
        (userId) => tiers.pricePerMille(userId),
        (goodsId, ms) => goodsCampaigns.discountFor(goodsId, ms),
        () => engagement.tierPrices(),
      ),
    );
    app.decorate('leaderboards', new LeaderboardService(deps));
    app.decorate('checkins', new CheckinService(deps, points, engagement));
    app.decorate('tiers', tiers);
    app.decorate('campaigns', new CampaignService(app.sql, engagement));
    app.decorate('dailyLogin', new DailyLoginBonus(points, engagement, app.config.BUSINESS_TIMEZONE));
  },
  { name: 'services', dependencies: ['config', 'redis', 'db'] },
);
