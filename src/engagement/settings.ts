/**
 * Admin edits of the engagement settings and the tier table (Postgres; every process's
 * EngagementConfig picks them up within RULES_REFRESH_MS, this one at once). Each change is
 * audited with its actor.
 */
import type { Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { CheckinSettings, DailyLoginSettings, EngagementConfig, Tier } from './config.ts';
import { recordAudit } from '../audit/log.ts';

export interface TierInput {
  name: string;
  minPoints: number;
  earnMultiplier: number;
  priceFactor: number;
}

/** Multipliers travel as per-mille integers (1.05 → 1050): exact in Lua and in Postgres. */
export const perMille = (x: number) => Math.round(x * 1000);

export function presentTier(t: Tier) {
  return { name: t.name, minPoints: t.minPoints, earnMultiplier: t.earnPerMille / 1000, priceFactor: t.pricePerMille / 1000 };
}

export function validateTiers(tiers: TierInput[]): void {
  if (tiers.length === 0 || tiers[0].minPoints !== 0) {
    throw new DomainError('VALIDATION_FAILED', 'the first tier must start at 0 points');
  }
  for (let i = 1; i < tiers.length; i++) {
    if (tiers[i].minPoints <= tiers[i - 1].minPoints) {
      throw new DomainError('VALIDATION_FAILED', 'tiers must be ordered by strictly increasing minPoints');
    }
  }
  if (new Set(tiers.map((t) => t.name.toLowerCase())).size !== tiers.length) {
    throw new DomainError('VALIDATION_FAILED', 'tier names must be unique');
  }
}

export async function replaceTiers(tx: Tx, actorId: number, tiers: TierInput[], config: EngagementConfig): Promise<void> {
  validateTiers(tiers);
  // members keep their tier position (tiers only go up): the table may grow, never shrink below one in use
  const [{ used }] = await tx<Array<{ used: number }>>`SELECT COALESCE(max(tier), 0)::int AS used FROM point_accounts`;
  if (tiers.length <= used) {
    throw new DomainError('VALIDATION_FAILED', `members hold tier ${used}: the table needs at least ${used + 1} tiers`);
  }
  await tx`DELETE FROM tiers`;
  for (const [position, t] of tiers.entries()) {
    await tx`INSERT INTO tiers (position, name, min_points, earn_per_mille, price_per_mille)
             VALUES (${position}, ${t.name}, ${t.minPoints}, ${perMille(t.earnMultiplier)}, ${perMille(t.priceFactor)})`;
  }
  await recordAudit(tx, { actorId, action: 'tiers.update', targetType: 'tiers', targetId: 'all', data: { tiers } });
  config.tiers = tiers.map((t, position) => ({
    position,
    name: t.name,
    minPoints: t.minPoints,
    earnPerMille: perMille(t.earnMultiplier),
    pricePerMille: perMille(t.priceFactor),
  }));
}

export async function saveSetting(
  tx: Tx,
  actorId: number,
  key: 'checkin' | 'daily_login',
  value: CheckinSettings | DailyLoginSettings,
): Promise<void> {
  await tx`INSERT INTO engagement_settings (key, value) VALUES (${key}, ${tx.json(value as never)})
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`;
  await recordAudit(tx, { actorId, action: `engagement.${key}.update`, targetType: 'engagement_settings', targetId: key, data: { ...value } });
}
