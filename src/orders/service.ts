/**
 * Orders: placement (POST /v1/orders), the member's and the admin's transitions, and views.
 *
 * Placement is a saga over Postgres (the order row, the coordinator) and Redis (stock and points):
 *   1. the order row is written `placing` with its items (the Idempotency-Key is unique per member);
 *   2. each item's units are taken in its goods slot (lua/take-4.lua: limits, stock and the price
 *      in one atomic step), recorded under the order id;
 *   3. the points it spends — items priced in points plus `pointsToUse` — are frozen under a hold
 *      named by the order id (lua/hold-5.lua);
 *   4. one UPDATE makes it `pending_payment` (cash due) or `paid` (none), only if still `placing`.
 * A business refusal (sold out, a limit, not enough points) gives back what was taken and deletes
 * the row: a refused order writes nothing. Every step replays under the same order id, so a retry
 * of the key resumes a placement cut short; one abandoned by a dead process is finished or undone
 * by the order pump (src/orders/pump.ts). Then the order's side effects follow its status
 * (src/orders/effects.ts): a paid order's hold is captured (a `spend` op), a cancelled one's released.
 */
import { createHmac } from 'node:crypto';
import type postgres from 'postgres';
import type { Deps } from '../deps.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { HoldService } from '../points/holds.ts';
import { newOpId, requestHash } from '../points/idempotency.ts';
import { orderedCode } from '../crypto/ordered-id.ts';
import type { PushService } from '../push/service.ts';
import { move, type OrderStatus, type Transition } from './lifecycle.ts';
import type { PaymentProvider } from './payments.ts';
import type { OrderEffects, OrderItemRow, OrderRow } from './effects.ts';
import type { OrderStock } from './stock.ts';
import type { ReceiverBox, Receiver } from './receiver.ts';
import { maskPhone } from './receiver.ts';
import { auditRowIf } from '../audit/log.ts';

/** A fresh order number: OD + 22 Crockford base32 characters, the time (9) then 65 random bits (13). */
export function newOrderNo(): string {
  return orderedCode('OD', 13);
}

export interface PlaceInput {
  items: Array<{ goodsId: number; quantity: number; expectedPrice?: number }>;
  pointsToUse?: number;
  receiver?: Receiver;
}

export interface OrderItemView {
  position: number;
  goodsId: number;
  goodsType: string;
  quantity: number;
  unitPoints: number;
  unitCash: number;
}

export interface OrderView {
  id: string;
  orderNo: string;
  source: 'order' | 'redemption';
  status: Exclude<OrderStatus, 'placing'>;
  items: OrderItemView[];
  pointsTotal: number;
  pointsToUse: number;
  cashTotal: number;
  cashDue: number;
  paymentId: string | null;
  paymentDeadline: string | null;
  receiver: Receiver | null;
  carrier: string | null;
  trackingNo: string | null;
  reason: string | null;
  createdAt: string;
  paidAt: string | null;
  shippedAt: string | null;
  completedAt: string | null;
  cancelledAt: string | null;
  refundedAt: string | null;
}

export interface OrderEventView {
  from: string | null;
  to: string;
  actorId: number | null;
  reason: string | null;
  at: string;
}

interface PlacingItem {
  position: number;
  goodsId: number;
  goodsType: string;
  quantity: number;
  unitCash: number;
}

interface Row {
  id: string;
  orderNo: string;
  userId: number;
  source: 'order' | 'redemption';
  status: OrderStatus;
  pointsTotal: number;
  pointsToUse: number;
  cashTotal: number;
  cashDue: number;
  paymentId: string | null;
  paymentDeadline: Date | null;
  receiver: string | null;
  carrier: string | null;
  trackingNo: string | null;
  reason: string | null;
  requestHash: string | null;
  holdId: string | null;
  rewardsState: 'none' | 'pending' | 'issued' | 'revoked';
  createdAt: Date;
  paidAt: Date | null;
  shippedAt: Date | null;
  completedAt: Date | null;
  cancelledAt: Date | null;
  refundedAt: Date | null;
}

