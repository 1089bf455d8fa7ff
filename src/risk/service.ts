/**
 * Risk control for operators: the rules' thresholds, the events, the members by risk status, and
 * freezing / unfreezing a member. A freeze is recorded in Postgres (users.risk_status, a risk event,
 * the audit) and enforced in the member's slot (lua/risk-set-1.lua), where every points-moving
 * script checks it; a rebuild or a hydration carries it back into Redis.
 */
import type { Deps } from '../deps.ts';
import type { Tx } from '../db/client.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import { DomainError } from '../errors/domain-error.ts';
import { recordRiskEvent } from './events.ts';
import { ALLOWED_ACTIONS, loadRules, RISK_RULES, type RequestContext, type RiskRule, type RiskRuleName, type RiskRules } from './rules.ts';
import { recordAudit } from '../audit/log.ts';

export interface RiskEventView {
  id: number;
  userId: number;
  rule: string;
  action: string;
  evidence: Record<string, unknown>;
  ip: string | null;
  userAgent: string | null;
  createdAt: string;
}

export class RiskService {
  constructor(
    private readonly deps: Deps,
    private readonly rules: RiskRules,
  ) {}

  /** The member's slot follows a freeze or unfreeze (an account not in Redis takes it at hydration). */
  async enforce(userId: number, frozen: boolean): Promise<void> {
    await this.deps.redis.pmRiskSet(this.deps.keys.account(userId), frozen ? 'freeze' : 'unfreeze');
  }

  /** An admin's freeze, inside the admin write's transaction; enforce() follows the commit. */
  async freezeTx(tx: Tx, adminId: number, userId: number, reason: string, ctx: RequestContext): Promise<{ userId: number; riskStatus: 'frozen' }> {
    await this.member(tx, userId);
    await recordRiskEvent(tx, { userId, rule: 'ADMIN', action: 'freeze', evidence: { adminId, reason }, ip: ctx.ip ?? null, userAgent: ctx.userAgent ?? null });
    await recordAudit(tx, { actorId: adminId, action: 'member.freeze', targetType: 'user', targetId: String(userId), data: { reason } });
    return { userId, riskStatus: 'frozen' };
  }

  async unfreezeTx(tx: Tx, adminId: number, userId: number, reason: string, ctx: RequestContext): Promise<{ userId: number; riskStatus: 'normal' }> {
    await this.member(tx, userId);
    await recordRiskEvent(tx, { userId, rule: 'ADMIN', action: 'unfreeze', evidence: { adminId, reason }, ip: ctx.ip ?? null, userAgent: ctx.userAgent ?? null });
    await recordAudit(tx, { actorId: adminId, action: 'member.unfreeze', targetType: 'user', targetId: String(userId), data: { reason } });
    return { userId, riskStatus: 'normal' };
  }

  private async member(tx: Tx, userId: number): Promise<void> {
    const [row] = await tx`SELECT 1 FROM users WHERE id = ${userId} FOR UPDATE`;
    if (!row) throw new DomainError('USER_NOT_FOUND', `No member with id ${userId}`);
  }

  /**
   * Members frozen in Postgres but not in their slot (a freeze whose Redis step a crash cut short):
   * frozen there too. Returns how many were caught up.
   */
  async syncFrozen(): Promise<number> {
    const { sql, redis, keys } = this.deps;
    const frozen = await sql<Array<{ id: number }>>`SELECT id FROM users WHERE risk_status = 'frozen'`;
    let fixed = 0;
    for (const { id } of frozen) {
      const rs = await redis.hmget(keys.account(id), 'rs', 'avail');
      if (rs[1] !== null && rs[0] !== 'f') {
        await this.enforce(id, true);
        fixed++;
      }
    }
    return fixed;
  }

  // ---- rules ----

  list(): RiskRule[] {
    return this.rules.all();
  }

