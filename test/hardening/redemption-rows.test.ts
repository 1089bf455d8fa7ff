/**
 * A redemption's row is keyed by its op id (redemptions.id = op_id, a CHECK constraint): the
 * primary key is what makes a redelivered persist job harmless, with no second unique index on
 * op_id to pay for on every insert.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { persistBatch } from '../../src/persistence/persist-batch.ts';
import type { Op } from '../../src/points/op.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

function redemptionOp(userId: number, n: number, goodsId = 7): Op {
  const at = Date.now();
  return {
    opId: `rr${userId}x${n}`.padEnd(32, '0'), kind: 'spend', userId, delta: -10, balanceAfter: 90, available: 90,
    bizType: 'redemption', bizId: String(goodsId), at, h: 'h', goodsId, quantity: 1, exchangeNo: `EXRR${userId}X${n}`,
    lots: [[`lot${userId}`, 10, at + 86_400_000]],
  };
}

describe('redemption rows', () => {
  it('a batch persisted twice, and twice at once, leaves one row per redemption with id = op_id', async () => {
    const [m] = await ctx.createMembers(1);
    const ops = [0, 1, 2].map((n) => redemptionOp(m.id, n));
    await persistBatch(ctx.sql, ops);
    await persistBatch(ctx.sql, ops);
    // a redelivery racing the first delivery: both transactions insert the same keys
    const other = postgres(`${ctx.env.DATABASE_URL}`, { max: 2, onnotice: () => {} });
    try {
      const more = [3, 4].map((n) => redemptionOp(m.id, n));
      const results = await Promise.all([persistBatch(ctx.sql, more), persistBatch(other as never, more)]);
      expect(results.map((r) => r.inserted).sort()).toEqual([0, 2]);
    } finally {
      await other.end();
    }
    const rows = await ctx.sql<Array<{ id: string; op_id: string }>>`
      SELECT id, op_id FROM redemptions WHERE user_id = ${m.id} ORDER BY id`;
    expect(rows.map((r) => r.id)).toEqual([0, 1, 2, 3, 4].map((n) => redemptionOp(m.id, n).opId));
    expect(rows.every((r) => r.op_id === r.id)).toBe(true);
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = ${m.id}`;
    expect(n).toBe(5);
  });

  it('a batch writes the orders rows of its coupon and VIP redemptions at once, each once, and of no other goods', async () => {
    const [m] = await ctx.createMembers(1);
    const coupon = await ctx.createGoods({ type: 'coupon', couponValidDays: 10 });
    const vip = await ctx.createGoods({ type: 'vip', vipDays: 30 });
    const physical = await ctx.createGoods({ type: 'physical' });
    const virtual = await ctx.createGoods({ type: 'virtual' });
    // a coupon flash (several redemptions of one item) mixed with the other kinds, in one batch
    const ops = [coupon.id, physical.id, coupon.id, vip.id, virtual.id, coupon.id].map((g, n) => redemptionOp(m.id, 10 + n, g));
    await persistBatch(ctx.sql, ops);
    await persistBatch(ctx.sql, ops);
    const rows = await ctx.sql<Array<{ id: string; status: string; rewardsState: string; goodsId: number; goodsType: string }>>`
      SELECT o.id, o.status, o.rewards_state AS "rewardsState", i.goods_id AS "goodsId", i.goods_type AS "goodsType"
      FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = ${m.id} ORDER BY o.id`;
    const expected = ops
      .filter((o) => o.goodsId === coupon.id || o.goodsId === vip.id)
      .map((o) => ({
        id: o.opId, status: 'completed', rewardsState: 'pending', goodsId: o.goodsId, goodsType: o.goodsId === coupon.id ? 'coupon' : 'vip',
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(rows).toEqual(expected);
  });

  it('a row whose op_id is not its id is refused', async () => {
    const [m] = await ctx.createMembers(1);
    await expect(
      ctx.sql`
        INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, created_at)
        VALUES ('r-one', 'r-other', 'EX-MISMATCH', ${m.id}, 7, 1, 10, now())`,
    ).rejects.toThrow(/redemptions_op_id_is_id/);
  });
});
