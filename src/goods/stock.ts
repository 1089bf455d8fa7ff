/**
 * The one stock formula from the record: stock = units ever stocked (goods.total_stock) − units
 * sold (catalog redemptions not cancelled, and the units of orders that took stock and have not
 * given it back; goods won in a lottery come out of the prize's own stock, not the catalog's).
 * Used by the goods service (loading an item into Redis), the rebuild, and reconcile (which asks
 * for the units redeemed before an instant, leaving out ops it counts as still in flight, and
 * counts orders' units from Redis's own record of them, read with the stock: `orders: false`).
 */
import type { Sql, Tx } from '../db/client.ts';

export async function persistedSold(
  sql: Sql | Tx,
  goodsIds: number[],
  o: { beforeMs?: Map<number, number>; excludeOpIds?: string[]; orders?: boolean } = {},
): Promise<Map<number, number>> {
  if (goodsIds.length === 0) return new Map();
  const before = goodsIds.map((id) => o.beforeMs?.get(id) ?? null);
  const rows = await sql<Array<{ goodsId: number; sold: number }>>`
    SELECT g.id AS "goodsId", COALESCE(SUM(r.quantity), 0)::bigint AS sold
    FROM unnest(${goodsIds}::bigint[], ${before}::bigint[]) AS g(id, t)
    LEFT JOIN redemptions r ON r.goods_id = g.id AND r.status <> 'cancelled' AND r.source = 'order'
      AND (g.t IS NULL OR r.created_at < to_timestamp(g.t / 1000.0))
      AND NOT (r.id = ANY(${o.excludeOpIds ?? []}::text[]))
    GROUP BY g.id`;
  const sold = new Map(rows.map((r) => [r.goodsId, r.sold]));
  if (o.orders === false) return sold;
  for (const [goodsId, units] of await orderedUnits(sql, goodsIds)) sold.set(goodsId, (sold.get(goodsId) ?? 0) + units);
  return sold;
}

/** Units orders took and hold for good (stock_state 'sold'), per goods item. */
export async function orderedUnits(sql: Sql | Tx, goodsIds: number[]): Promise<Map<number, number>> {
  const rows = await sql<Array<{ goodsId: number; units: number }>>`
    SELECT i.goods_id AS "goodsId", SUM(i.quantity)::bigint AS units
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE i.goods_id = ANY(${goodsIds}::bigint[]) AND o.source = 'order' AND o.stock_state = 'sold'
    GROUP BY i.goods_id`;
  return new Map(rows.map((r) => [r.goodsId, Number(r.units)]));
}

export function stockFromRecord(totalStock: number, sold: number): number {
  return totalStock - sold;
}