const COLUMNS = `id, order_no AS "orderNo", user_id AS "userId", source, status, points_total AS "pointsTotal",
  points_to_use AS "pointsToUse", cash_total AS "cashTotal", cash_due AS "cashDue", payment_id AS "paymentId",
  payment_deadline AS "paymentDeadline", receiver, carrier, tracking_no AS "trackingNo", reason,
  request_hash AS "requestHash", hold_id AS "holdId", rewards_state AS "rewardsState", created_at AS "createdAt", paid_at AS "paidAt",
  shipped_at AS "shippedAt", completed_at AS "completedAt", cancelled_at AS "cancelledAt", refunded_at AS "refundedAt"`;

/**
 * Every order as a row of the view columns: the orders table, and the redemptions whose orders row
 * is not written yet (src/orders/redemption-orders.ts), shown as paid (completed for virtual goods).
 */
const ALL_ORDERS = `(
  SELECT ${COLUMNS} FROM orders WHERE status <> 'placing'
  UNION ALL
  SELECT r.op_id AS id, r.exchange_no AS "orderNo", r.user_id AS "userId", 'redemption' AS source,
         CASE WHEN g.type IN ('virtual', 'coupon', 'vip') THEN 'completed' ELSE 'paid' END AS status,
         r.points_spent AS "pointsTotal", 0::bigint AS "pointsToUse", 0::bigint AS "cashTotal", 0::bigint AS "cashDue",
         NULL::text AS "paymentId", NULL::timestamptz AS "paymentDeadline", NULL::text AS receiver, NULL::text AS carrier,
         NULL::text AS "trackingNo", NULL::text AS reason, NULL::text AS "requestHash", NULL::text AS "holdId",
         'none'::text AS "rewardsState", r.created_at AS "createdAt", r.created_at AS "paidAt", NULL::timestamptz AS "shippedAt",
         CASE WHEN g.type IN ('virtual', 'coupon', 'vip') THEN r.created_at END AS "completedAt",
         NULL::timestamptz AS "cancelledAt", NULL::timestamptz AS "refundedAt"
  FROM redemptions r JOIN goods g ON g.id = r.goods_id
  WHERE r.source = 'order' AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = r.id)
) AS all_orders`;

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const VIRTUAL = new Set(['virtual', 'coupon', 'vip']);

/** Refusals of a placement (nothing is kept): the order row goes and whatever it took comes back. */
const REFUSALS = new Set([
  'SOLD_OUT', 'LIMIT_EXCEEDED', 'DAILY_LIMIT_REACHED', 'SALE_NOT_ACTIVE', 'GOODS_NOT_FOUND', 'PRICE_CHANGED', 'INSUFFICIENT_POINTS', 'ACCOUNT_FROZEN',
]);

export class OrderService {
  constructor(
    private readonly deps: Deps,
    private readonly holds: HoldService,
    private readonly stock: OrderStock,
    private readonly effects: OrderEffects,
    private readonly provider: PaymentProvider,
    private readonly box: ReceiverBox,
    private readonly pushes?: PushService,
  ) {}

  // ---- placement ----

