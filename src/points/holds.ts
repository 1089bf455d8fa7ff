/**
 * Points holds: points moved from available to frozen for a pending payment (orders) or an
 * integrator (admin holds), then captured (spent, in part or whole; the rest goes back) or
 * released. Each step is one Lua script in the member's slot with its op in the outbox:
 * freeze (delta 0), capture (a `spend` op of the captured points), release (`unfreeze`, delta 0).
 * A hold settles once: capture after capture or release after release replays the first answer,
 * the other way round is HOLD_SETTLED.
 */
import { randomBytes } from 'node:crypto';
import { DomainError } from '../errors/domain-error.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import type { Deps } from '../deps.ts';
import { keyHash, newOpId, requestHash } from './idempotency.ts';
import type { PointsService } from './service.ts';
import { opContext, SYSTEM_CONTEXT, type AuditContext } from '../audit/context.ts';

const DAY_MS = 86_400_000;

export interface HoldRecord {
  id: string;
  userId: number;
  amount: number;
  /** lot portions the hold took: [lotId, points, expiresAt] */
  lots: Array<[string, number, number]>;
  state: 'frozen' | 'captured' | 'released' | 'aborted';
  captured?: number;
  at: number;
  expiresAt: number;
  settledAt?: number;
  bizType: string;
  bizId: string;
  h: string;
  freezeOp?: string;
  settleOp?: string;
}

export interface HoldView {
  holdId: string;
  userId: number;
  amount: number;
  state: 'frozen' | 'captured' | 'released';
  captured: number;
  reason: string;
  expiresAt: string | null;
  createdAt: string;
  settledAt: string | null;
}

export interface FreezeInput {
  userId: number;
  holdId: string;
  amount: number;
  bizType: string;
  bizId: string;
  /** 0: no expiry */
  expiresAt: number;
  hash: string;
  extra?: Record<string, unknown>;
  /** 'system': an integrator's hold, made even while the member is frozen (an order is the member's) */
  guard?: '' | 'system';
}

type Reply = Array<string | number | null>;

/** What a tombstone written by `fence` looks like: any later freeze of that id is refused. */
const FENCED = 'fenced';

export class HoldService {
  constructor(
    private readonly deps: Deps,
    private readonly points: PointsService,
  ) {}

  /** Freezes points under `holdId`; the same id with the same request replays. */
  async freeze(f: FreezeInput): Promise<{ hold: HoldRecord; replayed: boolean }> {
    const { redis, keys } = this.deps;
    const reply = await this.points.withHydration(f.userId, () =>
      redis.pmHold(
        keys.account(f.userId),
        keys.lotsByExpiry(f.userId),
        keys.lotRemaining(f.userId),
        keys.hold(f.userId, f.holdId),
        keys.outboxOf(f.userId),
        newOpId(),
        f.userId,
        f.amount,
        f.holdId,
        f.bizType,
        f.bizId,
        '',
        f.expiresAt,
        JSON.stringify(f.extra ?? {}),
        f.hash,
        f.guard ?? '',
      ),
    );
    return parse(reply);
  }

  /** Captures `capture` points of the hold (all when omitted) or releases it. */
  async settle(
    userId: number,
    holdId: string,
    mode: 'capture' | 'release',
    capture?: number,
    extra: Record<string, unknown> = {},
  ): Promise<{ hold: HoldRecord; replayed: boolean }> {
    const { redis, keys, env } = this.deps;
    const run = (amount: number) =>
      this.points.withHydration(userId, () =>
        redis.pmHoldSettle(
          keys.account(userId),
          keys.lotsByExpiry(userId),
          keys.lotRemaining(userId),
          keys.hold(userId, holdId),
          keys.outboxOf(userId),
          keys.expiryIndexOf(userId),
          mode,
          newOpId(),
          userId,
          amount,
          '',
          env.REFUND_GRACE_DAYS * DAY_MS,
          JSON.stringify(extra),
          env.IDEMPOTENCY_TTL_SECONDS,
        ),
      );
    let amount = capture ?? 0;
    if (mode === 'capture' && capture === undefined) {
      const rec = await this.record(userId, holdId);
      if (!rec) throw scriptError(ScriptCode.HoldNotFound);
      amount = rec.amount;
    }
    return parse(await run(mode === 'capture' ? amount : 0));
  }

