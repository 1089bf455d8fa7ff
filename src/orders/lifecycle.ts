/**
 * The order lifecycle: the only transitions there are, each one a conditional UPDATE (the order
 * must still be in a `from` status), so of two concurrent transitions of one order exactly one
 * wins and the other is ORDER_STATE_CONFLICT. The winner writes, in the same statement, the
 * order's history entry (order_events) and an audit row. Side effects (points, stock, rewards,
 * pushes) follow from the committed status (src/orders/effects.ts).
 *
 *   placing → pending_payment | paid          (placement, internal)
 *   placing → cancelled                      (a placement the order pump undid)
 *   pending_payment → paid | cancelled
 *   paid → shipped | completed | cancelled    (completed: virtual goods; cancelled: before shipping)
 *   shipped → completed
 *   paid | shipped | completed → refunded     (admin)
 */
import type postgres from 'postgres';
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { materializeRedemptionOrders } from './redemption-orders.ts';
import { auditRowsOf } from '../audit/log.ts';

export const ORDER_STATUSES = ['pending_payment', 'paid', 'shipped', 'completed', 'cancelled', 'refunded'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number] | 'placing';

const ALLOWED: Record<OrderStatus, readonly OrderStatus[]> = {
  placing: ['pending_payment', 'paid', 'cancelled'],
  pending_payment: ['paid', 'cancelled'],
  paid: ['shipped', 'completed', 'cancelled', 'refunded'],
  shipped: ['completed', 'refunded'],
  completed: ['refunded'],
  cancelled: [],
  refunded: [],
};

export function canMove(from: OrderStatus, to: OrderStatus): boolean {
  return ALLOWED[from].includes(to);
}

/** Statuses an order may be moved to `to` from. */
export function sourcesOf(to: OrderStatus): OrderStatus[] {
  return (Object.keys(ALLOWED) as OrderStatus[]).filter((from) => ALLOWED[from].includes(to));
}

const STAMP: Partial<Record<OrderStatus, string>> = {
  paid: 'paid_at',
  shipped: 'shipped_at',
  completed: 'completed_at',
  cancelled: 'cancelled_at',
  refunded: 'refunded_at',
};

export interface Transition {
  orderId: string;
  to: OrderStatus;
  /** only from these (default: every status the lifecycle allows into `to`) */
  from?: OrderStatus[];
  /** null: the system (payment webhook, timeout, auto-complete, the order pump) */
  actorId: number | null;
  reason?: string;
  data?: Record<string, unknown>;
  /** shipping details (the ship transition) */
  carrier?: string;
  trackingNo?: string;
}

export interface TransitionRow {
  id: string;
  userId: number;
  orderNo: string;
  from: OrderStatus;
  status: OrderStatus;
}

/**
 * Moves the order along one transition inside `tx`, or throws ORDER_STATE_CONFLICT (naming the
 * status it is in) when it is not in a status that allows it — including when a concurrent
 * transition got there first. ORDER_NOT_FOUND when there is no such order (within `userId`'s, if given).
 */
export async function transition(tx: Tx, t: Transition, userId?: number): Promise<TransitionRow> {
  const rows = await update(tx, t, userId);
  if (rows.length > 0) return { ...rows[0], status: t.to };
  return afterMiss(tx, t, userId);
}

/** The statement moved nothing: a redemption without its orders row yet, or a status that refuses. */
async function afterMiss(tx: Tx, t: Transition, userId?: number): Promise<TransitionRow> {
  // a redemption's orders row is written by its first transition (src/orders/redemption-orders.ts)
  await materializeRedemptionOrders(tx, [t.orderId]);
  const again = await update(tx, t, userId);
  if (again.length > 0) return { ...again[0], status: t.to };
  return refuse(tx, t, userId);
}

/**
 * The conditional UPDATE, and — in the same statement, only for the row it moved — the history
 * entry and the audit row (data-modifying branches: one round trip, atomic in itself).
 */
async function update(tx: Sql | Tx, t: Transition, userId?: number) {
  const from = (t.from ?? sourcesOf(t.to)).filter((f) => canMove(f, t.to));
  const stamp = STAMP[t.to];
  const data = tx.json((t.data ?? {}) as postgres.JSONValue);
  // the audit row's data: where from, then what the transition says (its data last, as a spread would)
  const said = tx.json({ to: t.to, reason: t.reason ?? null, ...(t.data ?? {}) } as postgres.JSONValue);
  const rows = await tx<Array<{ id: string; userId: number; orderNo: string; from: OrderStatus }>>`
    WITH moved AS (
      UPDATE orders o SET status = ${t.to}, updated_at = now(), unsettled = true
        ${stamp ? tx`, ${tx(stamp)} = now()` : tx``}
        ${t.reason !== undefined && (t.to === 'cancelled' || t.to === 'refunded') ? tx`, reason = ${t.reason}` : tx``}
        ${t.to === 'refunded' || t.to === 'cancelled' ? tx`, earn_state = CASE WHEN o.earn_state = 'pending' THEN 'none' ELSE o.earn_state END` : tx``}
        ${t.to === 'completed' ? tx`, earn_state = CASE WHEN o.cash_due > 0 AND o.earn_state = 'none' THEN 'pending' ELSE o.earn_state END` : tx``}
        ${t.carrier !== undefined ? tx`, carrier = ${t.carrier}, tracking_no = ${t.trackingNo ?? null}` : tx``}
      FROM (SELECT id, status AS prior FROM orders WHERE id = ${t.orderId} FOR UPDATE) p
      WHERE o.id = p.id AND o.status = ANY(${from}::text[]) ${userId !== undefined ? tx`AND o.user_id = ${userId}` : tx``}
      RETURNING o.id, o.user_id AS "userId", o.order_no AS "orderNo", p.prior AS from),
    recorded AS (
      INSERT INTO order_events (order_id, from_status, to_status, actor_id, reason, data)
      SELECT id, "from", ${t.to}::text, ${t.actorId}::bigint, ${t.reason ?? null}::text, ${data}::jsonb FROM moved),
    audited AS (
      ${auditRowsOf(tx, 'moved', { actorId: t.actorId, action: `order.${t.to}`, targetType: 'order' }, tx`moved.id`, tx`jsonb_build_object('from', moved."from") || ${said}::jsonb`)})
    SELECT * FROM moved`;
  return rows;
}

async function refuse(tx: Tx, t: Transition, userId?: number): Promise<never> {
  const [cur] = await tx<Array<{ status: OrderStatus; userId: number }>>`
    SELECT status, user_id AS "userId" FROM orders WHERE id = ${t.orderId}`;
  if (!cur || (userId !== undefined && cur.userId !== userId) || cur.status === 'placing') {
    throw new DomainError('ORDER_NOT_FOUND', 'No such order');
  }
  throw new DomainError('ORDER_STATE_CONFLICT', `The order is ${cur.status}: it cannot become ${t.to}`, { status: cur.status });
}

/**
 * A transition on its own: the statement alone when it moves the order (it is atomic in itself),
 * otherwise a transaction that writes a redemption's orders row first or finds why not.
 */
export async function move(sql: Sql, t: Transition, userId?: number): Promise<TransitionRow> {
  const [row] = await update(sql, t, userId);
  if (row) return { ...row, status: t.to };
  return sql.begin((tx) => afterMiss(tx, t, userId));
}
