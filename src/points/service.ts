/**
 * Points: earn by rule, admin grants, charges for redemptions, the live balance, and hydration of
 * accounts missing from Redis (loaded from Postgres, never read as zero).
 */
import { DomainError } from '../errors/domain-error.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import type { Deps } from '../deps.ts';
import { keyHash, newOpId, requestHash } from './idempotency.ts';
import { decodeLotCursor, encodeLotCursor, liveLotsPage } from './lots.ts';
import { parseOp, type Op } from './op.ts';
import type { RulesCache } from './rules.ts';
import type { EngagementConfig } from '../engagement/config.ts';
import { offsetMs } from '../engagement/business-day.ts';
import { frozenTotal, liveRemainders, openHoldsOf, restoreHoldRecords } from './holds-record.ts';
import { RiskRules, type RequestContext } from '../risk/rules.ts';
import { recordRiskEvent } from '../risk/events.ts';
import { opContext, SYSTEM_CONTEXT, type AuditContext } from '../audit/context.ts';
import { countOutcome } from '../metrics/outcomes.ts';
import { EARN_SCRIPT, ScriptBatcher } from '../redis/script-batch.ts';

const DAY_MS = 86_400_000;

export interface OpResult {
  op: Op;
  replayed: boolean;
}

export interface Balance {
  available: number;
  frozen: number;
  totalEarned: number;
  /** Points expiring in the next 30 days, one entry per UTC day, earliest expiry of the day. */
  expiring: Array<{ date: string; points: number; expiresAt: string }>;
}

export interface Lot {
  id: string;
  remaining: number;
  expiresAt: string;
}

type Reply = Array<string | number | null>;

/** A credit of `points` (the base, before multipliers) under a key of the system's own. */
export interface CreditInput {
  bizType: string;
  bizId: string;
  points: number;
  /** Names the credit for idempotency: the same key while its record lives credits once. */
  key: string;
  expiryDays: number;
  capCount?: number;
  capPoints?: number;
  extra?: Record<string, unknown>;
  /** Counts toward the member's tier (default true; refunds and transfers received do not). */
  lifetime?: boolean;
  /** The member's own request (a frozen member is refused), not the system's credit (default false). */
  memberActs?: boolean;
  /** Where the member's request came from (risk evidence). */
  ctx?: RequestContext;
}

interface CreditSpec {
  kh: string;
  hash: string;
  points: number;
  bizType: string;
  bizId: string;
  capCount: number;
  capPoints: number;
  expiryMs: number;
  extra?: Record<string, unknown>;
  /** a rule earn: tier and campaign multipliers apply */
  rule: boolean;
  lifetime: boolean;
  /** risk spec JSON (src/risk/rules.ts creditSpec) */
  risk: string;
}

export class PointsService {
  /** Earn script calls, gathered per turn of the event loop (src/redis/script-batch.ts). */
  private readonly earns: ScriptBatcher;

  constructor(
    private readonly deps: Deps,
    private readonly rules: RulesCache,
    private readonly engagement: EngagementConfig,
    /** risk thresholds (the seeded defaults when none is given) */
    private readonly risk: RiskRules = new RiskRules(),
  ) {
    this.earns = new ScriptBatcher(deps.redis, EARN_SCRIPT, deps.env.SCRIPT_BATCH_MAX);
  }

  /** Credits points for a member action, by rule, within its daily caps. */
  async earn(userId: number, action: string, idempotencyKey: string, ctx: RequestContext = {}): Promise<OpResult> {
    const rule = this.rules.get(action);
    if (!rule || !rule.enabled || rule.trigger !== 'action') {
      throw new DomainError('RULE_NOT_FOUND', `No enabled earn rule for action "${action}"`);
    }
    return this.credit(userId, {
      kh: keyHash(idempotencyKey),
      hash: requestHash('earn', { action }),
      points: rule.points,
      bizType: action,
      bizId: String(rule.id),
      capCount: rule.dailyCapCount,
      capPoints: rule.dailyCapPoints,
      expiryMs: rule.expiryDays * DAY_MS,
      rule: true,
      lifetime: true,
      risk: this.risk.creditSpec(action, true, ctx, { burst: true }),
    });
  }

  /**
   * A credit by rule the system decides (check-in, login bonus, task rewards, purchases): the
   * member's tier and the highest running campaign for its bizType multiply it, floored.
   */
  creditRule(userId: number, c: CreditInput): Promise<OpResult> {
    return this.credit(userId, this.spec(c, true));
  }

  /** A credit outside the rules (grants, referral rewards, commissions, refunds): never multiplied. */
  creditPlain(userId: number, c: CreditInput): Promise<OpResult> {
    return this.credit(userId, this.spec(c, false));
  }

