/**
 * Open holds as Postgres records them (point_holds, written by the persist worker from freeze and
 * settlement ops), for putting a member's live state back into Redis: the frozen total, the hold
 * records, and the lot portions that are frozen (Postgres lots still count them; Redis lots do not).
 */
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { ChainableCommander } from 'ioredis';

export interface OpenHold {
  id: string;
  userId: number;
  amount: number;
  lots: Array<[string, number, number]>;
  bizType: string;
  bizId: string | null;
  requestHash: string | null;
  freezeOp: string;
  expiresAt: number;
  at: number;
}

export async function openHoldsOf(sql: Sql, userIds: number[]): Promise<Map<number, OpenHold[]>> {
  const rows = await sql<Array<Omit<OpenHold, 'expiresAt' | 'at'> & { expiresAt: Date | null; at: Date }>>`
    SELECT id, user_id AS "userId", amount, lots, biz_type AS "bizType", biz_id AS "bizId",
           request_hash AS "requestHash", freeze_op AS "freezeOp", expires_at AS "expiresAt", created_at AS at
    FROM point_holds WHERE state = 'frozen' AND user_id = ANY(${userIds}::bigint[])`;
  const out = new Map<number, OpenHold[]>();
  for (const r of rows) {
    const h: OpenHold = { ...r, expiresAt: r.expiresAt ? r.expiresAt.getTime() : 0, at: r.at.getTime() };
    const list = out.get(h.userId);
    if (list) list.push(h);
    else out.set(h.userId, [h]);
  }
  return out;
}

/** Lot remainders as Redis should hold them: Postgres remainders less the portions frozen by open holds. */
export function liveRemainders<L extends { id: string; remaining: number }>(lots: L[], holds: OpenHold[]): L[] {
  if (holds.length === 0) return lots;
  const frozen = new Map<string, number>();
  for (const h of holds) for (const [lotId, amount] of h.lots) frozen.set(lotId, (frozen.get(lotId) ?? 0) + Number(amount));
  return lots.map((l) => ({ ...l, remaining: l.remaining - (frozen.get(l.id) ?? 0) })).filter((l) => l.remaining > 0);
}

export function frozenTotal(holds: OpenHold[]): number {
  return holds.reduce((sum, h) => sum + h.amount, 0);
}

/** The hold record as the hold scripts keep it (lua/hold-5.lua). */
export function holdRecord(h: OpenHold): string {
  return JSON.stringify({
    id: h.id, userId: h.userId, amount: h.amount, lots: h.lots, state: 'frozen', at: h.at, expiresAt: h.expiresAt,
    bizType: h.bizType, bizId: h.bizId ?? '', h: h.requestHash ?? '', freezeOp: h.freezeOp,
  });
}

/** Queues the SET of each open hold's record (NX: a record already there is newer). */
export function restoreHoldRecords(tx: ChainableCommander, keys: Keys, holds: OpenHold[]): void {
  for (const h of holds) tx.set(keys.hold(h.userId, h.id), holdRecord(h), 'NX');
}