  /** Refuses a frozen member (ACCOUNT_FROZEN) before an order takes stock, whether or not it spends points. */
  async assertActive(userId: number): Promise<void> {
    const { redis, keys } = this.deps;
    let [rs, avail] = await redis.hmget(keys.account(userId), 'rs', 'avail');
    if (avail === null) {
      if (!(await this.points.hydrate(userId))) throw new DomainError('USER_NOT_FOUND', `No member with id ${userId}`);
      [rs] = await redis.hmget(keys.account(userId), 'rs', 'avail');
    }
    if (rs === 'f') throw scriptError(ScriptCode.AccountFrozen);
  }

  /** The hold's record in Redis (null when there is none, or it was settled long ago). */
  async record(userId: number, holdId: string): Promise<HoldRecord | null> {
    const raw = await this.deps.redis.get(this.deps.keys.hold(userId, holdId));
    return raw === null ? null : (JSON.parse(raw) as HoldRecord);
  }

  /**
   * Makes sure a hold is never made under `holdId` from now on, unless it already was: returns the
   * record if the freeze happened, else writes a tombstone that refuses it and returns null.
   */
  async fence(userId: number, holdId: string): Promise<HoldRecord | null> {
    const { redis, keys, env } = this.deps;
    const key = keys.hold(userId, holdId);
    const tomb = JSON.stringify({ id: holdId, state: 'aborted', h: FENCED });
    await redis.set(key, tomb, 'EX', env.IDEMPOTENCY_TTL_SECONDS, 'NX');
    const raw = await redis.get(key);
    if (raw === null) return null;
    const rec = JSON.parse(raw) as HoldRecord;
    return rec.state === 'aborted' ? null : rec;
  }

  // ---- admin holds (integrators) ----

  /**
   * An integrator's hold, `h<userId>-<32 random hex>` (the member id in it lets capture and release
   * find the hold's slot). The admin's Idempotency-Key is claimed in the admin's own record for
   * that key (as grants claim theirs), naming the hold: a retry freezes under the same id and
   * replays; the key reused for another request is refused; once the claim has expired the key
   * makes a new hold with a new id. A refused freeze leaves no claim behind.
   */
  async createAdmin(
    adminId: number,
    input: { userId: number; amount: number; reason: string; ttlSeconds: number },
    idempotencyKey: string,
    ctx: AuditContext = SYSTEM_CONTEXT,
  ): Promise<{ hold: HoldView; replayed: boolean }> {
    const { env, redis, keys } = this.deps;
    if (input.ttlSeconds > env.HOLD_MAX_TTL_SECONDS) {
      throw new DomainError('VALIDATION_FAILED', `ttlSeconds must be at most ${env.HOLD_MAX_TTL_SECONDS}`);
    }
    const hash = requestHash('admin-hold', { ...input, adminId });
    const claimKey = keys.idem(adminId, keyHash(idempotencyKey));
    const mine = JSON.stringify({ kind: 'claim', h: hash, holdId: `h${input.userId}-${randomBytes(16).toString('hex')}` });
    const fresh = (await redis.set(claimKey, mine, 'EX', env.IDEMPOTENCY_TTL_SECONDS, 'NX')) !== null;
    const raw = fresh ? mine : await redis.get(claimKey);
    const claim = raw === null ? null : (JSON.parse(raw) as { kind?: string; h?: string; holdId?: string });
    if (!claim || claim.h !== hash || !claim.holdId) {
      throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request body');
    }
    const [sec] = await redis.time();
    try {
      const { hold, replayed } = await this.freeze({
        userId: input.userId,
        holdId: claim.holdId,
        amount: input.amount,
        bizType: 'hold',
        bizId: input.reason,
        expiresAt: Number(sec) * 1000 + input.ttlSeconds * 1000,
        hash,
        extra: { actorId: adminId, reason: input.reason, ...opContext(ctx) },
        guard: 'system',
      });
      return { hold: view(hold), replayed };
    } catch (err) {
      if (fresh) await redis.del(claimKey);
      throw err;
    }
  }

