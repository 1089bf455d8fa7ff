/**
 * The one definition of an item's popularity: its catalog redemptions (lottery prizes and
 * cancelled ones left out) in the 7 days before an instant. The `popular` sort of the goods
 * listing, the hot list the catalog role keeps in Redis, and quick options' `redeemedLast7Days`
 * all count it this way; the recommendations model (src/recommendations/model.ts) reads members'
 * histories with the same notion of a redemption (`countedRedemption`).
 */
import type { Sql, Tx } from '../db/client.ts';

export const POPULAR_WINDOW_MS = 7 * 86_400_000;

/** The condition on `redemptions r` that it counts at all: a catalog redemption, not cancelled. */
export function countedRedemption(sql: Sql | Tx) {
  return sql`r.source = 'order' AND r.status <> 'cancelled'`;
}

/** The condition on `redemptions r` of the window ending at `asOfMs` (exclusive). */
export function inPopularWindow(sql: Sql | Tx, asOfMs: number) {
  return sql`${countedRedemption(sql)}
    AND r.created_at >= to_timestamp(${asOfMs - POPULAR_WINDOW_MS}::bigint / 1000.0)
    AND r.created_at < to_timestamp(${asOfMs}::bigint / 1000.0)`;
}

/** Redemptions in the window of each goods id (0 when none). */
export async function recentRedemptions(sql: Sql | Tx, goodsIds: number[], asOfMs: number): Promise<Map<number, number>> {
  if (goodsIds.length === 0) return new Map();
  const rows = await sql<Array<{ goodsId: number; n: number }>>`
    SELECT r.goods_id AS "goodsId", count(*)::bigint AS n FROM redemptions r
    WHERE r.goods_id = ANY(${goodsIds}::bigint[]) AND ${inPopularWindow(sql, asOfMs)}
    GROUP BY r.goods_id`;
  const counts = new Map(goodsIds.map((id) => [id, 0]));
  for (const r of rows) counts.set(r.goodsId, r.n);
  return counts;
}
