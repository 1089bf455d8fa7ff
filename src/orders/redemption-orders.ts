/**
 * Redemptions as orders: every redemption (POST /v1/redemptions) is an order. Its orders row is
 * written lazily — by the persist worker for coupon and VIP goods (their rewards are issued by the
 * order pump), otherwise by the first transition of that order (src/orders/lifecycle.ts) — so a
 * flash sale's redemptions cost Postgres one row each. Until then, the member's and admin's order
 * views read the redemption itself (src/orders/service.ts).
 */
import type { Sql, Tx } from '../db/client.ts';

type Db = Tx | Sql;

/** Writes the orders rows of persisted redemptions, by op id (an order's first transition). */
export async function materializeRedemptionOrders(tx: Db, opIds: string[]): Promise<void> {
  await insertRedemptionOrders(
    tx,
    tx`SELECT r.op_id, r.exchange_no, r.user_id, r.goods_id, r.quantity, r.points_spent AS points, r.lots, r.created_at, g.type
       FROM redemptions r JOIN goods g ON g.id = r.goods_id
       WHERE r.id = ANY(${opIds}::text[]) AND r.source = 'order'`,
  );
}

/**
 * The persist worker's part: the orders rows of a batch's redemptions of coupon and VIP goods (the
 * rest are written on their first transition). Their goods are looked up first, once per item: a
 * batch with none (nearly every batch: a flash sale's, any batch of physical or virtual goods)
 * reads nothing back. One statement joining each redemption to its goods row cost Postgres more
 * than inserting the redemption: not knowing the id list's length, the planner scanned the goods
 * table once per redemption.
 */
export async function materializeRewardRedemptions(tx: Db, redemptions: Array<{ opId: string; goodsId: number }>): Promise<void> {
  const goodsIds = [...new Set(redemptions.map((r) => r.goodsId))];
  const rewards = await tx<Array<{ id: number; type: string }>>`
    SELECT id, type FROM goods WHERE id = ANY(${goodsIds}::bigint[]) AND type IN ('coupon', 'vip')`;
  if (rewards.length === 0) return;
  const typeOf = new Map(rewards.map((g) => [Number(g.id), g.type]));
  const picked = redemptions.filter((r) => typeOf.has(r.goodsId));
  await insertRedemptionOrders(
    tx,
    tx`SELECT r.op_id, r.exchange_no, r.user_id, r.goods_id, r.quantity, r.points_spent AS points, r.lots, r.created_at, k.type
       FROM unnest(${picked.map((r) => r.opId)}::text[], ${picked.map((r) => typeOf.get(r.goodsId)!)}::text[]) AS k(id, type)
       JOIN redemptions r ON r.id = k.id
       WHERE r.source = 'order'`,
  );
}

/**
 * The orders rows (id = op id, orderNo = exchange number) of the redemptions `source` selects
 * (op_id, exchange_no, user_id, goods_id, quantity, points, lots, created_at, type), paid at once:
 * virtual, coupon and VIP goods complete at payment, the rest wait to be shipped. Their spent
 * lots are what a refund gives back; their history's first entries are implied by the row.
 */
async function insertRedemptionOrders(tx: Db, source: ReturnType<Db>): Promise<void> {
  await tx`
    WITH t AS (${source}),
    o AS (
      INSERT INTO orders (id, order_no, user_id, source, status, points_total, spend_op_id, spent_lots, points_state,
                          stock_state, rewards_state, unsettled, created_at, updated_at, paid_at, completed_at)
      SELECT t.op_id, t.exchange_no, t.user_id, 'redemption',
             CASE WHEN t.type IN ('virtual', 'coupon', 'vip') THEN 'completed' ELSE 'paid' END,
             -- redemptions persisted before lots were recorded: their points come back as a new lot (the grace period)
             t.points, t.op_id, COALESCE(t.lots, jsonb_build_array(jsonb_build_array(t.op_id || ':pre', t.points, 0))), 'captured', 'sold',
             CASE WHEN t.type IN ('coupon', 'vip') THEN 'pending' ELSE 'none' END, t.type IN ('coupon', 'vip'),
             t.created_at, now(), t.created_at, CASE WHEN t.type IN ('virtual', 'coupon', 'vip') THEN t.created_at END
      FROM t
      ON CONFLICT (id) DO NOTHING
      RETURNING id)
    INSERT INTO order_items (order_id, position, goods_id, goods_type, quantity, unit_points)
    SELECT t.op_id, 1, t.goods_id, t.type, t.quantity, t.points / t.quantity FROM t JOIN o ON o.id = t.op_id
    ON CONFLICT DO NOTHING`;
}
