/**
 * The risk rules decided in Postgres, next to the writes they watch (the in-script rules are in
 * lua/includes/risk.lua): registrations from one IP, devices shared by accounts, transfers fanning
 * in to one receiver. Each hit records a risk event and flags (or freezes, if so configured) the
 * member; a freeze also reaches the member's slot through the caller (RiskService.enforce).
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql, Tx } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { Op } from '../points/op.ts';
import { recordRiskEvent } from './events.ts';
import type { RequestContext, RiskRules } from './rules.ts';

export interface Hit {
  userId: number;
  rule: string;
  action: 'flag' | 'freeze';
}

/**
 * IP_MULTI_ACCOUNT, inside the registration's transaction: the account that takes its IP over the
 * threshold within the window is flagged, with the other accounts as evidence (one hit per
 * registration beyond it). The IP's rows are locked in order so concurrent registrations count
 * each other.
 */
export async function assessRegistration(tx: Tx, userId: number, ctx: RequestContext, rules: RiskRules): Promise<Hit | null> {
  if (!ctx.ip) return null;
  await tx`UPDATE users SET signup_ip = ${ctx.ip} WHERE id = ${userId}`;
  const rule = rules.get('IP_MULTI_ACCOUNT');
  if (!rule.enabled) return null;
  await tx`SELECT pg_advisory_xact_lock(hashtext('signup-ip:' || ${ctx.ip}))`;
  const others = await tx<Array<{ id: number }>>`
    SELECT id FROM users WHERE signup_ip = ${ctx.ip} AND created_at > now() - make_interval(secs => ${rule.windowSeconds}) AND id <> ${userId}
    ORDER BY id`;
  if (others.length + 1 <= rule.threshold) return null;
  const action = rule.action === 'freeze' ? 'freeze' : 'flag';
  await recordRiskEvent(tx, {
    userId, rule: 'IP_MULTI_ACCOUNT', action, ip: ctx.ip, userAgent: ctx.userAgent ?? null,
    evidence: { accounts: others.length + 1, threshold: rule.threshold, windowSeconds: rule.windowSeconds, others: others.map((o) => o.id).slice(-20) },
  });
  return { userId, rule: 'IP_MULTI_ACCOUNT', action };
}

/** DEVICE_SHARING: a push token already registered by another account flags the account registering it now. */
export async function assessDevice(tx: Tx, userId: number, platform: string, token: string, ctx: RequestContext, rules: RiskRules): Promise<Hit | null> {
  const rule = rules.get('DEVICE_SHARING');
  if (!rule.enabled) return null;
  const [prior] = await tx<Array<{ userId: number }>>`
    SELECT user_id AS "userId" FROM devices WHERE platform = ${platform} AND token = ${token} AND user_id <> ${userId}`;
  if (!prior) return null;
  const action = rule.action === 'freeze' ? 'freeze' : 'flag';
  await recordRiskEvent(tx, {
    userId, rule: 'DEVICE_SHARING', action, ip: ctx.ip ?? null, userAgent: ctx.userAgent ?? null,
    evidence: { platform, sharedWith: prior.userId },
  });
  return { userId, rule: 'DEVICE_SHARING', action };
}

/**
 * TRANSFER_FAN_IN, after transfers persist: a receiver whose distinct senders within the window
 * exceed the threshold is flagged, once per window. One query for every receiver of the batch
 * (a batch of transfers has about one receiver per transfer: a query each cost a round trip and
 * a plan per transfer). The check and the event are one transaction holding a lock per receiver,
 * taken in one order: batches judged at once (concurrent persist jobs' follow-ups) wait for each
 * other, and the later one sees the event the earlier one recorded.
 */
export async function assessTransferFanIn(sql: Sql, ops: Op[], rules: RiskRules): Promise<Hit[]> {
  const rule = rules.get('TRANSFER_FAN_IN');
  if (!rule.enabled) return [];
  const receivers = [...new Set(ops.filter((o) => o.bizType === 'transfer_in').map((o) => o.userId))];
  if (receivers.length === 0) return [];
  return sql.begin(async (tx) => {
    await tx`
      SELECT pg_advisory_xact_lock(k)
      FROM (SELECT DISTINCT hashtext('fan-in:' || r.id) AS k FROM unnest(${receivers}::bigint[]) AS r(id) ORDER BY k) l`;
    const over = await tx<Array<{ userId: number; senders: number }>>`
      SELECT r.id AS "userId", c.senders
      FROM unnest(${receivers}::bigint[]) AS r(id)
      CROSS JOIN LATERAL (
        SELECT count(DISTINCT from_user_id)::int AS senders FROM transfers
        WHERE to_user_id = r.id AND created_at > now() - make_interval(secs => ${rule.windowSeconds})) c
      WHERE c.senders > ${rule.threshold}
        AND NOT EXISTS (SELECT 1 FROM risk_events WHERE user_id = r.id AND rule = 'TRANSFER_FAN_IN'
                        AND created_at > now() - make_interval(secs => ${rule.windowSeconds}))
      ORDER BY r.id`;
    const action = rule.action === 'freeze' ? 'freeze' : 'flag';
    const hits: Hit[] = [];
    for (const { userId, senders } of over) {
      await recordRiskEvent(tx, {
        userId: Number(userId), rule: 'TRANSFER_FAN_IN', action,
        evidence: { senders, threshold: rule.threshold, windowSeconds: rule.windowSeconds },
      });
      hits.push({ userId: Number(userId), rule: 'TRANSFER_FAN_IN', action });
    }
    return hits;
  });
}

/** A hit that freezes reaches the member's slot (an account not in Redis takes it at hydration). */
export async function enforceHits(redis: RedisClient, keys: Keys, hits: Hit[]): Promise<void> {
  for (const h of hits) if (h.action === 'freeze') await redis.pmRiskSet(keys.account(h.userId), 'freeze');
}
