/**
 * Business health: the gauges the alert rules read (deploy/prometheus/alerts.yml) and the verdict
 * of GET /health/business. The windowed figures (rates, active members, expiring points, bursts)
 * scan the ledger, so the `metrics` worker role computes them on a schedule and keeps the snapshot
 * in Redis; the API exports that snapshot and adds what is cheap to read live: the last
 * transaction (newest ledger row by primary key), drift and negative balances from the last
 * reconcile, and parked persist batches.
 *
 * Definitions (over persisted ledger rows, by their op time):
 * - redemption rate (1 h): members with a spend ÷ members with an earn in the last hour;
 * - expiry rate (30 d): points expired ÷ points issued in the last 30 days;
 * - active members (24 h): members with any ledger op in the last 24 hours;
 * - points expiring within 7 days: remaining points of lots whose expiry falls in the next 7 days;
 * - negative balances: point_accounts below zero (and Redis balances below zero, from reconcile);
 * - max redemptions by one member in 300 s: the largest count of spend ops of a single member;
 * - drift: drifting balances + point_accounts rows off their ledger + drifting stock, last reconcile.
 * A rate with nothing to divide by is null (exported as NaN: no data, no alert).
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { ReconcileSummary } from '../recovery/reconcile-task.ts';

export interface BusinessSnapshot {
  at: number;
  redemptionRate1h: number | null;
  expiryRate30d: number | null;
  activeMembers24h: number;
  pointsExpiring7d: number;
  negativeBalances: number;
  maxMemberRedemptions300s: number;
}

/** No persisted op for this long: a warning (a stopped pipeline, or nobody using the system). */
export const QUIET_WARNING_SECONDS = 600;

const ratio = (num: number, den: number) => (den > 0 ? num / den : null);

export async function computeBusiness(sql: Sql): Promise<BusinessSnapshot> {
  const at = Date.now();
  const [[hour], [month], [day], [expiring], [negative], [burst]] = await Promise.all([
    sql<Array<{ spenders: number; earners: number }>>`
      SELECT count(DISTINCT user_id) FILTER (WHERE kind = 'spend')::int AS spenders,
             count(DISTINCT user_id) FILTER (WHERE kind = 'earn')::int AS earners
      FROM ledger_entries WHERE created_at > now() - interval '1 hour'`,
    sql<Array<{ expired: string; issued: string }>>`
      SELECT coalesce(sum(-delta) FILTER (WHERE kind = 'expire'), 0)::text AS expired,
             coalesce(sum(delta) FILTER (WHERE kind = 'earn'), 0)::text AS issued
      FROM ledger_entries WHERE created_at > now() - interval '30 days'`,
    sql<Array<{ n: number }>>`
      SELECT count(DISTINCT user_id)::int AS n FROM ledger_entries WHERE created_at > now() - interval '24 hours'`,
    sql<Array<{ points: string }>>`
      SELECT coalesce(sum(remaining), 0)::text AS points FROM point_lots
      WHERE remaining > 0 AND expires_at > now() AND expires_at <= now() + interval '7 days'`,
    sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM point_accounts WHERE available < 0`,
    sql<Array<{ n: number }>>`
      SELECT coalesce(max(c), 0)::int AS n FROM (
        SELECT count(*) AS c FROM ledger_entries
        WHERE kind = 'spend' AND created_at > now() - interval '300 seconds' GROUP BY user_id) per_member`,
  ]);
  return {
    at,
    redemptionRate1h: ratio(hour.spenders, hour.earners),
    expiryRate30d: ratio(Number(month.expired), Number(month.issued)),
    activeMembers24h: day.n,
    pointsExpiring7d: Number(expiring.points),
    negativeBalances: negative.n,
    maxMemberRedemptions300s: burst.n,
  };
}

export async function storeBusiness(redis: RedisClient, keys: Keys, snapshot: BusinessSnapshot): Promise<void> {
  await redis.set(keys.businessSnapshot(), JSON.stringify(snapshot));
}

export async function readBusiness(redis: RedisClient, keys: Keys): Promise<BusinessSnapshot | null> {
  const raw = await redis.get(keys.businessSnapshot());
  return raw === null ? null : (JSON.parse(raw) as BusinessSnapshot);
}

export async function readReconcile(redis: RedisClient, keys: Keys): Promise<ReconcileSummary | null> {
  const raw = await redis.get(keys.reconcileReport());
  return raw === null ? null : (JSON.parse(raw) as ReconcileSummary);
}

/** Ms of the newest persisted op (by primary key: no scan), null when the ledger is empty. */
export async function lastTransactionAt(sql: Sql): Promise<number | null> {
  const [row] = await sql<Array<{ at: Date }>>`SELECT created_at AS at FROM ledger_entries ORDER BY id DESC LIMIT 1`;
  return row ? row.at.getTime() : null;
}

export function driftOf(r: ReconcileSummary | null): number {
  return r ? r.drifting + r.mirrorDrift + r.stockDrift : 0;
}

export interface HealthInputs {
  now: number;
  lastTransactionAt: number | null;
  reconcile: ReconcileSummary | null;
  snapshot: BusinessSnapshot | null;
  parkedBatches: number;
}

export type HealthReasonCode = 'NO_RECENT_TRANSACTIONS' | 'DRIFT' | 'NEGATIVE_BALANCES' | 'PARKED_BATCHES';

export interface HealthReason {
  code: HealthReasonCode;
  severity: 'warning' | 'critical';
  message: string;
}

export interface BusinessHealth {
  status: 'healthy' | 'warning' | 'critical';
  reasons: HealthReason[];
  checkedAt: string;
  secondsSinceLastTransaction: number | null;
  drift: number;
  negativeBalances: number;
  parkedBatches: number;
}

/** The verdict: quiet ledger → warning; drift, negative balances or parked batches → critical. */
export function assessHealth(i: HealthInputs): BusinessHealth {
  const since = i.lastTransactionAt === null ? null : Math.max(0, Math.floor((i.now - i.lastTransactionAt) / 1000));
  const drift = driftOf(i.reconcile);
  const negativeBalances = Math.max(i.reconcile?.negative ?? 0, i.snapshot?.negativeBalances ?? 0);
  const reasons: HealthReason[] = [];
  if (since === null || since >= QUIET_WARNING_SECONDS) {
    reasons.push({
      code: 'NO_RECENT_TRANSACTIONS',
      severity: 'warning',
      message: since === null ? 'No transaction has been persisted yet' : `No transaction persisted for ${since} s`,
    });
  }
  if (drift > 0) reasons.push({ code: 'DRIFT', severity: 'critical', message: `The last reconcile found ${drift} drifting record(s)` });
  if (negativeBalances > 0) {
    reasons.push({ code: 'NEGATIVE_BALANCES', severity: 'critical', message: `${negativeBalances} account(s) with a negative balance` });
  }
  if (i.parkedBatches > 0) {
    reasons.push({ code: 'PARKED_BATCHES', severity: 'critical', message: `${i.parkedBatches} persist batch(es) parked after their last attempt` });
  }
  const status = reasons.some((r) => r.severity === 'critical') ? 'critical' : reasons.length > 0 ? 'warning' : 'healthy';
  return {
    status,
    reasons,
    checkedAt: new Date(i.now).toISOString(),
    secondsSinceLastTransaction: since,
    drift,
    negativeBalances,
    parkedBatches: i.parkedBatches,
  };
}