  async place(userId: number, input: PlaceInput, idempotencyKey: string): Promise<{ order: OrderView; replayed: boolean }> {
    const { sql, env } = this.deps;
    const items = input.items;
    if (new Set(items.map((i) => i.goodsId)).size !== items.length) {
      throw new DomainError('VALIDATION_FAILED', 'Each goodsId may appear once in an order: put the quantity on one item');
    }
    const pointsToUse = input.pointsToUse ?? 0;
    const hash = requestHash('order', {
      items: items.map((i) => [i.goodsId, i.quantity, i.expectedPrice ?? null]),
      pointsToUse,
      // the receiver counts as part of the request without its plaintext being hashed in the clear
      receiver: input.receiver ? createHmac('sha256', env.JWT_SECRET).update(JSON.stringify(input.receiver)).digest('hex') : null,
    });
    const prior = await this.byKey(userId, idempotencyKey);
    if (prior) return this.replay(prior, hash, input);

    const goods = await sql<Array<{ id: number; type: string; cashPrice: number | null; hotBuckets: number }>>`
      SELECT id, type, cash_price AS "cashPrice", hot_buckets AS "hotBuckets" FROM goods WHERE id = ANY(${items.map((i) => i.goodsId)}::bigint[])`;
    const byId = new Map(goods.map((g) => [g.id, g]));
    const missing = items.find((i) => !byId.has(i.goodsId));
    if (missing) throw new DomainError('GOODS_NOT_FOUND', `No goods with id ${missing.goodsId}`);
    // a hot item's stock lives in its bucket slots, which only the redemption saga takes from
    const hot = items.find((i) => byId.get(i.goodsId)!.hotBuckets > 0);
    if (hot) {
      throw new DomainError('GOODS_NOT_ORDERABLE', `goods ${hot.goodsId} is a hot item, sold by redemption only (POST /v1/redemptions)`, {
        goodsId: hot.goodsId,
      });
    }
    if (!input.receiver && goods.some((g) => g.type === 'physical')) {
      throw new DomainError('RECEIVER_REQUIRED', 'Physical goods ship to a receiver: send receiver {name, phone, address}');
    }
    const cashTotal = items.reduce((n, i) => n + (byId.get(i.goodsId)!.cashPrice ?? 0) * i.quantity, 0);
    const rate = env.POINTS_PER_CURRENCY_UNIT;
    const maxPoints = Math.floor((cashTotal * rate) / 100);
    if (pointsToUse > maxPoints) {
      throw new DomainError('POINTS_TO_USE_INVALID', `pointsToUse may be at most the cash total in points (${maxPoints})`, { max: maxPoints });
    }
    const cashDue = Math.max(0, cashTotal - Math.floor((pointsToUse * 100) / rate));
    const id = newOpId();
    const sealed = input.receiver ? this.box.seal(id, input.receiver) : null;
    const orderNo = newOrderNo();
    const paymentId = cashDue > 0 ? this.provider.createPayment(id, cashDue) : null;
    const rewardsState = goods.some((g) => g.type === 'coupon' || g.type === 'vip') ? 'pending' : 'none';
    const itemRows = items.map((i, k) => ({
      position: k + 1, goodsId: i.goodsId, goodsType: byId.get(i.goodsId)!.type, quantity: i.quantity, unitCash: byId.get(i.goodsId)!.cashPrice ?? 0,
    }));
    // the order and its items in one statement; nothing when the key already has an order
    const written = await sql`
      WITH o AS (
        INSERT INTO orders (id, order_no, user_id, source, status, points_total, points_to_use, cash_total, cash_due,
                            payment_id, hold_id, receiver, idem_key, request_hash, rewards_state)
        VALUES (${id}, ${orderNo}, ${userId}, 'order', 'placing', 0, ${pointsToUse}, ${cashTotal}, ${cashDue},
                ${paymentId}, ${id}, ${sealed}, ${idempotencyKey}, ${hash}, ${rewardsState})
        ON CONFLICT (user_id, idem_key) WHERE idem_key IS NOT NULL DO NOTHING RETURNING id)
      INSERT INTO order_items (order_id, position, goods_id, goods_type, quantity, unit_cash)
      SELECT o.id, t.position, t.goods_id, t.type, t.quantity, t.cash
      FROM o CROSS JOIN unnest(${itemRows.map((i) => i.position)}::int[], ${itemRows.map((i) => i.goodsId)}::bigint[],
                  ${itemRows.map((i) => i.goodsType)}::text[], ${itemRows.map((i) => i.quantity)}::int[],
                  ${itemRows.map((i) => i.unitCash)}::bigint[]) AS t(position, goods_id, type, quantity, cash)
      RETURNING order_id`;
    const inserted = written.length > 0;
    if (!inserted) {
      // the same key a moment ago, from a concurrent request: answer as that order
      const other = await this.byKey(userId, idempotencyKey);
      if (!other) throw new DomainError('INTERNAL', 'order key conflict without an order');
      return this.replay(other, hash, input);
    }
    const placing = {
      id, orderNo, userId, source: 'order', status: 'placing', pointsTotal: 0, pointsToUse, cashTotal, cashDue, paymentId,
      paymentDeadline: null, receiver: sealed, carrier: null, trackingNo: null, reason: null, requestHash: hash, holdId: id,
      rewardsState, createdAt: new Date(), paidAt: null, shippedAt: null, completedAt: null, cancelledAt: null, refundedAt: null,
    } satisfies Row;
    const order = await this.finishPlacement(id, input.items, { row: placing, items: itemRows });
    return { order, replayed: false };
  }

