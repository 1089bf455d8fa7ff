/**
 * Writes a batch of ops to Postgres in one transaction, one statement per table:
 * ledger rows first (ON CONFLICT (op_id) DO NOTHING RETURNING op_id), then — for the ops that
 * were new — account totals, lots, redemptions, lottery draws (src/lottery/persist.ts), transfers
 * (src/transfers/persist.ts) and audit rows. Running the same batch twice
 * (a redelivered job, a relay re-adding after a crash) changes nothing the second time.
 * Account and lot updates are sums, so batches may be applied in any order.
 */
import type { Sql, Tx } from '../db/client.ts';
import { materializeRewardRedemptions } from '../orders/redemption-orders.ts';
import { persistRiskFindings } from '../risk/events.ts';
import { lotsOf, restoredOf, newLotsOf, type Op } from '../points/op.ts';
import { findConflicts, recordConflicts, type OpConflict } from '../recovery/op-conflicts.ts';
import { checkLifetime, holdEpochShared } from '../recovery/redis-epoch.ts';
import { insertDraws } from '../lottery/persist.ts';
import { upsertTransfers } from '../transfers/persist.ts';

export interface PersistResult {
  inserted: number;
  duplicates: number;
  /** Duplicates whose op id was already taken by ANOTHER op: alarms (src/recovery/op-conflicts.ts). */
  conflicts: number;
  conflictList?: OpConflict[];
  /** The ops this run wrote (not already persisted): what moved, counted once (src/metrics/points.ts). */
  applied: Op[];
}

/**
 * `marks`: highest outbox stream id per partition in this batch; `runId`: the Redis lifetime the
 * relay read it from (both from the relay).
 */
export async function persistBatch(sql: Sql, ops: Op[], marks: Record<number, string> = {}, runId?: string): Promise<PersistResult> {
  if (ops.length === 0) return { inserted: 0, duplicates: 0, conflicts: 0, applied: [] };
  return sql.begin((tx) => writeBatch(tx, ops, marks, runId));
}

/** The batch's statements inside the caller's transaction. */
export async function writeBatch(tx: Tx, ops: Op[], marks: Record<number, string> = {}, runId?: string): Promise<PersistResult> {
  const unique = [...new Map(ops.map((o) => [o.opId, o])).values()].sort((a, b) => (a.opId < b.opId ? -1 : 1));
  // shared: batches never wait for each other; a Redis verification (exclusive) waits for them
  await holdEpochShared(tx);
  const rows = await tx<Array<{ op_id: string }>>`
    INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, request_hash, idem_key, created_at)
    SELECT t.op_id, t.user_id, t.delta, t.balance_after, t.kind, t.biz_type, t.biz_id, t.h, t.k, to_timestamp(t.at / 1000.0)
    FROM unnest(
      ${unique.map((o) => o.opId)}::text[], ${unique.map((o) => o.userId)}::bigint[],
      ${unique.map((o) => o.delta)}::bigint[], ${unique.map((o) => o.balanceAfter)}::bigint[],
      ${unique.map((o) => o.kind)}::text[], ${unique.map((o) => o.bizType)}::text[],
      ${unique.map((o) => o.bizId)}::text[], ${unique.map((o) => o.h ?? null)}::text[],
      ${unique.map((o) => o.k ?? null)}::text[], ${unique.map((o) => o.at)}::bigint[]
    ) AS t(op_id, user_id, delta, balance_after, kind, biz_type, biz_id, h, k, at)
    ORDER BY t.op_id
    ON CONFLICT (op_id) DO NOTHING
    RETURNING op_id`;
  await appendMarks(tx, marks);
  if (runId) await checkLifetime(tx, runId, marks);
  const fresh = new Set(rows.map((r) => r.op_id));
  const applied = unique.filter((o) => fresh.has(o.opId));
  if (applied.length > 0) {
    await applyAccounts(tx, applied);
    await applyLots(tx, applied);
    await applyHolds(tx, applied);
    await persistRiskFindings(tx, applied);
    await insertRedemptions(tx, applied);
    await insertDraws(tx, applied);
    await upsertTransfers(tx, applied);
    await insertAudits(tx, applied);
  }
  const conflicts = await findConflicts(tx, unique.filter((o) => !fresh.has(o.opId)));
  await recordConflicts(tx, conflicts);
  return {
    inserted: applied.length,
    duplicates: ops.length - applied.length,
    conflicts: conflicts.length,
    applied,
    ...(conflicts.length > 0 ? { conflictList: conflicts } : {}),
  };
}

/** Whether an op counts toward the member's tier: earns, unless marked otherwise (lt: 0). */
export function countsTowardTier(o: Op): boolean {
  return o.kind === 'earn' && o.lt !== 0;
}

