/**
 * The order pump (the `orders` worker role, every ORDERS_EVERY_MS): whatever a request left
 * behind — killed mid-way, or simply never coming back — it finishes.
 *   - placements abandoned for PLACING_STALE_MS (far beyond any request's timeouts): finished
 *     when their points were frozen and every item's units taken, else undone (cancelled);
 *   - orders unpaid past their payment deadline: cancelled (hold released, stock returned);
 *   - shipped orders AUTO_COMPLETE_DAYS old: completed;
 *   - any order whose side effects lag its status: settled (src/orders/effects.ts);
 *   - transitions whose push was not queued: pushed;
 *   - integrators' holds past their expiry: released; coupons past their validity: expired.
 */
import type { Deps } from '../deps.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { HoldService } from '../points/holds.ts';
import { move } from './lifecycle.ts';
import type { OrderService } from './service.ts';
import { expireCoupons } from './rewards.ts';
import { recordAudit } from '../audit/log.ts';

export const PLACING_STALE_MS = 5 * 60_000;

export interface PumpResult {
  placingFinished: number;
  placingUndone: number;
  timedOut: number;
  autoCompleted: number;
  settled: number;
  pushed: number;
  holdsReleased: number;
  couponsExpired: number;
  freezesSynced: number;
}

export class OrderPump {
  constructor(
    private readonly deps: Deps,
    private readonly orders: OrderService,
    private readonly holds: HoldService,
    private readonly log?: { warn(obj: object, msg: string): void },
    /** catches up freezes whose Redis step a crash cut short (src/risk/service.ts) */
    private readonly risk?: { syncFrozen(): Promise<number> },
  ) {}

  async run(o: { batch?: number; placingStaleMs?: number } = {}): Promise<PumpResult> {
    const batch = o.batch ?? 500;
    const r: PumpResult = {
      placingFinished: 0, placingUndone: 0, timedOut: 0, autoCompleted: 0, settled: 0, pushed: 0, holdsReleased: 0, couponsExpired: 0, freezesSynced: 0,
    };
    await this.resolvePlacing(o.placingStaleMs ?? PLACING_STALE_MS, batch, r);
    r.timedOut = await this.system('pending_payment', 'cancelled', 'payment timed out', batch, this.deps.sql`payment_deadline <= now()`);
    r.autoCompleted = await this.system(
      'shipped', 'completed', 'completed automatically', batch,
      this.deps.sql`shipped_at <= now() - make_interval(days => ${this.deps.env.AUTO_COMPLETE_DAYS})`,
    );
    r.settled = await this.settleLagging(batch);
    r.pushed = await this.pushLeftovers(batch);
    r.holdsReleased = await this.holds.releaseExpired(batch);
    r.couponsExpired = await expireCoupons(this.deps.sql);
    r.freezesSynced = (await this.risk?.syncFrozen()) ?? 0;
    return r;
  }

  /** Moves every order in `from` matching `when` to `to` (one at a time: each wins or loses its race). */
  private async system(from: 'pending_payment' | 'shipped', to: 'cancelled' | 'completed', reason: string, batch: number, when: ReturnType<Deps['sql']>): Promise<number> {
    const { sql } = this.deps;
    const due = await sql<Array<{ id: string }>>`SELECT id FROM orders WHERE status = ${from} AND ${when} ORDER BY updated_at LIMIT ${batch}`;
    let moved = 0;
    for (const { id } of due) {
      try {
        await move(sql, { orderId: id, to, from: [from], actorId: null, reason });
        moved++;
      } catch (err) {
        if (!(err instanceof DomainError && err.code === 'ORDER_STATE_CONFLICT')) throw err;
      }
      await this.orders.afterTransition(id);
    }
    return moved;
  }