  private async byKey(userId: number, key: string): Promise<Row | null> {
    const [row] = await this.deps.sql<Row[]>`SELECT ${this.deps.sql.unsafe(COLUMNS)} FROM orders WHERE user_id = ${userId} AND idem_key = ${key}`;
    return row ?? null;
  }

  private async replay(row: Row, hash: string, input: PlaceInput): Promise<{ order: OrderView; replayed: boolean }> {
    if (row.requestHash !== hash) {
      throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request body');
    }
    // a placement cut short (its process died, or it is still running): every step replays
    if (row.status === 'placing') return { order: await this.finishPlacement(row.id, input.items), replayed: true };
    return { order: await this.view(row), replayed: true };
  }

  /** Steps 2–4 for a `placing` order; safe to run again (each step replays under the order id). */
  private async finishPlacement(id: string, requested: PlaceInput['items'], known?: { row: Row; items: PlacingItem[] }): Promise<OrderView> {
    const { sql, env } = this.deps;
    const [row] = known ? [known.row] : await sql<Row[]>`SELECT ${sql.unsafe(COLUMNS)} FROM orders WHERE id = ${id}`;
    if (row.status !== 'placing') return this.view(row);
    const items = known
      ? known.items
      : await sql<PlacingItem[]>`
          SELECT position, goods_id AS "goodsId", goods_type AS "goodsType", quantity, unit_cash AS "unitCash"
          FROM order_items WHERE order_id = ${id} ORDER BY position`;
    const expected = new Map(requested.map((i) => [i.goodsId, i.expectedPrice]));
    const prices: number[] = [];
    let points = 0;
    let itemPoints = 0;
    // nothing due in cash: paid now; virtual goods only: completed at payment, in the same step
    const status: OrderStatus = row.cashDue > 0 ? 'pending_payment' : items.every((i) => VIRTUAL.has(i.goodsType)) ? 'completed' : 'paid';
    try {
      // a frozen member takes no stock (the freeze of the points refuses them too, atomically)
      await this.holds.assertActive(row.userId);
      for (const i of items) prices.push(await this.stock.take(id, row.userId, i.goodsId, i.quantity, expected.get(i.goodsId)));
      // items with a cash price are paid in cash (pointsToUse may pay part of it); the others in points
      itemPoints = items.reduce((n, it, k) => n + (it.unitCash > 0 ? 0 : prices[k] * it.quantity), 0);
      points = itemPoints + row.pointsToUse;
      if (points > 0) {
        await this.holds.freeze({
          userId: row.userId,
          holdId: id,
          amount: points,
          bizType: 'order',
          bizId: id,
          expiresAt: 0,
          hash: requestHash('order-hold', { id, points }),
          extra: { orderNo: row.orderNo },
        });
      }
      const steps: Array<[OrderStatus | null, OrderStatus, string]> =
        status === 'completed' ? [[null, 'paid', 'placed'], ['paid', 'completed', 'virtual goods complete at payment']] : [[null, status, 'placed']];
      // the move, its items' prices, its events and its audit row in one statement (atomic without
      // a transaction's BEGIN and COMMIT round trips); each branch writes only when the move did
      const eventData = sql.json({ points, cashDue: row.cashDue } as postgres.JSONValue);
      const moved = await sql<Array<{ id: string }>>`
        WITH done AS (
          UPDATE orders SET status = ${status}, points_total = ${itemPoints}, stock_state = 'sold',
                 points_state = ${points > 0 ? 'frozen' : 'none'}, updated_at = now(),
                 payment_deadline = ${status === 'pending_payment' ? sql`now() + make_interval(secs => ${env.ORDER_PAYMENT_TIMEOUT_MS / 1000})` : null},
                 paid_at = ${status === 'pending_payment' ? null : sql`now()`},
                 completed_at = ${status === 'completed' ? sql`now()` : null}
          WHERE id = ${id} AND status = 'placing' RETURNING id),
        priced AS (
          UPDATE order_items i SET unit_points = CASE WHEN i.unit_cash > 0 THEN 0 ELSE t.price END
          FROM done, unnest(${items.map((i) => i.position)}::int[], ${prices}::bigint[]) AS t(position, price)
          WHERE i.order_id = done.id AND i.position = t.position),
        events AS (
          INSERT INTO order_events (order_id, from_status, to_status, actor_id, reason, data)
          SELECT done.id, t.from_status, t.to_status, ${row.userId}::bigint, t.reason, ${eventData}::jsonb
          FROM done, unnest(${steps.map((x) => x[0])}::text[], ${steps.map((x) => x[1])}::text[], ${steps.map((x) => x[2])}::text[])
            WITH ORDINALITY AS t(from_status, to_status, reason, n) ORDER BY t.n),
        audited AS (
          ${auditRowIf(sql, sql`EXISTS (SELECT 1 FROM done)`, { actorId: row.userId, action: 'order.placed', targetType: 'order', targetId: id, data: { status, points, cashTotal: row.cashTotal, cashDue: row.cashDue } })})
        SELECT id FROM done`;
      if (moved.length === 0) throw new DomainError('ORDER_STATE_CONFLICT', 'The order was undone while it was being placed; place it again with a new key');
    } catch (err) {
      if (err instanceof DomainError && REFUSALS.has(err.code)) {
        await this.undoPlacement(id, row.userId, items);
      }
      throw err;
    }
    // the order as just written, so its side effects start without reading it back
    const placed: OrderRow = {
      id, orderNo: row.orderNo, userId: row.userId, source: 'order', status, pointsTotal: itemPoints, pointsToUse: row.pointsToUse,
      cashTotal: row.cashTotal, cashDue: row.cashDue, holdId: id, spendOpId: null, spentLots: null,
      pointsState: points > 0 ? 'frozen' : 'none', stockState: 'sold', rewardsState: row.rewardsState, earnState: 'none', earnedPoints: 0,
      createdAt: row.createdAt,
    };
    const itemRows: OrderItemRow[] = items.map((i, k) => ({ ...i, unitPoints: i.unitCash > 0 ? 0 : prices[k] }));
    await this.effects.settle(id, { order: placed, items: itemRows });
    await this.notify(id);
    const [after] = await sql<Row[]>`SELECT ${sql.unsafe(COLUMNS)} FROM orders WHERE id = ${id}`;
    return this.view(after, itemRows);
  }

