/**
 * The one stock formula from the record: stock = units ever stocked (goods.total_stock) − units
 * sold (catalog redemptions not cancelled; goods won in a lottery come out of the prize's own
 * stock, not the catalog's). Used by the goods service (loading an item into Redis), the
 * rebuild, and reconcile (which asks for the units sold before an instant, leaving out ops it
 * counts as still in flight).
 */
import type { Sql, Tx } from '../db/client.ts';

export async function persistedSold(
  sql: Sql | Tx,
  goodsIds: number[],
  o: { beforeMs?: Map<number, number>; excludeOpIds?: string[] } = {},
): Promise<Map<number, number>> {
  if (goodsIds.length === 0) return new Map();
  const before = goodsIds.map((id) => o.beforeMs?.get(id) ?? null);
  const rows = await sql<Array<{ goodsId: number; sold: number }>>`
    SELECT g.id AS "goodsId", COALESCE(SUM(r.quantity), 0)::bigint AS sold
    FROM unnest(${goodsIds}::bigint[], ${before}::bigint[]) AS g(id, t)
    LEFT JOIN redemptions r ON r.goods_id = g.id AND r.status <> 'cancelled' AND r.source = 'order'
      AND (g.t IS NULL OR r.created_at < to_timestamp(g.t / 1000.0))
      AND NOT (r.op_id = ANY(${o.excludeOpIds ?? []}::text[]))
    GROUP BY g.id`;
  return new Map(rows.map((r) => [r.goodsId, r.sold]));
}

export function stockFromRecord(totalStock: number, sold: number): number {
  return totalStock - sold;
}