  private spec(c: CreditInput, rule: boolean): CreditSpec {
    return {
      kh: keyHash(c.key, 'sys'),
      hash: requestHash(`credit:${c.bizType}`, { bizId: c.bizId, points: c.points }),
      points: c.points,
      bizType: c.bizType,
      bizId: c.bizId,
      capCount: c.capCount ?? 0,
      capPoints: c.capPoints ?? 0,
      expiryMs: c.expiryDays * DAY_MS,
      extra: c.extra,
      rule,
      lifetime: c.lifetime ?? true,
      risk: this.risk.creditSpec(c.bizType, c.memberActs ?? false, c.ctx),
    };
  }

  /** The sign-up bonus: one fixed key per member, so it applies at most once while its record lives. */
  async signupBonus(userId: number): Promise<OpResult | null> {
    const rule = this.rules.get('register');
    if (!rule || !rule.enabled) return null;
    return this.creditRule(userId, { bizType: 'register', bizId: String(rule.id), points: rule.points, key: 'signup:register', expiryDays: rule.expiryDays });
  }

  /** Admin grant: no caps, no multiplier, not toward the tier; audited (the persist worker writes the audit row from the op). */
  async grant(adminId: number, userId: number, amount: number, reason: string, idempotencyKey: string, ctx: AuditContext = SYSTEM_CONTEXT): Promise<OpResult> {
    const { redis, keys, env } = this.deps;
    const hash = requestHash('grant', { userId, amount, reason });
    // The key belongs to the admin: claim it in the admin's own record for that key (where earn
    // and redemptions keep theirs), so reusing it for another member, another amount or another
    // endpoint is caught even though the op lives in the target member's slot.
    const claimKey = keys.idem(adminId, keyHash(idempotencyKey));
    const claim = JSON.stringify({ kind: 'claim', h: hash });
    const claimed = await redis.set(claimKey, claim, 'EX', env.IDEMPOTENCY_TTL_SECONDS, 'NX');
    if (claimed === null && (await redis.get(claimKey)) !== claim) {
      throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request body');
    }
    try {
      return await this.credit(userId, {
        kh: keyHash(idempotencyKey, `grant:${adminId}`),
        hash,
        points: amount,
        bizType: 'grant',
        bizId: String(adminId),
        capCount: 0,
        capPoints: 0,
        expiryMs: env.LOT_EXPIRY_DAYS * DAY_MS,
        extra: { actorId: adminId, reason, ...opContext(ctx) },
        rule: false,
        // an operator's grant (goodwill, a correction, a migration) adjusts the balance; it does
        // not qualify the member for a tier (docs/architecture.md, tiers)
        lifetime: false,
        risk: this.risk.creditSpec('grant', false),
      });
    } catch (err) {
      // a grant that did not happen (unknown member) leaves no claim behind
      if (claimed !== null) await redis.del(claimKey);
      throw err;
    }
  }

  private async credit(userId: number, c: CreditSpec): Promise<OpResult> {
    const { keys, env } = this.deps;
    const opId = newOpId();
    const now = Date.now();
    const earnKeys = [
      keys.account(userId),
      keys.lotsByExpiry(userId),
      keys.lotRemaining(userId),
      keys.idem(userId, c.kh),
      keys.dailyCap(userId, c.bizType),
      keys.outboxOf(userId),
      keys.expiryIndexOf(userId),
    ];
    const args = [
      opId,
      userId,
      c.points,
      c.bizType,
      c.bizId,
      c.capCount,
      c.capPoints,
      c.expiryMs,
      c.hash,
      env.IDEMPOTENCY_TTL_SECONDS,
      '',
      JSON.stringify(c.extra ?? {}),
      c.kh,
      offsetMs(env.BUSINESS_TIMEZONE, now),
      this.engagement.multipliers(c.bizType, { rule: c.rule, lifetime: c.lifetime }, now),
      c.risk,
    ];
    const reply = await this.withHydration(userId, () => this.earns.run(earnKeys, args));
    countOutcome('earn', Number(reply[0]));
    if (Number(reply[0]) === ScriptCode.EarnBurst) {
      await this.noteBurst(userId, c.risk);
      throw new DomainError('RATE_LIMITED', 'Too many earns in a short time; retry shortly', {
        retryAfterSeconds: Math.max(1, Math.ceil(Number(reply[1]) / 1000)),
      });
    }
    return opResult(reply);
  }

  /** The risk spec of a credit made by another script (check-in): src/risk/rules.ts creditSpec. */
  riskSpec(bizType: string, memberActs: boolean, ctx: RequestContext = {}): string {
    return this.risk.creditSpec(bizType, memberActs, ctx);
  }

