/**
 * A member's tier: the position in the tier table their lifetime earned points reached (refunds
 * and transfers received do not count); tiers only go up. Read from the member's slot, where the
 * credit scripts keep it (lua/includes/credit.lua).
 */
import type { Deps } from '../deps.ts';
import type { PointsService } from '../points/service.ts';
import type { EngagementConfig } from './config.ts';

export interface MemberTier {
  tier: string;
  position: number;
  earnMultiplier: number;
  priceFactor: number;
  lifetimeEarned: number;
  next: { tier: string; needPoints: number; progressPercent: number } | null;
}

export class TierService {
  constructor(
    private readonly deps: Deps,
    private readonly points: PointsService,
    private readonly config: EngagementConfig,
  ) {}

  /** The member's tier position and lifetime earned, loading the account if Redis has none. */
  async standing(userId: number): Promise<{ position: number; earned: number }> {
    const { redis, keys } = this.deps;
    let [earned, tier] = await redis.hmget(keys.account(userId), 'earned', 'tier');
    if (earned === null && (await this.points.hydrate(userId))) [earned, tier] = await redis.hmget(keys.account(userId), 'earned', 'tier');
    const lifetime = Number(earned ?? 0);
    const reached = this.config.tiers.filter((t) => t.minPoints <= lifetime).length - 1;
    return { position: Math.max(Number(tier ?? 0), reached), earned: lifetime };
  }

  /**
   * The price factor (per mille) from Redis alone, or null when Redis holds no account for the
   * member (nothing is loaded from Postgres: for reads that must stay off it).
   */
  async loadedPricePerMille(userId: number): Promise<number | null> {
    const { redis, keys } = this.deps;
    const [earned, tier] = await redis.hmget(keys.account(userId), 'earned', 'tier');
    if (earned === null && tier === null) return null;
    const reached = this.config.tiers.filter((t) => t.minPoints <= Number(earned ?? 0)).length - 1;
    return this.config.tierAt(Math.max(Number(tier ?? 0), reached)).pricePerMille;
  }

  /** The price factor (per mille) a member's redemptions are priced at right now. */
  async pricePerMille(userId: number): Promise<number> {
    return this.config.tierAt((await this.standing(userId)).position).pricePerMille;
  }

  async describe(userId: number): Promise<MemberTier> {
    return this.describeStanding(await this.standing(userId));
  }

  /** The tier a standing reaches (a persisted one too, when Redis cannot answer). */
  describeStanding(standing: { position: number; earned: number }): MemberTier {
    const earned = standing.earned;
    const reached = this.config.tiers.filter((t) => t.minPoints <= earned).length - 1;
    const position = Math.max(standing.position, reached);
    const t = this.config.tierAt(position);
    const above = this.config.tiers[position + 1];
    return {
      tier: t.name,
      position,
      earnMultiplier: t.earnPerMille / 1000,
      priceFactor: t.pricePerMille / 1000,
      lifetimeEarned: earned,
      next: above
        ? {
            tier: above.name,
            needPoints: Math.max(0, above.minPoints - earned),
            progressPercent: Math.min(100, Math.floor(((earned - t.minPoints) / (above.minPoints - t.minPoints)) * 10000) / 100),
          }
        : null,
    };
  }
}