async function applyAccounts(tx: Tx, ops: Op[]): Promise<void> {
  const byUser = new Map<number, { delta: number; earned: number; tier: number }>();
  for (const o of ops) {
    const a = byUser.get(o.userId) ?? { delta: 0, earned: 0, tier: 0 };
    a.delta += o.delta;
    if (countsTowardTier(o)) a.earned += o.delta;
    if (typeof o.tier === 'number') a.tier = Math.max(a.tier, o.tier);
    byUser.set(o.userId, a);
  }
  const users = [...byUser.keys()].sort((a, b) => a - b);
  await tx`
    INSERT INTO point_accounts (user_id, available, total_earned, tier)
    SELECT * FROM unnest(${users}::bigint[], ${users.map((u) => byUser.get(u)!.delta)}::bigint[],
                         ${users.map((u) => byUser.get(u)!.earned)}::bigint[], ${users.map((u) => byUser.get(u)!.tier)}::int[])
    ON CONFLICT (user_id) DO UPDATE SET
      available = point_accounts.available + EXCLUDED.available,
      total_earned = point_accounts.total_earned + EXCLUDED.total_earned,
      tier = GREATEST(point_accounts.tier, EXCLUDED.tier),
      updated_at = now()`;
}

/**
 * Earns add a lot (or the lots they list); spends and expiries take from the lots they touched.
 * Aggregated per lot id first. A freeze moves nothing in the record (the member still owns the
 * points: the hold remembers the portions); a hold's settlement only moves portions whose own lot
 * expired meanwhile to a new lot; a refund adds every portion it gives back.
 */
async function applyLots(tx: Tx, ops: Op[]): Promise<void> {
  const lots = new Map<string, { userId: number; amount: number; remaining: number; expiresAt: number }>();
  const touch = (id: string, userId: number, amount: number, remaining: number, expiresAt: number) => {
    const l = lots.get(id) ?? { userId, amount: 0, remaining: 0, expiresAt };
    l.amount += amount;
    l.remaining += remaining;
    l.expiresAt = expiresAt;
    lots.set(id, l);
  };
  for (const o of ops) {
    if (o.kind === 'earn' && o.expiresAt) touch(o.opId, o.userId, o.delta, o.delta, o.expiresAt);
    for (const [lotId, points, expiresAt] of newLotsOf(o)) touch(lotId, o.userId, points, points, expiresAt);
    if (o.kind !== 'freeze') for (const [lotId, taken, expiresAt] of lotsOf(o)) touch(lotId, o.userId, 0, -taken, expiresAt);
    for (const [lotId, amount, expiresAt, from] of restoredOf(o)) {
      if (o.kind === 'refund') touch(lotId, o.userId, from ? amount : 0, amount, expiresAt);
      else if (from) {
        touch(from, o.userId, 0, -amount, expiresAt);
        touch(lotId, o.userId, amount, amount, expiresAt);
      }
    }
  }
  if (lots.size === 0) return;
  const ids = [...lots.keys()].sort();
  const v = ids.map((id) => lots.get(id)!);
  await tx`
    INSERT INTO point_lots (id, user_id, amount, remaining, expires_at)
    SELECT t.id, t.user_id, t.amount, t.remaining, to_timestamp(t.expires_at / 1000.0)
    FROM unnest(${ids}::text[], ${v.map((l) => l.userId)}::bigint[], ${v.map((l) => l.amount)}::bigint[],
                ${v.map((l) => l.remaining)}::bigint[], ${v.map((l) => l.expiresAt)}::bigint[])
      AS t(id, user_id, amount, remaining, expires_at)
    ON CONFLICT (id) DO UPDATE SET
      amount = point_lots.amount + EXCLUDED.amount,
      remaining = point_lots.remaining + EXCLUDED.remaining`;
}

/** Holds as the record keeps them: opened by a freeze, closed by its capture or release. */
async function applyHolds(tx: Tx, ops: Op[]): Promise<void> {
  const opened = ops.filter((o) => o.kind === 'freeze' && o.holdId);
  const closed = ops.filter((o) => (o.kind === 'unfreeze' || (o.kind === 'spend' && o.holdId)) && o.holdId);
  if (opened.length > 0) {
    await tx`
      INSERT INTO point_holds (id, user_id, amount, lots, biz_type, biz_id, request_hash, freeze_op, state, expires_at, created_at)
      SELECT t.id, t.user_id, t.amount, t.lots::jsonb, t.biz_type, t.biz_id, t.h, t.op_id, 'frozen',
             CASE WHEN t.expires_at > 0 THEN to_timestamp(t.expires_at / 1000.0) END, to_timestamp(t.at / 1000.0)
      FROM unnest(${opened.map((o) => o.holdId!)}::text[], ${opened.map((o) => o.userId)}::bigint[],
                  ${opened.map((o) => o.amount ?? 0)}::bigint[], ${opened.map((o) => JSON.stringify(lotsOf(o)))}::text[],
                  ${opened.map((o) => o.bizType)}::text[], ${opened.map((o) => o.bizId)}::text[],
                  ${opened.map((o) => o.h ?? null)}::text[], ${opened.map((o) => o.opId)}::text[],
                  ${opened.map((o) => o.holdExpiresAt ?? 0)}::bigint[], ${opened.map((o) => o.at)}::bigint[])
        AS t(id, user_id, amount, lots, biz_type, biz_id, h, op_id, expires_at, at)
      ON CONFLICT (id) DO UPDATE SET lots = EXCLUDED.lots, request_hash = EXCLUDED.request_hash,
        freeze_op = EXCLUDED.freeze_op, expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at`;
  }
  for (const o of closed) {
    // the settlement may persist before its freeze (batches commit in any order): the row waits
    await tx`
      INSERT INTO point_holds (id, user_id, amount, lots, biz_type, biz_id, state, captured, settled_at, created_at)
      VALUES (${o.holdId!}, ${o.userId}, ${o.amount ?? 0}, '[]'::jsonb, ${o.bizType}, ${o.bizId},
              ${o.kind === 'spend' ? 'captured' : 'released'}, ${-o.delta}, to_timestamp(${o.at} / 1000.0), to_timestamp(${o.at} / 1000.0))
      ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, captured = EXCLUDED.captured, settled_at = EXCLUDED.settled_at`;
  }
}