  /** An EARN_BURST refusal is recorded once per window (the marker's lifetime), whatever the retries. */
  private async noteBurst(userId: number, riskJson: string): Promise<void> {
    const { redis, keys, sql } = this.deps;
    const rule = this.risk.get('EARN_BURST');
    const first = await redis.set(keys.riskMark(userId, 'EARN_BURST'), '1', 'EX', Math.max(1, rule.windowSeconds), 'NX');
    if (first === null) return;
    const spec = JSON.parse(riskJson) as { ip?: string; ua?: string };
    await recordRiskEvent(sql, {
      userId, rule: 'EARN_BURST', action: 'block', evidence: { threshold: rule.threshold, windowSeconds: rule.windowSeconds },
      ip: spec.ip ?? null, userAgent: spec.ua ?? null,
    });
  }

  /** Deducts points for a redemption. The reservation token ties the charge to one reservation. */
  async charge(
    userId: number,
    opId: string,
    kh: string,
    hash: string,
    amount: number,
    token: string,
    extra: Record<string, unknown>,
    /** 'system': a charge the member did not ask for (a clawback), made even while frozen */
    guard: '' | 'system' = '',
  ): Promise<OpResult> {
    const { redis, keys, env } = this.deps;
    const reply = await this.withHydration(userId, () =>
      redis.pmCharge(
        keys.account(userId),
        keys.lotsByExpiry(userId),
        keys.lotRemaining(userId),
        keys.idem(userId, kh),
        keys.opRef(userId, opId),
        keys.outboxOf(userId),
        opId,
        userId,
        amount,
        hash,
        env.IDEMPOTENCY_TTL_SECONDS,
        '',
        token,
        JSON.stringify(extra),
        kh,
        guard,
      ),
    );
    countOutcome('charge', Number(reply[0]));
    return opResult(reply);
  }

  /**
   * What the member's key holds: the op it produced, or null when it is free (never used, expired,
   * or only a sweeper tombstone). A key an admin claimed for a grant comes back as {kind:'claim', h}.
   */
  async findByKey(userId: number, kh: string): Promise<Op | { kind: 'claim'; h: string } | null> {
    const raw = await this.deps.redis.get(this.deps.keys.idem(userId, kh));
    if (raw === null) return null;
    const rec = JSON.parse(raw) as Op | { kind: 'aborted' | 'claim'; h: string };
    return rec.kind === 'aborted' ? null : (rec as Op | { kind: 'claim'; h: string });
  }

  /** A member's own redemption op by id while its record lives; the owner is part of the key name. */
  async findOwnOpById(userId: number, opId: string): Promise<Op | null> {
    const { redis, keys } = this.deps;
    const kh = await redis.get(keys.opRef(userId, opId));
    if (kh === null) return null;
    const op = await this.findByKey(userId, kh);
    return op && op.kind !== 'claim' && (op as Op).opId === opId ? (op as Op) : null;
  }

  async balance(userId: number, horizonMs = 30 * DAY_MS): Promise<Balance> {
    const { head, lots } = await this.liveLots(userId, horizonMs);
    return { ...head, expiring: groupByDay(lots) };
  }

  /**
   * The balance Postgres holds (the persisted ledger's mirror, open holds out of `available`):
   * behind the live one by the ops still in flight; what a reader shows when Redis cannot answer.
   * Null when there is no such member.
   */
  async persistedBalance(userId: number): Promise<{ available: number; frozen: number; totalEarned: number; tier: number } | null> {
    const { sql } = this.deps;
    const [account] = await sql<Array<{ available: number; totalEarned: number; tier: number }>>`
      SELECT available, total_earned AS "totalEarned", tier FROM point_accounts WHERE user_id = ${userId}`;
    if (!account) return null;
    const frozen = frozenTotal((await openHoldsOf(sql, [userId])).get(userId) ?? []);
    return { available: account.available - frozen, frozen, totalEarned: account.totalEarned, tier: account.tier };
  }

  /**
   * Available points from Redis alone, or null when Redis holds no account for the member
   * (nothing is loaded from Postgres: for reads that must stay off it).
   */
  async loadedAvailable(userId: number): Promise<number | null> {
    const { redis, keys } = this.deps;
    const reply = await redis.pmBalance(keys.account(userId), keys.lotsByExpiry(userId), keys.lotRemaining(userId), 0, '');
    return parseBalanceReply(reply)?.head.available ?? null;
  }

