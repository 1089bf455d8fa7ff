/**
 * An order's side effects, driven to match its committed status. Each step is idempotent (a Lua
 * script keyed by the order, a Postgres row keyed by the order) and records how far it got in the
 * order's state columns with a conditional UPDATE, so whoever runs it — the request that moved the
 * order, or the order pump after that process died — finishes the job exactly once:
 *
 *   paid | shipped | completed, points frozen   → capture the hold (a `spend` op)    → captured
 *   paid, virtual goods only                     → completed
 *   paid | shipped | completed, rewards pending → coupons and VIP periods            → issued
 *   completed, earn pending                      → purchase earn (1 point per 1.00 paid, × tier)
 *   cancelled | refunded, points frozen          → release the hold (`unfreeze`)      → released
 *   cancelled | refunded, points captured        → refund op: the spent lots back     → refunded
 *   cancelled | refunded, stock sold             → units back to stock, bought counts → returned
 *   refunded, rewards issued                     → coupons and VIP periods revoked    → revoked
 *   refunded, earn credited                      → the purchase earn taken back, as far as the
 *                                                  member still has it (the rest is a shortfall in the audit)
 */
import type postgres from 'postgres';
import type { Deps } from '../deps.ts';
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { HoldRecord, HoldService } from '../points/holds.ts';
import { keyHash, newOpId, requestHash } from '../points/idempotency.ts';
import type { Op } from '../points/op.ts';
import type { PointsService } from '../points/service.ts';
import { issueRewards, revokeRewards } from './rewards.ts';
import { move, type OrderStatus } from './lifecycle.ts';
import type { OrderStock } from './stock.ts';
import { recordAudit } from '../audit/log.ts';

const DAY_MS = 86_400_000;
const VIRTUAL_TYPES = new Set(['virtual', 'coupon', 'vip']);

export interface OrderRow {
  id: string;
  orderNo: string;
  userId: number;
  source: 'order' | 'redemption';
  status: OrderStatus;
  pointsTotal: number;
  pointsToUse: number;
  cashTotal: number;
  cashDue: number;
  holdId: string | null;
  spendOpId: string | null;
  spentLots: Array<[string, number, number]> | null;
  pointsState: 'none' | 'frozen' | 'captured' | 'released' | 'refunded';
  stockState: 'reserved' | 'sold' | 'returned';
  rewardsState: 'none' | 'pending' | 'issued' | 'revoked';
  earnState: 'none' | 'pending' | 'credited' | 'clawed_back';
  earnedPoints: number;
  createdAt: Date;
}

export interface OrderItemRow {
  position: number;
  goodsId: number;
  goodsType: string;
  quantity: number;
  unitPoints: number;
  unitCash: number;
}

export const ORDER_COLUMNS = (sql: Sql) => sql`
  id, order_no AS "orderNo", user_id AS "userId", source, status, points_total AS "pointsTotal",
  points_to_use AS "pointsToUse", cash_total AS "cashTotal", cash_due AS "cashDue", hold_id AS "holdId",
  spend_op_id AS "spendOpId", spent_lots AS "spentLots", points_state AS "pointsState", stock_state AS "stockState",
  rewards_state AS "rewardsState", earn_state AS "earnState", earned_points AS "earnedPoints", created_at AS "createdAt"`;

export async function loadOrder(sql: Sql, id: string): Promise<{ order: OrderRow; items: OrderItemRow[] } | null> {
  const [order] = await sql<OrderRow[]>`SELECT ${ORDER_COLUMNS(sql)} FROM orders WHERE id = ${id}`;
  if (!order) return null;
  const items = await sql<OrderItemRow[]>`
    SELECT position, goods_id AS "goodsId", goods_type AS "goodsType", quantity, unit_points AS "unitPoints", unit_cash AS "unitCash"
    FROM order_items WHERE order_id = ${id} ORDER BY position`;
  return { order, items };
}

/** The portions a capture of `captured` points spent: the hold's first ones, in order (as lua/hold-settle-6.lua splits them). */
export function spentPortions(hold: HoldRecord, captured: number): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = [];
  let need = captured;
  for (const [id, amount, exp] of hold.lots) {
    const take = Math.min(Number(amount), need);
    if (take > 0) out.push([id, take, Number(exp)]);
    need -= take;
  }
  return out;
}