async function insertRedemptions(tx: Tx, ops: Op[]): Promise<void> {
  const r = ops.filter((o) => o.kind === 'spend' && o.bizType === 'redemption');
  if (r.length === 0) return;
  // a redemption is an order too; its orders row is written when something happens to it (a
  // transition: src/orders/lifecycle.ts), or here at once for coupon and VIP goods, whose rewards
  // the order pump issues: a flash sale's redemptions cost one row each, as before
  await tx`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, status, lots, created_at)
    SELECT t.op_id, t.op_id, t.exchange_no, t.user_id, t.goods_id, t.quantity, t.points, 'confirmed', t.lots::jsonb,
           to_timestamp(t.at / 1000.0)
    FROM unnest(${r.map((o) => o.opId)}::text[], ${r.map((o) => o.exchangeNo ?? '')}::text[],
                ${r.map((o) => o.userId)}::bigint[], ${r.map((o) => Number(o.goodsId))}::bigint[],
                ${r.map((o) => Number(o.quantity))}::int[], ${r.map((o) => -o.delta)}::bigint[],
                ${r.map((o) => JSON.stringify(lotsOf(o)))}::text[], ${r.map((o) => o.at)}::bigint[])
      AS t(op_id, exchange_no, user_id, goods_id, quantity, points, lots, at)
    ON CONFLICT (id) DO NOTHING`;
  await materializeRewardRedemptions(tx, r.map((o) => ({ opId: o.opId, goodsId: Number(o.goodsId) })));
}

/** Admin points ops (grants, integrator holds) audited from the op, with the admin request's context it carries. */
async function insertAudits(tx: Tx, ops: Op[]): Promise<void> {
  const a = ops.filter((o) => o.bizType === 'grant' || (o.kind === 'freeze' && o.bizType === 'hold' && o.actorId !== undefined));
  if (a.length === 0) return;
  await tx`
    INSERT INTO audit_log (op_id, actor_id, action, target_type, target_id, data, ip, user_agent, request_id, created_at)
    SELECT t.op_id, t.actor_id, t.action, 'user', t.user_id::text,
           jsonb_build_object('amount', t.amount, 'reason', t.reason), t.ip, t.ua, t.rid, to_timestamp(t.at / 1000.0)
    FROM unnest(${a.map((o) => o.opId)}::text[], ${a.map((o) => o.actorId ?? null)}::bigint[],
                ${a.map((o) => (o.bizType === 'grant' ? 'points.grant' : 'points.hold'))}::text[],
                ${a.map((o) => o.userId)}::bigint[], ${a.map((o) => (o.bizType === 'grant' ? o.delta : (o.amount ?? Math.abs(o.delta))))}::bigint[],
                ${a.map((o) => o.reason ?? '')}::text[], ${a.map((o) => o.ip ?? null)}::text[], ${a.map((o) => o.ua ?? null)}::text[],
                ${a.map((o) => o.rid ?? null)}::text[], ${a.map((o) => o.at)}::bigint[])
      AS t(op_id, actor_id, action, user_id, amount, reason, ip, ua, rid, at)
    ON CONFLICT (op_id) DO NOTHING`;
}

/**
 * The batch's highest stream id per partition, appended (never upserted: every relay job covers
 * every partition, and an upserted row per partition made concurrent batches wait on each other's
 * commit). The reconcile role folds these rows into outbox_watermarks.
 */
async function appendMarks(tx: Tx, marks: Record<number, string>): Promise<void> {
  const parts = Object.keys(marks).map(Number).sort((a, b) => a - b);
  if (parts.length === 0) return;
  const ids = parts.map((p) => marks[p].split('-').map(Number));
  await tx`
    INSERT INTO outbox_marks (partition, ms, seq)
    SELECT * FROM unnest(${parts}::int[], ${ids.map((i) => i[0])}::bigint[], ${ids.map((i) => i[1])}::bigint[])`;
}