  /** Replaces the named rules (each validated against what the rule can do); the cache follows at once here, elsewhere within RULES_REFRESH_MS. */
  async updateTx(tx: Tx, adminId: number, rules: RiskRule[]): Promise<RiskRule[]> {
    const seen = new Set<string>();
    for (const r of rules) {
      if (!(RISK_RULES as readonly string[]).includes(r.rule)) throw new DomainError('RISK_RULE_INVALID', `Unknown rule ${r.rule}`);
      if (seen.has(r.rule)) throw new DomainError('RISK_RULE_INVALID', `Rule ${r.rule} is listed twice`);
      seen.add(r.rule);
      if (!ALLOWED_ACTIONS[r.rule as RiskRuleName].includes(r.action)) {
        throw new DomainError('RISK_RULE_INVALID', `${r.rule} can only ${ALLOWED_ACTIONS[r.rule as RiskRuleName].join(' or ')}`);
      }
      if (r.rule !== 'DEVICE_SHARING' && r.windowSeconds < 1) throw new DomainError('RISK_RULE_INVALID', `${r.rule} needs a window of at least 1 second`);
    }
    for (const r of rules) {
      await tx`
        INSERT INTO risk_rules (rule, enabled, threshold, window_seconds, action, updated_at)
        VALUES (${r.rule}, ${r.enabled}, ${r.threshold}, ${r.windowSeconds}, ${r.action}, now())
        ON CONFLICT (rule) DO UPDATE SET enabled = EXCLUDED.enabled, threshold = EXCLUDED.threshold,
          window_seconds = EXCLUDED.window_seconds, action = EXCLUDED.action, updated_at = now()`;
    }
    await recordAudit(tx, { actorId: adminId, action: 'risk.rules', targetType: 'config', targetId: 'risk_rules', data: { rules } });
    const all = await loadRules(tx);
    this.rules.set(all);
    return this.rules.all();
  }

  // ---- lists ----

  async events(q: { rule?: string; member?: number; from?: string; to?: string; limit: number; cursor?: string }) {
    const { sql } = this.deps;
    const after = q.cursor ? decodeCursor(q.cursor) : null;
    const rows = await sql<Array<Omit<RiskEventView, 'createdAt'> & { createdAt: Date }>>`
      SELECT id, user_id AS "userId", rule, action, evidence, ip, user_agent AS "userAgent", created_at AS "createdAt"
      FROM risk_events WHERE true
      ${q.rule ? sql`AND rule = ${q.rule}` : sql``}
      ${q.member ? sql`AND user_id = ${q.member}` : sql``}
      ${q.from ? sql`AND created_at >= ${new Date(q.from)}` : sql``}
      ${q.to ? sql`AND created_at < ${new Date(q.to)}` : sql``}
      ${after ? sql`AND (created_at, id) < (to_timestamp(${after.ms} / 1000.0), ${Number(after.id)})` : sql``}
      ORDER BY created_at DESC NULLS LAST, id DESC NULLS LAST LIMIT ${q.limit + 1}`;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() })),
      nextCursor: rows.length > q.limit ? encodeCursor(last.createdAt.getTime(), String(last.id)) : null,
    };
  }

  async members(q: { status?: 'flagged' | 'frozen'; limit: number; cursor?: string }) {
    const { sql } = this.deps;
    const after = q.cursor ? Number(decodeCursor(q.cursor).id) : 0;
    const rows = await sql<Array<{ id: number; username: string; riskStatus: string; events: number; lastRule: string | null; lastAt: Date | null }>>`
      SELECT u.id, u.username, u.risk_status AS "riskStatus",
             (SELECT count(*)::int FROM risk_events e WHERE e.user_id = u.id) AS events,
             l.rule AS "lastRule", l.created_at AS "lastAt"
      FROM users u
      LEFT JOIN LATERAL (SELECT rule, created_at FROM risk_events e WHERE e.user_id = u.id ORDER BY created_at DESC NULLS LAST, id DESC LIMIT 1) l ON true
      WHERE u.risk_status <> 'normal' ${q.status ? sql`AND u.risk_status = ${q.status}` : sql``} AND u.id > ${after}
      ORDER BY u.id LIMIT ${q.limit + 1}`;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({ ...r, lastAt: r.lastAt?.toISOString() ?? null })),
      nextCursor: rows.length > q.limit ? encodeCursor(0, String(last.id)) : null,
    };
  }
}
