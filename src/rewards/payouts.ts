/**
 * Payouts: points the system owes a member (task rewards, referral rewards, commissions) or takes
 * back (commission reversals). Whoever derives one inserts a row under its slot, a name unique to
 * what it pays for (`task:<key>:<member>:<period>`, `commission:<redemption op id>`, …), in the
 * same transaction as what derived it; paying is a separate step that can run any number of times.
 *
 * Paying a row, under its row lock (two payers never work on one row at once):
 *   1. the ledger already holds an op made under the slot's key → that op paid it;
 *   2. otherwise credit through the points spine with the slot as the idempotency key: a retry
 *      while the key's record lives (IDEMPOTENCY_TTL_SECONDS) replays the first op instead of
 *      crediting again; a debit first looks the key up, so a retry never charges a second amount;
 *   3. queue the member's push (deduplicated by the slot);
 *   4. mark the row paid with the op id, in the transaction that holds the lock.
 * A payer killed anywhere in 1–4 leaves the row pending; the next attempt finds the op of the
 * first (step 1 once persisted, step 2's replay before that) and pays nothing twice. What this
 * cannot cover: an op that is neither persisted nor still in Redis's records, i.e. persistence
 * stalled longer than IDEMPOTENCY_TTL_SECONDS (docs/architecture.md, Payouts).
 */
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { keyHash, newOpId, requestHash } from '../points/idempotency.ts';
import type { Op } from '../points/op.ts';
import type { PointsService } from '../points/service.ts';
import type { PushService } from '../push/service.ts';

/** The scope PointsService gives the keys of the system's own credits (creditRule/creditPlain). */
const SYSTEM_SCOPE = 'sys';
/** charge() ties a charge to a reservation token; a debit has no reservation, only this fixed one. */
const DEBIT_TOKEN = 'payout';

export interface PayoutPush {
  type: string;
  title: string;
  /** `{points}` is replaced by the points actually moved. */
  body: string;
}

export interface PayoutInput {
  slot: string;
  userId: number;
  bizType: string;
  bizId: string;
  direction: 'credit' | 'debit';
  points: number;
  /** Task rewards: tier and campaign multipliers apply. */
  rule?: boolean;
  sourceOpId?: string;
  level?: number;
  base?: number;
  push?: PayoutPush;
}

interface PayoutRow {
  id: number;
  slot: string;
  userId: number;
  bizType: string;
  bizId: string;
  direction: 'credit' | 'debit';
  points: number;
  rule: boolean;
  push: PayoutPush | null;
}

export interface PayResult {
  paid: number;
  failed: number;
}

/** Inserts the payouts whose slots are new; returns the ids of those inserted. */
export async function insertPayouts(tx: Tx, list: PayoutInput[]): Promise<number[]> {
  if (list.length === 0) return [];
  const rows = await tx<Array<{ id: number }>>`
    INSERT INTO engagement_payouts (slot, user_id, biz_type, biz_id, direction, points, rule, source_op_id, level, base, push)
    SELECT t.slot, t.user_id, t.biz_type, t.biz_id, t.direction, t.points, t.rule::boolean, t.source_op_id, t.level, t.base,
           NULLIF(t.push, '')::jsonb
    FROM unnest(
      ${list.map((p) => p.slot)}::text[], ${list.map((p) => p.userId)}::bigint[], ${list.map((p) => p.bizType)}::text[],
      ${list.map((p) => p.bizId)}::text[], ${list.map((p) => p.direction)}::text[], ${list.map((p) => p.points)}::bigint[],
      ${list.map((p) => (p.rule ? 'true' : 'false'))}::text[], ${list.map((p) => p.sourceOpId ?? null)}::text[],
      ${list.map((p) => p.level ?? null)}::int[], ${list.map((p) => p.base ?? null)}::bigint[],
      ${list.map((p) => (p.push ? JSON.stringify(p.push) : ''))}::text[]
    ) AS t(slot, user_id, biz_type, biz_id, direction, points, rule, source_op_id, level, base, push)
    ORDER BY t.slot
    ON CONFLICT (slot) DO NOTHING
    RETURNING id`;
  return rows.map((r) => r.id);
}

export class PayoutService {
  constructor(
    private readonly d: {
      sql: Sql;
      points: PointsService;
      pushes: PushService;
      /** Lifetime of the lots payouts credit. */
      expiryDays: number;
      log?: { warn(obj: object, msg: string): void };
    },
  ) {}

  /**
   * Pays every pending payout, oldest first, `page` rows at a time. A commission's later rows (a
   * reversal) wait while an earlier row of the same redemption and level failed in this run, so a
   * reversal never runs ahead of the credit it reverses.
   */
  async payPending(page: number): Promise<PayResult> {
    const held = new Set<string>();
    const out: PayResult = { paid: 0, failed: 0 };
    let after = 0;
    for (;;) {
      const rows = await this.d.sql<Array<{ id: number; sourceOpId: string | null; level: number | null }>>`
        SELECT id, source_op_id AS "sourceOpId", level FROM engagement_payouts
        WHERE status = 'pending' AND id > ${after} ORDER BY id LIMIT ${page}`;
      for (const r of rows) {
        const chain = r.sourceOpId === null ? null : `${r.sourceOpId}:${r.level}`;
        if (chain !== null && held.has(chain)) continue;
        const outcome = await this.pay(r.id);
        if (outcome === 'paid') out.paid++;
        if (outcome === 'failed') {
          out.failed++;
          if (chain !== null) held.add(chain);
        }
      }
      if (rows.length < page) return out;
      after = rows[rows.length - 1].id;
    }
  }

