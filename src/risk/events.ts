/**
 * Risk events: each rule hit (and each admin freeze / unfreeze) is a row with the member, the rule,
 * the evidence and where the request came from; the member's risk status only ever escalates
 * through a rule (normal → flagged → frozen) — only an admin's unfreeze brings it back to normal.
 */
import type postgres from 'postgres';
import type { Sql, Tx } from '../db/client.ts';
import type { Op } from '../points/op.ts';

export interface RiskEventInput {
  userId: number;
  rule: string;
  /** what the hit did: flag (status flagged), freeze (frozen), block (refused, status unchanged) */
  action: 'flag' | 'freeze' | 'block' | 'unfreeze';
  evidence?: Record<string, unknown>;
  ip?: string | null;
  userAgent?: string | null;
  /** the op whose script found it: recorded once per op */
  opId?: string;
}

/** Records the event and escalates the member's status; returns false when the op's event was already recorded. */
export async function recordRiskEvent(db: Sql | Tx, e: RiskEventInput): Promise<boolean> {
  const rows = await db`
    INSERT INTO risk_events (user_id, rule, action, evidence, ip, user_agent, op_id)
    VALUES (${e.userId}, ${e.rule}, ${e.action}, ${db.json((e.evidence ?? {}) as postgres.JSONValue)}, ${e.ip ?? null},
            ${e.userAgent ?? null}, ${e.opId ?? null})
    ON CONFLICT (op_id) WHERE op_id IS NOT NULL DO NOTHING RETURNING 1`;
  if (rows.length === 0) return false;
  if (e.action === 'freeze') await db`UPDATE users SET risk_status = 'frozen' WHERE id = ${e.userId}`;
  if (e.action === 'flag') await db`UPDATE users SET risk_status = 'flagged' WHERE id = ${e.userId} AND risk_status = 'normal'`;
  if (e.action === 'unfreeze') await db`UPDATE users SET risk_status = 'normal' WHERE id = ${e.userId}`;
  return true;
}

interface Finding {
  rule: string;
  action?: string;
  ip?: string;
  ua?: string;
  [k: string]: unknown;
}

/** The persist worker's part: findings the scripts attached to ops (DAILY_GAIN, HIGH_FREQUENCY), once each. */
export async function persistRiskFindings(tx: Tx, ops: Op[]): Promise<number> {
  let n = 0;
  for (const o of ops) {
    const f = (o as Op & { risk?: Finding }).risk;
    if (!f || typeof f !== 'object') continue;
    const { rule, action, ip, ua, ...evidence } = f;
    const recorded = await recordRiskEvent(tx, {
      userId: o.userId,
      rule,
      action: action === 'freeze' ? 'freeze' : 'flag',
      evidence: { ...evidence, opId: o.opId, bizType: o.bizType, delta: o.delta },
      ip: ip ?? null,
      userAgent: ua ?? null,
      opId: o.opId,
    });
    if (recorded) n++;
  }
  return n;
}
