/**
 * The persist worker's part for draws, run for the ops a batch inserted for the first time (so
 * exactly once per draw, in the transaction that writes its ledger rows): a lottery_draws row per
 * draw (its spend op), and for a goods prize a confirmed redemption — id and op id = the draw id,
 * 0 points spent, source 'lottery' (it comes out of the prize's stock, not the catalog's).
 */
import type { Tx } from '../db/client.ts';
import type { Op } from '../points/op.ts';
import type { DrawOp } from './service.ts';

export async function insertDraws(tx: Tx, ops: Op[]): Promise<void> {
  const draws = ops.filter((o): o is DrawOp => o.kind === 'spend' && o.bizType === 'lottery');
  if (draws.length === 0) return;
  await tx`
    INSERT INTO lottery_draws (draw_id, lottery_id, user_id, cost, prize_id, prize_name, prize_kind, prize_points,
                               prize_goods_id, day, created_at)
    SELECT t.draw_id, t.lottery_id, t.user_id, t.cost, t.prize_id, t.prize_name, t.prize_kind, t.prize_points,
           t.prize_goods_id, t.day, to_timestamp(t.at / 1000.0)
    FROM unnest(${draws.map((d) => d.opId)}::text[], ${draws.map((d) => d.lotteryId!)}::int[],
                ${draws.map((d) => d.userId)}::bigint[], ${draws.map((d) => -d.delta)}::bigint[],
                ${draws.map((d) => d.prize!.id)}::int[], ${draws.map((d) => d.prize!.name)}::text[],
                ${draws.map((d) => d.prize!.kind)}::text[], ${draws.map((d) => d.prize!.points ?? 0)}::bigint[],
                ${draws.map((d) => d.prize!.goodsId ?? null)}::bigint[], ${draws.map((d) => d.day!)}::int[],
                ${draws.map((d) => d.at)}::bigint[])
      AS t(draw_id, lottery_id, user_id, cost, prize_id, prize_name, prize_kind, prize_points, prize_goods_id, day, at)
    ORDER BY t.draw_id
    ON CONFLICT (draw_id) DO NOTHING`;
  const goods = draws.filter((d) => d.prize!.kind === 'goods');
  if (goods.length === 0) return;
  await tx`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, status, source, created_at)
    SELECT t.draw_id, t.draw_id, t.exchange_no, t.user_id, t.goods_id, 1, 0, 'confirmed', 'lottery', to_timestamp(t.at / 1000.0)
    FROM unnest(${goods.map((d) => d.opId)}::text[], ${goods.map((d) => d.exchangeNo ?? '')}::text[],
                ${goods.map((d) => d.userId)}::bigint[], ${goods.map((d) => d.prize!.goodsId!)}::bigint[],
                ${goods.map((d) => d.at)}::bigint[])
      AS t(draw_id, exchange_no, user_id, goods_id, at)
    ORDER BY t.draw_id
    ON CONFLICT (id) DO NOTHING`;
}