  /** Pays these payouts now (the API after a sign-up); whatever fails is left to the engagement role. */
  async payNow(ids: number[]): Promise<void> {
    for (const id of ids) await this.pay(id);
  }

  /** 'skipped': already paid, or another payer holds it right now. */
  async pay(id: number): Promise<'paid' | 'skipped' | 'failed'> {
    try {
      return await this.d.sql.begin(async (tx) => {
        const [p] = await tx<PayoutRow[]>`
          SELECT id, slot, user_id AS "userId", biz_type AS "bizType", biz_id AS "bizId", direction, points, rule, push
          FROM engagement_payouts WHERE id = ${id} AND status = 'pending' FOR UPDATE SKIP LOCKED`;
        if (!p) return 'skipped' as const;
        const done = p.direction === 'credit' ? await this.credit(tx, p) : await this.debit(tx, p);
        if (p.push && done.settled > 0) {
          await this.d.pushes.enqueue(p.userId, {
            type: p.push.type,
            title: p.push.title,
            body: p.push.body.replaceAll('{points}', String(done.settled)),
            data: { bizType: p.bizType, bizId: p.bizId },
            dedupeKey: `payout:${p.slot}`,
          });
        }
        await tx`
          UPDATE engagement_payouts
          SET status = 'paid', op_id = ${done.opId}, settled = ${done.settled}, paid_at = now(), attempts = attempts + 1,
              last_error = NULL
          WHERE id = ${p.id}`;
        return 'paid' as const;
      });
    } catch (err) {
      this.d.log?.warn({ err, payout: id }, 'payout not paid; retried on the next run');
      await this.d.sql`
        UPDATE engagement_payouts SET attempts = attempts + 1, last_error = ${String((err as Error).message).slice(0, 500)}
        WHERE id = ${id} AND status = 'pending'`.catch(() => {});
      return 'failed';
    }
  }

  /** The op the ledger holds for this slot's key, if it was persisted. */
  private async persisted(tx: Tx, p: PayoutRow, kh: string): Promise<{ opId: string; settled: number } | null> {
    const [row] = await tx<Array<{ opId: string; delta: number }>>`
      SELECT op_id AS "opId", delta FROM ledger_entries WHERE user_id = ${p.userId} AND idem_key = ${kh} LIMIT 1`;
    return row ? { opId: row.opId, settled: Math.abs(row.delta) } : null;
  }

  private async credit(tx: Tx, p: PayoutRow): Promise<{ opId: string | null; settled: number }> {
    const before = await this.persisted(tx, p, keyHash(p.slot, SYSTEM_SCOPE));
    if (before) return before;
    const input = { bizType: p.bizType, bizId: p.bizId, points: p.points, key: p.slot, expiryDays: this.d.expiryDays };
    const { op } = p.rule ? await this.d.points.creditRule(p.userId, input) : await this.d.points.creditPlain(p.userId, input);
    return { opId: op.opId, settled: op.delta };
  }

  /**
   * Takes back up to `points`, never more than the member can spend now: what is missing is the
   * shortfall (settled < points), not carried as a debt. The amount depends on the balance, so a
   * retry first looks for the op the slot's key already made instead of charging anew.
   */
  private async debit(tx: Tx, p: PayoutRow): Promise<{ opId: string | null; settled: number }> {
    const kh = keyHash(p.slot, SYSTEM_SCOPE);
    const before = (await this.persisted(tx, p, kh)) ?? (await this.recorded(p.userId, kh));
    if (before) return before;
    for (let attempt = 0; attempt < 3; attempt++) {
      const { available } = await this.d.points.balance(p.userId, 0);
      const amount = Math.min(p.points, Math.max(0, available));
      if (amount === 0) return { opId: null, settled: 0 };
      try {
        const hash = requestHash(`debit:${p.bizType}`, { bizId: p.bizId, points: amount });
        const { op } = await this.d.points.charge(p.userId, newOpId(), kh, hash, amount, DEBIT_TOKEN, {
          bizType: p.bizType,
          bizId: p.bizId,
        });
        return { opId: op.opId, settled: -op.delta };
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        if (err.code === 'IDEMPOTENCY_KEY_REUSED') {
          const made = await this.recorded(p.userId, kh);
          if (made) return made;
        }
        // INSUFFICIENT_POINTS: the member spent in between; decide the amount again
        if (err.code !== 'INSUFFICIENT_POINTS') throw err;
      }
    }
    throw new Error(`debit ${p.slot}: the balance kept moving`);
  }

  private async recorded(userId: number, kh: string): Promise<{ opId: string; settled: number } | null> {
    const rec = await this.d.points.findByKey(userId, kh);
    if (!rec || rec.kind === 'claim') return null;
    const op = rec as Op;
    return { opId: op.opId, settled: Math.abs(op.delta) };
  }
}