  /** A refused placement: the units go back and the row is deleted (only while still placing). */
  private async undoPlacement(id: string, userId: number, items: Array<{ goodsId: number; quantity: number }>): Promise<void> {
    for (const i of items) await this.stock.giveBack(id, userId, i.goodsId, i.quantity);
    await this.deps.sql.begin(async (tx) => {
      const [gone] = await tx`DELETE FROM orders WHERE id = ${id} AND status = 'placing' RETURNING 1`;
      if (gone) await tx`DELETE FROM order_items WHERE order_id = ${id}`;
    });
  }

  // ---- transitions ----

  /** A transition, then its side effects and the member's push. */
  async transition(t: Transition, userId?: number): Promise<OrderView & { history: OrderEventView[] }> {
    await move(this.deps.sql, t, userId);
    await this.afterTransition(t.orderId);
    return this.get(t.orderId, userId);
  }

  /** Side effects and pushes of whatever the order's status now calls for (the pump retries both). */
  async afterTransition(id: string): Promise<void> {
    await this.effects.settle(id);
    await this.notify(id);
  }

  cancelOwn(userId: number, id: string): Promise<OrderView & { history: OrderEventView[] }> {
    return this.transition({ orderId: id, to: 'cancelled', from: ['pending_payment', 'paid'], actorId: userId, reason: 'cancelled by the member' }, userId);
  }

