/**
 * Engagement configuration read from Postgres and cached in each process (refreshed with the earn
 * rules, every RULES_REFRESH_MS): the tier table, the multiplier campaigns, and the settings of
 * check-in and the daily login bonus. Scripts get what they need from here in ARGV; the op records
 * what was used.
 */
import type { Sql } from '../db/client.ts';

export interface Tier {
  position: number;
  name: string;
  minPoints: number;
  earnPerMille: number;
  pricePerMille: number;
}

export interface Campaign {
  id: number;
  name: string;
  bizTypes: string[];
  multiplierPerMille: number;
  startsAt: Date;
  endsAt: Date;
  notify: boolean;
}

export interface CheckinSettings {
  base: number;
  streakBonuses: Array<{ days: number; points: number }>;
  expiryDays: number;
}

export interface DailyLoginSettings {
  enabled: boolean;
  points: number;
  expiryDays: number;
}

export const DEFAULT_CHECKIN: CheckinSettings = {
  base: 10,
  streakBonuses: [
    { days: 7, points: 50 },
    { days: 30, points: 200 },
  ],
  expiryDays: 365,
};
export const DEFAULT_DAILY_LOGIN: DailyLoginSettings = { enabled: true, points: 10, expiryDays: 365 };

export class EngagementConfig {
  tiers: Tier[] = [{ position: 0, name: 'Regular', minPoints: 0, earnPerMille: 1000, pricePerMille: 1000 }];
  campaigns: Campaign[] = [];
  checkin: CheckinSettings = DEFAULT_CHECKIN;
  dailyLogin: DailyLoginSettings = DEFAULT_DAILY_LOGIN;
  private timer?: NodeJS.Timeout;

  constructor(private readonly sql: Sql) {}

  async refresh(): Promise<void> {
    const [tiers, campaigns, settings] = await Promise.all([
      this.sql<Tier[]>`
        SELECT position, name, min_points AS "minPoints", earn_per_mille AS "earnPerMille", price_per_mille AS "pricePerMille"
        FROM tiers ORDER BY position`,
      // campaigns still to come or running; ended ones never apply again
      this.sql<Campaign[]>`
        SELECT id, name, biz_types AS "bizTypes", multiplier_per_mille AS "multiplierPerMille", starts_at AS "startsAt",
               ends_at AS "endsAt", notify
        FROM campaigns WHERE ends_at > now() ORDER BY id`,
      this.sql<Array<{ key: string; value: unknown }>>`SELECT key, value FROM engagement_settings`,
    ]);
    if (tiers.length > 0) this.tiers = tiers;
    this.campaigns = campaigns;
    const byKey = new Map(settings.map((s) => [s.key, s.value]));
    this.checkin = (byKey.get('checkin') as CheckinSettings | undefined) ?? DEFAULT_CHECKIN;
    this.dailyLogin = (byKey.get('daily_login') as DailyLoginSettings | undefined) ?? DEFAULT_DAILY_LOGIN;
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => void this.refresh().catch(() => {}), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The highest campaign running at `ms` for this bizType, or none. */
  campaignFor(bizType: string, ms: number): Campaign | undefined {
    let best: Campaign | undefined;
    for (const c of this.campaigns) {
      if (c.startsAt.getTime() <= ms && ms < c.endsAt.getTime() && c.bizTypes.includes(bizType)) {
        if (!best || c.multiplierPerMille > best.multiplierPerMille) best = c;
      }
    }
    return best;
  }

  private tierJson?: { of: Tier[]; json: string };

  /** The tier table as lua/redeem-9.lua reads it: {min: [minPoints…], pm: [price per mille…]}. */
  tierPrices(): string {
    if (this.tierJson?.of !== this.tiers) {
      this.tierJson = { of: this.tiers, json: JSON.stringify({ min: this.tiers.map((t) => t.minPoints), pm: this.tiers.map((t) => t.pricePerMille) }) };
    }
    return this.tierJson.json;
  }

  tierAt(position: number): Tier {
    return this.tiers[Math.min(Math.max(position, 0), this.tiers.length - 1)];
  }

  /**
   * What the credit scripts need to multiply (lua/includes/credit.lua): the tier table, whether
   * the tier applies (rule earns only), the campaign (rule earns only), and whether the credit
   * counts toward the tier (everything but refunds and transfers received).
   */
  multipliers(bizType: string, o: { rule: boolean; lifetime: boolean }, ms = Date.now()): string {
    const campaign = o.rule ? this.campaignFor(bizType, ms) : undefined;
    return JSON.stringify({
      tiers: this.tiers.map((t) => t.minPoints),
      earn: this.tiers.map((t) => t.earnPerMille),
      applyTier: o.rule ? 1 : 0,
      campaign: campaign?.multiplierPerMille ?? 1000,
      lifetime: o.lifetime ? 1 : 0,
    });
  }
}