  /**
   * A placement whose process is gone: its hold is fenced first (no late freeze can land after
   * this), then it goes forward only if the points were frozen and every unit is still recorded as
   * taken; otherwise back (what was taken is given back, the order cancelled).
   */
  private async resolvePlacing(staleMs: number, batch: number, r: PumpResult): Promise<void> {
    const { sql, redis, keys, env } = this.deps;
    const stale = await sql<Array<{ id: string; userId: number; pointsToUse: number; cashDue: number }>>`
      SELECT id, user_id AS "userId", points_to_use AS "pointsToUse", cash_due AS "cashDue" FROM orders
      WHERE status = 'placing' AND created_at <= now() - make_interval(secs => ${staleMs / 1000}) LIMIT ${batch}`;
    for (const o of stale) {
      const items = await sql<Array<{ position: number; goodsId: number; quantity: number; unitCash: number }>>`
        SELECT position, goods_id AS "goodsId", quantity, unit_cash AS "unitCash" FROM order_items WHERE order_id = ${o.id} ORDER BY position`;
      const hold = await this.holds.fence(o.userId, o.id);
      const taken = await Promise.all(items.map((i) => redis.hget(keys.ordersTaken(i.goodsId), o.id)));
      const allTaken = taken.every((t) => t !== null);
      const needsPoints = o.pointsToUse > 0 || items.some((i) => i.unitCash === 0);
      if (allTaken && (hold !== null || !needsPoints)) {
        const prices = taken.map((t) => (JSON.parse(t!) as { p: number }).p);
        const itemPoints = items.reduce((n, it, k) => n + (it.unitCash > 0 ? 0 : prices[k] * it.quantity), 0);
        const status = o.cashDue > 0 ? 'pending_payment' : 'paid';
        const done = await sql.begin(async (tx) => {
          const [row] = await tx`
            UPDATE orders SET status = ${status}, points_total = ${itemPoints}, stock_state = 'sold',
                   points_state = ${hold ? 'frozen' : 'none'}, updated_at = now(),
                   payment_deadline = ${status === 'pending_payment' ? tx`now() + make_interval(secs => ${env.ORDER_PAYMENT_TIMEOUT_MS / 1000})` : null},
                   paid_at = ${status === 'paid' ? tx`now()` : null}
            WHERE id = ${o.id} AND status = 'placing' RETURNING 1`;
          if (!row) return false;
          await tx`
            UPDATE order_items i SET unit_points = CASE WHEN i.unit_cash > 0 THEN 0 ELSE t.price END
            FROM unnest(${items.map((i) => i.position)}::int[], ${prices}::bigint[]) AS t(position, price)
            WHERE i.order_id = ${o.id} AND i.position = t.position`;
          await tx`INSERT INTO order_events (order_id, from_status, to_status, reason) VALUES (${o.id}, NULL, ${status}, 'placement finished by the order pump')`;
          await recordAudit(tx, { actorId: null, action: 'order.placed', targetType: 'order', targetId: o.id, data: { status, by: 'order pump', points: itemPoints + o.pointsToUse } });
          return true;
        });
        if (done) r.placingFinished++;
      } else {
        const done = await sql.begin(async (tx) => {
          const [row] = await tx`
            UPDATE orders SET status = 'cancelled', cancelled_at = now(), updated_at = now(), reason = 'placement interrupted',
                   points_state = ${hold ? 'frozen' : 'none'}, stock_state = 'reserved', rewards_state = 'none'
            WHERE id = ${o.id} AND status = 'placing' RETURNING 1`;
          if (!row) return false;
          await tx`INSERT INTO order_events (order_id, from_status, to_status, reason, notified)
                   VALUES (${o.id}, NULL, 'cancelled', 'placement interrupted', true)`;
          await recordAudit(tx, { actorId: null, action: 'order.cancelled', targetType: 'order', targetId: o.id, data: { from: 'placing', reason: 'placement interrupted', pointsFrozen: hold !== null } });
          return true;
        });
        if (done) {
          r.placingUndone++;
          this.log?.warn({ orderId: o.id, userId: o.userId }, 'abandoned order placement undone');
        }
      }
      await this.orders.afterTransition(o.id);
    }
  }

  /** Orders whose side effects lag their status (a process died between the two). */
  private async settleLagging(batch: number): Promise<number> {
    const { sql } = this.deps;
    const lagging = await sql<Array<{ id: string }>>`
      SELECT id FROM orders WHERE unsettled AND updated_at <= now() - interval '2 seconds'
      ORDER BY updated_at LIMIT ${batch}`;
    let settled = 0;
    for (const { id } of lagging) {
      try {
        await this.orders.afterTransition(id);
        settled++;
      } catch (err) {
        this.log?.warn({ err, orderId: id }, 'order side effects failed; retried on the next run');
      }
    }
    return settled;
  }

  private async pushLeftovers(batch: number): Promise<number> {
    const { sql } = this.deps;
    const orders = await sql<Array<{ orderId: string }>>`
      SELECT DISTINCT order_id AS "orderId" FROM order_events
      WHERE NOT notified AND created_at <= now() - interval '5 seconds' LIMIT ${batch}`;
    let pushed = 0;
    for (const { orderId } of orders) pushed += await this.orders.notify(orderId);
    return pushed;
  }
}