  /** One page of the member's live lots (not expired), earliest expiry first. */
  async lots(userId: number, page: { limit: number; cursor?: string }): Promise<{ items: Lot[]; nextCursor: string | null }> {
    const after = page.cursor === undefined ? null : decodeLotCursor(page.cursor);
    // a zero horizon lists no lots: the script only hydrates a missing account and reads Redis TIME
    const { now } = await this.liveLots(userId, 0);
    const { lots, next } = await liveLotsPage(this.deps.redis, this.deps.keys, userId, { now, after, limit: page.limit });
    return { items: lots, nextCursor: next && encodeLotCursor(next) };
  }

  private async liveLots(userId: number, horizonMs: number) {
    const { redis, keys } = this.deps;
    const reply = await this.withHydration(userId, () =>
      redis.pmBalance(keys.account(userId), keys.lotsByExpiry(userId), keys.lotRemaining(userId), horizonMs, ''),
    );
    return { ...parseBalanceReply(reply)!, now: Number(reply[5]) };
  }

  /**
   * Loads a member's account and live lots from Postgres into Redis unless Redis already has
   * the account. Returns false when Postgres has no such member.
   */
  async hydrate(userId: number): Promise<boolean> {
    const { redis, keys, sql } = this.deps;
    const [account] = await sql<Array<{ available: number; totalEarned: number; tier: number; riskStatus: string }>>`
      SELECT a.available, a.total_earned AS "totalEarned", a.tier, u.risk_status AS "riskStatus"
      FROM point_accounts a JOIN users u ON u.id = a.user_id WHERE a.user_id = ${userId}`;
    if (!account) return false;
    const lots = await sql<Array<{ id: string; remaining: number; expiresAt: Date }>>`
      SELECT id, remaining, expires_at AS "expiresAt" FROM point_lots
      WHERE user_id = ${userId} AND remaining > 0`;
    // open holds: their points are owned (in `available` here) but frozen, out of the live lots
    const held = (await openHoldsOf(sql, [userId])).get(userId) ?? [];
    const frozen = frozenTotal(held);
    const args: Array<string | number> = [userId, account.available - frozen, account.totalEarned, account.tier, frozen, account.riskStatus === 'frozen' ? 'f' : ''];
    for (const lot of liveRemainders(lots, held)) args.push(lot.id, lot.remaining, lot.expiresAt.getTime());
    const loaded = await redis.pmHydrate(keys.account(userId), keys.lotsByExpiry(userId), keys.lotRemaining(userId), keys.expiryIndexOf(userId), ...args);
    // the records only when this call loaded the account (a present account has its own)
    if (Number(loaded) === 1 && held.length > 0) {
      const tx = redis.pipeline();
      restoreHoldRecords(tx, keys, held);
      await tx.exec();
    }
    return true;
  }

  /** Runs a member-slot script; a {-1} (account not in Redis) loads the account from Postgres and runs it again. */
  async withHydration(userId: number, run: () => Promise<Reply>): Promise<Reply> {
    const first = await run();
    if (Number(first[0]) !== ScriptCode.NotHydrated) return first;
    if (!(await this.hydrate(userId))) throw new DomainError('USER_NOT_FOUND', `No member with id ${userId}`);
    return run();
  }
}

/** The balance script's reply as balance head and live lots (earliest first); null if not hydrated. */
export function parseBalanceReply(reply: Reply): { head: Omit<Balance, 'expiring'>; lots: Lot[] } | null {
  if (Number(reply[0]) !== 1) return null;
  const [, avail, earned, frozen, expired] = reply.map(Number);
  const lots: Lot[] = [];
  for (let i = 6; i < reply.length; i += 3) {
    lots.push({ id: String(reply[i]), remaining: Number(reply[i + 1]), expiresAt: new Date(Number(reply[i + 2])).toISOString() });
  }
  return { head: { available: avail - expired, frozen, totalEarned: earned }, lots };
}

/** Lots (earliest first) grouped by UTC expiry day: points summed, the day's earliest expiry. */
export function groupByDay(lots: Lot[]): Balance['expiring'] {
  const byDay = new Map<string, { date: string; points: number; expiresAt: string }>();
  for (const lot of lots) {
    const date = lot.expiresAt.slice(0, 10);
    const day = byDay.get(date);
    if (day) day.points += lot.remaining;
    else byDay.set(date, { date, points: lot.remaining, expiresAt: lot.expiresAt });
  }
  return [...byDay.values()];
}

/** Turns a script reply {1, opJson, replayed} | {negative code, ...} into a result or an error. */
export function opResult(reply: Reply): OpResult {
  const code = Number(reply[0]);
  if (code !== 1) throw scriptError(code);
  return { op: parseOp(String(reply[1])), replayed: Number(reply[2]) === 1 };
}