  /** Refuses a settlement that cannot happen (no such hold, or settled the other way) before anything is stored. */
  async assertSettleable(holdId: string, mode: 'capture' | 'release', capture?: number): Promise<void> {
    const rec = await this.record(adminHoldUser(holdId), holdId);
    if (!rec || rec.state === 'aborted') throw scriptError(ScriptCode.HoldNotFound);
    if (rec.state !== 'frozen' && (rec.state === 'captured') !== (mode === 'capture')) throw scriptError(ScriptCode.HoldSettled);
    if (mode === 'capture' && capture !== undefined && capture > rec.amount) {
      throw new DomainError('VALIDATION_FAILED', `amount may be at most the hold's ${rec.amount} points`, { held: rec.amount });
    }
  }

  async settleAdmin(adminId: number, holdId: string, mode: 'capture' | 'release', capture?: number): Promise<{ hold: HoldView; replayed: boolean }> {
    const userId = adminHoldUser(holdId);
    const { hold, replayed } = await this.settle(userId, holdId, mode, capture, { actorId: adminId });
    return { hold: view(hold), replayed };
  }

  async getAdmin(holdId: string): Promise<HoldView> {
    const userId = adminHoldUser(holdId);
    const rec = await this.record(userId, holdId);
    if (rec && rec.state !== 'aborted') return view(rec);
    const [row] = await this.deps.sql<Array<{ id: string; userId: number; amount: number; state: HoldView['state']; captured: number | null;
      bizId: string | null; expiresAt: Date | null; createdAt: Date; settledAt: Date | null }>>`
      SELECT id, user_id AS "userId", amount, state, captured, biz_id AS "bizId", expires_at AS "expiresAt",
             created_at AS "createdAt", settled_at AS "settledAt"
      FROM point_holds WHERE id = ${holdId}`;
    if (!row) throw scriptError(ScriptCode.HoldNotFound);
    return {
      holdId: row.id, userId: row.userId, amount: row.amount, state: row.state, captured: row.captured ?? 0, reason: row.bizId ?? '',
      expiresAt: row.expiresAt?.toISOString() ?? null, createdAt: row.createdAt.toISOString(), settledAt: row.settledAt?.toISOString() ?? null,
    };
  }

  /**
   * Releases open holds past their expiry (persisted ones: a hold's freeze reaches Postgres within
   * the persist lag, far inside any ttl). Order holds (bizType 'order') are left to the order pump,
   * which cancels the order with them. Returns how many were released.
   */
  async releaseExpired(limit = 500): Promise<number> {
    const due = await this.deps.sql<Array<{ id: string; userId: number }>>`
      SELECT id, user_id AS "userId" FROM point_holds
      WHERE state = 'frozen' AND expires_at <= now() AND biz_type <> 'order'
      ORDER BY expires_at LIMIT ${limit}`;
    let released = 0;
    for (const h of due) {
      try {
        const { replayed } = await this.settle(h.userId, h.id, 'release', undefined, { reason: 'expired' });
        if (!replayed) released++;
      } catch (err) {
        // captured meanwhile (its settlement not persisted yet): nothing to release
        if (!(err instanceof DomainError && err.code === 'HOLD_SETTLED')) throw err;
      }
    }
    return released;
  }
}

function parse(reply: Reply): { hold: HoldRecord; replayed: boolean } {
  const code = Number(reply[0]);
  if (code !== 1) throw scriptError(code);
  return { hold: JSON.parse(String(reply[1])) as HoldRecord, replayed: Number(reply[2]) === 1 };
}

export function adminHoldUser(holdId: string): number {
  const m = /^h(\d{1,15})-[0-9a-f]{32}$/.exec(holdId);
  if (!m) throw new DomainError('HOLD_NOT_FOUND', 'No such hold');
  return Number(m[1]);
}

function view(h: HoldRecord): HoldView {
  if (h.state === 'aborted') throw new DomainError('HOLD_NOT_FOUND', 'No such hold');
  return {
    holdId: h.id,
    userId: h.userId,
    amount: h.amount,
    state: h.state,
    captured: h.captured ?? 0,
    reason: h.bizId,
    expiresAt: h.expiresAt > 0 ? new Date(h.expiresAt).toISOString() : null,
    createdAt: new Date(h.at).toISOString(),
    settledAt: h.settledAt ? new Date(h.settledAt).toISOString() : null,
  };
}
