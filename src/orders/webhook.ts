/**
 * The payment webhook: a verified event (src/orders/payments.ts) is applied once per eventId —
 * recorded in payment_events in the same transaction as the order's transition, so a replay finds
 * the first outcome and changes nothing.
 *   succeeded, amount = cash due, order pending → paid (then its hold is captured)
 *   failed, order pending                       → cancelled (its hold released, stock returned)
 *   amount ≠ cash due                            → 409 PAYMENT_AMOUNT_MISMATCH, an alarm, no change
 *   succeeded for an order no longer pending     → 409 ORDER_STATE_CONFLICT and an alarm (money
 *                                                  taken for a cancelled order must be returned by hand)
 */
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { transition } from './lifecycle.ts';
import type { PaymentEvent } from './payments.ts';
import { recordAudit } from '../audit/log.ts';

export type WebhookOutcome = 'paid' | 'cancelled' | 'already_paid' | 'already_cancelled' | 'amount_mismatch' | 'late_payment';

export interface WebhookResult {
  outcome: WebhookOutcome;
  orderId: string;
  duplicate: boolean;
}

export interface Alarm {
  (kind: 'payment_amount_mismatch' | 'payment_for_closed_order', detail: Record<string, unknown>): void;
}

const REFUSED: Partial<Record<WebhookOutcome, DomainError>> = {
  amount_mismatch: new DomainError('PAYMENT_AMOUNT_MISMATCH', 'The amount differs from the cash due: nothing was changed'),
  late_payment: new DomainError('ORDER_STATE_CONFLICT', 'The order is no longer waiting for payment: nothing was changed'),
};

export async function applyPaymentEvent(sql: Sql, e: PaymentEvent, alarm: Alarm): Promise<WebhookResult> {
  const result = await sql.begin(async (tx) => {
    const [order] = await tx<Array<{ id: string; status: string; cashDue: number }>>`
      SELECT id, status, cash_due AS "cashDue" FROM orders WHERE payment_id = ${e.paymentId} FOR UPDATE`;
    if (!order) throw new DomainError('PAYMENT_NOT_FOUND', 'No order waits for this paymentId');
    const [seen] = await tx<Array<{ outcome: WebhookOutcome; paymentId: string }>>`
      SELECT outcome, payment_id AS "paymentId" FROM payment_events WHERE event_id = ${e.eventId}`;
    if (seen && seen.paymentId !== e.paymentId) {
      throw new DomainError('VALIDATION_FAILED', 'This eventId was already used for another payment');
    }
    if (seen) return { outcome: seen.outcome, orderId: order.id, duplicate: true };
    // still being placed (a payment id is given out before the points are frozen): not recorded, so a retry applies it
    if (order.status === 'placing') throw new DomainError('ORDER_STATE_CONFLICT', 'The order is still being placed; retry the event');
    let outcome: WebhookOutcome;
    if (e.status === 'succeeded' && e.amount !== order.cashDue) outcome = 'amount_mismatch';
    else if (order.status === 'pending_payment') {
      outcome = e.status === 'succeeded' ? 'paid' : 'cancelled';
      await transition(tx, {
        orderId: order.id,
        to: outcome,
        from: ['pending_payment'],
        actorId: null,
        reason: outcome === 'paid' ? 'payment succeeded' : 'payment failed',
        data: { eventId: e.eventId, paymentId: e.paymentId, amount: e.amount },
      });
    } else if (e.status === 'failed') {
      outcome = order.status === 'cancelled' ? 'already_cancelled' : 'already_paid';
    } else {
      outcome = order.status === 'cancelled' || order.status === 'refunded' ? 'late_payment' : 'already_paid';
    }
    await tx`INSERT INTO payment_events (event_id, payment_id, status, amount, outcome)
             VALUES (${e.eventId}, ${e.paymentId}, ${e.status}, ${e.amount}, ${outcome})`;
    if (outcome === 'amount_mismatch' || outcome === 'late_payment') {
      await recordAudit(tx, { actorId: null, action: `payment.${outcome}`, targetType: 'order', targetId: order.id, data: { eventId: e.eventId, paymentId: e.paymentId, status: e.status, amount: e.amount, cashDue: order.cashDue, orderStatus: order.status } });
    }
    return { outcome, orderId: order.id, duplicate: false };
  });
  if (!result.duplicate && result.outcome === 'amount_mismatch') {
    alarm('payment_amount_mismatch', { eventId: e.eventId, paymentId: e.paymentId, amount: e.amount, orderId: result.orderId });
  }
  if (!result.duplicate && result.outcome === 'late_payment') {
    alarm('payment_for_closed_order', { eventId: e.eventId, paymentId: e.paymentId, amount: e.amount, orderId: result.orderId });
  }
  const refused = REFUSED[result.outcome];
  if (refused) throw new DomainError(refused.code, refused.message, { outcome: result.outcome, duplicate: result.duplicate });
  return result;
}