  confirmReceipt(userId: number, id: string): Promise<OrderView & { history: OrderEventView[] }> {
    return this.transition({ orderId: id, to: 'completed', from: ['shipped'], actorId: userId, reason: 'receipt confirmed' }, userId);
  }

  ship(adminId: number, id: string, carrier: string, trackingNo: string): Promise<OrderView & { history: OrderEventView[] }> {
    return this.transition({ orderId: id, to: 'shipped', from: ['paid'], actorId: adminId, carrier, trackingNo, data: { carrier, trackingNo } });
  }

  refund(adminId: number, id: string, reason: string): Promise<OrderView & { history: OrderEventView[] }> {
    return this.transition({ orderId: id, to: 'refunded', actorId: adminId, reason });
  }

  cancelByAdmin(adminId: number, id: string, reason: string): Promise<OrderView & { history: OrderEventView[] }> {
    return this.transition({ orderId: id, to: 'cancelled', from: ['pending_payment', 'paid'], actorId: adminId, reason });
  }

  /** Queues the member's push for each transition not pushed yet (once each: the event id dedupes). */
  async notify(id: string): Promise<number> {
    if (!this.pushes) return 0;
    const { sql } = this.deps;
    const events = await sql<Array<{ eventId: number; userId: number; orderNo: string; to: string; reason: string | null }>>`
      SELECT e.id AS "eventId", o.user_id AS "userId", o.order_no AS "orderNo", e.to_status AS to, e.reason
      FROM order_events e JOIN orders o ON o.id = e.order_id WHERE e.order_id = ${id} AND NOT e.notified ORDER BY e.id`;
    if (events.length === 0) return 0;
    await this.pushes.enqueueMany(
      events.map((e) => ({
        userId: e.userId,
        type: 'order_status',
        title: `Order ${e.orderNo}: ${e.to.replace('_', ' ')}`,
        body: statusLine(e.to, e.reason),
        data: { orderId: id, orderNo: e.orderNo, status: e.to },
        dedupeKey: `order-event:${e.eventId}`,
      })),
    );
    await sql`UPDATE order_events SET notified = true WHERE id = ANY(${events.map((e) => e.eventId)}::bigint[])`;
    return events.length;
  }

  // ---- views ----

  async get(id: string, userId?: number): Promise<OrderView & { history: OrderEventView[] }> {
    const { sql } = this.deps;
    const [row] = await sql<Row[]>`
      SELECT * FROM ${sql.unsafe(ALL_ORDERS)} WHERE id = ${id}
      ${userId !== undefined ? sql`AND "userId" = ${userId}` : sql``}`;
    if (!row) throw new DomainError('ORDER_NOT_FOUND', 'No such order');
    type Entry = { from: string | null; to: string; actorId: number | null; reason: string | null; at: Date };
    const history: Entry[] = [
      ...(await sql<Entry[]>`
        SELECT from_status AS from, to_status AS to, actor_id AS "actorId", reason, created_at AS at
        FROM order_events WHERE order_id = ${id} ORDER BY id`),
    ];
    // a redemption's first entries are its own: paid when redeemed (and completed, for virtual goods)
    if (row.source === 'redemption') {
      const first: Entry[] = [{ from: null, to: 'paid', actorId: row.userId, reason: 'redeemed', at: row.paidAt ?? row.createdAt }];
      if (row.completedAt && !history.some((h) => h.to === 'completed')) {
        first.push({ from: 'paid', to: 'completed', actorId: null, reason: 'virtual goods complete at payment', at: row.completedAt });
      }
      history.unshift(...first);
    }
    return { ...(await this.view(row)), history: history.map((h) => ({ ...h, at: h.at.toISOString() })) };
  }