export class OrderEffects {
  constructor(
    private readonly deps: Deps,
    private readonly points: PointsService,
    private readonly holds: HoldService,
    private readonly stock: OrderStock,
    private readonly log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void },
  ) {}

  /**
   * Runs every step the order's status calls for; returns the order as it ends up. Each step's
   * conditional UPDATE moves the copy in hand too; when one finds the row already moved (another
   * process got there), the order is read again.
   */
  async settle(orderId: string, known?: { order: OrderRow; items: OrderItemRow[] }): Promise<OrderRow | null> {
    let loaded = known ?? (await loadOrder(this.deps.sql, orderId));
    for (let round = 0; round < 12 && loaded; round++) {
      const moved = await this.step(loaded.order, loaded.items);
      if (!moved) {
        await this.caughtUp(loaded.order);
        return loaded.order;
      }
      if (this.stale.has(loaded.order)) loaded = await loadOrder(this.deps.sql, orderId);
    }
    return (await loadOrder(this.deps.sql, orderId))?.order ?? null;
  }

  /** Nothing left to do: off the pump's list, unless the row moved on meanwhile. */
  private async caughtUp(o: OrderRow): Promise<void> {
    await this.deps.sql`
      UPDATE orders SET unsettled = false
      WHERE id = ${o.id} AND unsettled AND status = ${o.status} AND points_state = ${o.pointsState} AND stock_state = ${o.stockState}
        AND rewards_state = ${o.rewardsState} AND earn_state = ${o.earnState}`;
  }

  /** One step; true when it changed something (the caller looks again). */
  private async step(o: OrderRow, items: OrderItemRow[]): Promise<boolean> {
    const live = o.status === 'paid' || o.status === 'shipped' || o.status === 'completed';
    const undone = o.status === 'cancelled' || o.status === 'refunded';
    if (live && o.pointsState === 'frozen') return this.capture(o);
    if (live && o.rewardsState === 'pending') return this.issue(o, items);
    if (o.status === 'paid' && items.length > 0 && items.every((i) => VIRTUAL_TYPES.has(i.goodsType))) {
      await this.completeVirtual(o);
      return true;
    }
    if (o.status === 'completed' && o.earnState === 'pending') return this.creditPurchase(o);
    if (undone) {
      if (o.pointsState === 'frozen') return this.release(o);
      if (o.pointsState === 'captured') return this.refundPoints(o);
      if (o.stockState !== 'returned') return this.returnStock(o, items);
      if (o.rewardsState === 'issued' || o.rewardsState === 'pending') return this.revoke(o);
      if (o.earnState === 'credited') return this.clawBack(o);
    }
    return false;
  }

  /** Copies in hand found behind their row (settles run concurrently: the mark is on the copy, not on this service). */
  private readonly stale = new WeakSet<OrderRow>();

  private static readonly FIELD = { points_state: 'pointsState', stock_state: 'stockState', rewards_state: 'rewardsState', earn_state: 'earnState' } as const;

  /** Moves one state column from `from` to `to` (conditionally) and the copy in hand with it; a row already moved marks the copy stale. */
  private async mark(o: OrderRow, column: 'points_state' | 'stock_state' | 'rewards_state' | 'earn_state', from: string, to: string, extra: Record<string, unknown> = {}) {
    const { sql } = this.deps;
    const rows = await sql`
      UPDATE orders SET ${sql(column)} = ${to}, updated_at = now()
        ${extra.spendOpId !== undefined ? sql`, spend_op_id = ${extra.spendOpId as string}, spent_lots = ${sql.json(extra.spentLots as postgres.JSONValue)}` : sql``}
        ${extra.earnedPoints !== undefined ? sql`, earned_points = ${extra.earnedPoints as number}` : sql``}
      WHERE id = ${o.id} AND ${sql(column)} = ${from} RETURNING 1`;
    if (rows.length === 0) {
      this.stale.add(o);
      return true;
    }
    (o as unknown as Record<string, unknown>)[OrderEffects.FIELD[column]] = to;
    if (extra.spendOpId !== undefined) {
      o.spendOpId = extra.spendOpId as string;
      o.spentLots = extra.spentLots as OrderRow['spentLots'];
    }
    if (extra.earnedPoints !== undefined) o.earnedPoints = extra.earnedPoints as number;
    return true;
  }

  private async capture(o: OrderRow): Promise<boolean> {
    const { hold } = await this.holds.settle(o.userId, o.holdId!, 'capture', undefined, {
      bizType: 'order', bizId: o.id, orderNo: o.orderNo,
    });
    const captured = hold.captured ?? hold.amount;
    return this.mark(o, 'points_state', 'frozen', 'captured', { spendOpId: hold.settleOp, spentLots: spentPortions(hold, captured) });
  }

  private async release(o: OrderRow): Promise<boolean> {
    try {
      await this.holds.settle(o.userId, o.holdId!, 'release', undefined, { bizType: 'order', bizId: o.id, orderNo: o.orderNo });
    } catch (err) {
      // captured just before the cancellation won (a payment racing the timeout): refund it instead
      if (err instanceof DomainError && err.code === 'HOLD_SETTLED') {
        const hold = await this.holds.record(o.userId, o.holdId!);
        if (hold && hold.state === 'captured') {
          return this.mark(o, 'points_state', 'frozen', 'captured', { spendOpId: hold.settleOp, spentLots: spentPortions(hold, hold.captured ?? hold.amount) });
        }
      }
      throw err;
    }
    return this.mark(o, 'points_state', 'frozen', 'released');
  }

  /** Gives the spent points back to their lots (lots that expired meanwhile come back for REFUND_GRACE_DAYS). */
  private async refundPoints(o: OrderRow): Promise<boolean> {
    const { redis, keys, env } = this.deps;
    const portions = o.spentLots ?? [];
    if (portions.length === 0 || portions.reduce((n, p) => n + Number(p[1]), 0) === 0) {
      return this.mark(o, 'points_state', 'captured', 'refunded');
    }
    const kh = keyHash(`refund:${o.id}`, 'sys');
    const reply = await this.points.withHydration(o.userId, () =>
      redis.pmRefund(
        keys.account(o.userId), keys.lotsByExpiry(o.userId), keys.lotRemaining(o.userId), keys.idem(o.userId, kh),
        keys.outboxOf(o.userId), keys.expiryIndexOf(o.userId),
        newOpId(), o.userId, JSON.stringify(portions), '', env.REFUND_GRACE_DAYS * DAY_MS,
        JSON.stringify({ bizId: o.spendOpId, orderId: o.id, orderNo: o.orderNo }),
        requestHash('refund', { orderId: o.id }), env.IDEMPOTENCY_TTL_SECONDS * 30, kh,
      ),
    );
    if (Number(reply[0]) !== 1) throw new Error(`refund of order ${o.id} failed: ${reply[0]}`);
    return this.mark(o, 'points_state', 'captured', 'refunded');
  }

  private async returnStock(o: OrderRow, items: OrderItemRow[]): Promise<boolean> {
    if (o.stockState === 'reserved') {
      // a placement undone before it took stock for good: give back what it took, if anything
      for (const i of items) await this.stock.giveBack(o.id, o.userId, i.goodsId, i.quantity);
    } else if (o.source === 'redemption') {
      // the units go back to the business day they counted on (its daily count, if still the day kept)
      for (const i of items) await this.stock.returnRedemption(o.id, o.userId, i.goodsId, i.quantity, o.createdAt);
      await this.deps.sql`UPDATE redemptions SET status = 'cancelled' WHERE id = ${o.id}`;
    } else {
      for (const i of items) await this.stock.giveBack(o.id, o.userId, i.goodsId, i.quantity);
    }
    return this.mark(o, 'stock_state', o.stockState, 'returned');
  }

  private async issue(o: OrderRow, items: OrderItemRow[]): Promise<boolean> {
    const done = await this.deps.sql.begin(async (tx) => {
      await issueRewards(tx, o, items);
      return tx`UPDATE orders SET rewards_state = 'issued', updated_at = now() WHERE id = ${o.id} AND rewards_state = 'pending' RETURNING 1`;
    });
    if (done.length > 0) o.rewardsState = 'issued';
    else this.stale.add(o);
    return true;
  }

  private async revoke(o: OrderRow): Promise<boolean> {
    await this.deps.sql.begin(async (tx) => {
      const r = await revokeRewards(tx, o.id);
      const [row] = await tx`UPDATE orders SET rewards_state = 'revoked', updated_at = now()
                             WHERE id = ${o.id} AND rewards_state IN ('issued', 'pending') RETURNING 1`;
      if (row) {
        await recordAudit(tx, { actorId: null, action: 'order.rewards_revoked', targetType: 'order', targetId: o.id, data: r });
      }
    });
    o.rewardsState = 'revoked';
    return true;
  }

  private async completeVirtual(o: OrderRow): Promise<void> {
    try {
      await move(this.deps.sql, { orderId: o.id, to: 'completed', from: ['paid'], actorId: null, reason: 'virtual goods complete at payment' });
      o.status = 'completed';
      if (o.cashDue > 0 && o.earnState === 'none') o.earnState = 'pending';
    } catch (err) {
      if (!(err instanceof DomainError && err.code === 'ORDER_STATE_CONFLICT')) throw err;
      this.stale.add(o);
    }
  }

  /** Purchase earn: 1 point per 1.00 of cash paid (the `purchase` rule's points per unit), × tier and campaign. */
  private async creditPurchase(o: OrderRow): Promise<boolean> {
    const units = Math.floor(o.cashDue / 100);
    const rule = await this.purchaseRule();
    if (units <= 0 || !rule) return this.mark(o, 'earn_state', 'pending', 'none');
    const { op } = await this.points.creditRule(o.userId, {
      bizType: 'purchase',
      bizId: o.id,
      points: units * rule.points,
      key: `purchase:${o.id}`,
      expiryDays: rule.expiryDays,
      extra: { orderId: o.id, orderNo: o.orderNo },
    });
    return this.mark(o, 'earn_state', 'pending', 'credited', { earnedPoints: op.delta });
  }

  /** The `purchase` earn rule (trigger 'system': members cannot claim it through /v1/points/earn). */
  private async purchaseRule(): Promise<{ points: number; expiryDays: number } | null> {
    const [rule] = await this.deps.sql<Array<{ points: number; expiryDays: number; enabled: boolean }>>`
      SELECT points, expiry_days AS "expiryDays", enabled FROM earn_rules WHERE action = 'purchase'`;
    return rule?.enabled ? rule : null;
  }

  /**
   * Takes the purchase earn back: as much as the member has available (a `spend` op, bizType
   * `clawback`); what they already spent is a shortfall, written to the audit. Never below zero.
   */
  private async clawBack(o: OrderRow): Promise<boolean> {
    const kh = keyHash(`clawback:${o.id}`, 'sys');
    const hash = requestHash('clawback', { orderId: o.id });
    let taken = 0;
    const prior = await this.points.findByKey(o.userId, kh);
    if (prior && prior.kind !== 'claim') taken = -(prior as Op).delta;
    else {
      let want = o.earnedPoints;
      for (let attempt = 0; attempt < 5 && want > 0; attempt++) {
        try {
          const { op } = await this.points.charge(o.userId, newOpId(), kh, hash, want, `clawback:${o.id}`, {
            bizType: 'clawback', bizId: o.id, orderId: o.id, orderNo: o.orderNo,
          }, 'system');
          taken = -op.delta;
          break;
        } catch (err) {
          if (!(err instanceof DomainError && err.code === 'INSUFFICIENT_POINTS')) throw err;
          want = Math.min(want, Math.max(0, (await this.points.balance(o.userId, 0)).available));
        }
      }
    }
    const shortfall = o.earnedPoints - taken;
    await this.deps.sql.begin(async (tx) => {
      const [row] = await tx`UPDATE orders SET earn_state = 'clawed_back', updated_at = now()
                             WHERE id = ${o.id} AND earn_state = 'credited' RETURNING 1`;
      if (row) {
        await recordAudit(tx, { actorId: null, action: 'order.clawback', targetType: 'order', targetId: o.id, data: { userId: o.userId, earned: o.earnedPoints, taken, shortfall } });
      }
    });
    o.earnState = 'clawed_back';
    if (shortfall > 0) this.log?.warn({ orderId: o.id, userId: o.userId, earned: o.earnedPoints, taken, shortfall }, 'purchase earn clawback short');
    return true;
  }
}