  async list(q: { userId?: number; status?: string; from?: string; to?: string; limit: number; cursor?: string }) {
    const { sql } = this.deps;
    const after = q.cursor ? decodeCursor(q.cursor) : null;
    const rows = await sql<Row[]>`
      SELECT * FROM ${sql.unsafe(ALL_ORDERS)} WHERE true
      ${q.userId !== undefined ? sql`AND "userId" = ${q.userId}` : sql``}
      ${q.status ? sql`AND status = ${q.status}` : sql``}
      ${q.from ? sql`AND "createdAt" >= ${new Date(q.from)}` : sql``}
      ${q.to ? sql`AND "createdAt" < ${new Date(q.to)}` : sql``}
      ${after ? sql`AND ("createdAt", id) < (to_timestamp(${after.ms} / 1000.0), ${after.id})` : sql``}
      ORDER BY "createdAt" DESC, id DESC LIMIT ${q.limit + 1}`;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    const items = await this.views(page, true);
    return { items, nextCursor: rows.length > q.limit ? encodeCursor(last.createdAt.getTime(), last.id) : null };
  }

  private async view(row: Row, items?: OrderItemView[]): Promise<OrderView> {
    return (await this.views([row], false, items))[0];
  }

  /** Views of rows, receivers opened (lists mask the phone). */
  private async views(rows: Row[], masked: boolean, known?: OrderItemView[]): Promise<OrderView[]> {
    if (rows.length === 0) return [];
    const { sql } = this.deps;
    const items: Array<OrderItemView & { orderId: string }> = known ? known.map((i) => ({ ...i, orderId: rows[0].id })) : await sql<Array<OrderItemView & { orderId: string }>>`
      SELECT order_id AS "orderId", position, goods_id AS "goodsId", goods_type AS "goodsType", quantity,
             unit_points AS "unitPoints", unit_cash AS "unitCash"
      FROM order_items WHERE order_id = ANY(${rows.map((r) => r.id)}::text[]) ORDER BY order_id, position`;
    // a redemption without its orders row yet: its one item is the redemption's
    const bare = rows.filter((r) => r.source === 'redemption' && !items.some((i) => i.orderId === r.id)).map((r) => r.id);
    if (bare.length > 0) {
      items.push(
        ...(await sql<Array<OrderItemView & { orderId: string }>>`
          SELECT r.op_id AS "orderId", 1 AS position, r.goods_id AS "goodsId", g.type AS "goodsType", r.quantity,
                 (r.points_spent / r.quantity)::bigint AS "unitPoints", 0::bigint AS "unitCash"
          FROM redemptions r JOIN goods g ON g.id = r.goods_id WHERE r.id = ANY(${bare}::text[])`),
      );
    }
    const byOrder = new Map<string, OrderItemView[]>();
    for (const { orderId, ...it } of items) {
      const list = byOrder.get(orderId);
      if (list) list.push(it);
      else byOrder.set(orderId, [it]);
    }
    return rows.map((r) => {
      let receiver = r.receiver ? this.box.open(r.id, r.receiver) : null;
      if (receiver && masked) receiver = { ...receiver, phone: maskPhone(receiver.phone) };
      return {
        id: r.id, orderNo: r.orderNo, source: r.source, status: r.status as OrderView['status'], items: byOrder.get(r.id) ?? [],
        pointsTotal: r.pointsTotal, pointsToUse: r.pointsToUse, cashTotal: r.cashTotal, cashDue: r.cashDue,
        paymentId: r.paymentId, paymentDeadline: iso(r.paymentDeadline), receiver, carrier: r.carrier, trackingNo: r.trackingNo,
        reason: r.reason, createdAt: r.createdAt.toISOString(), paidAt: iso(r.paidAt), shippedAt: iso(r.shippedAt),
        completedAt: iso(r.completedAt), cancelledAt: iso(r.cancelledAt), refundedAt: iso(r.refundedAt),
      };
    });
  }
}

function statusLine(to: string, reason: string | null): string {
  switch (to) {
    case 'pending_payment':
      return 'Waiting for your payment; your points are held for it.';
    case 'paid':
      return 'Paid. Thank you!';
    case 'shipped':
      return 'On its way.';
    case 'completed':
      return 'Completed.';
    case 'cancelled':
      return `Cancelled${reason ? `: ${reason}` : ''}. Points and stock were returned.`;
    case 'refunded':
      return `Refunded${reason ? `: ${reason}` : ''}. Your points are back.`;
    default:
      return to;
  }
}
