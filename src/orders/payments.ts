/**
 * Payment providers: an order with cash due asks its provider for a payment id; the provider tells
 * the outcome through a signed webhook. One provider is built in, `simulated`: it signs its
 * webhooks like the real ones do — `x-payment-timestamp` (Unix seconds) and
 * `x-payment-signature: sha256=<hex HMAC-SHA256(PAYMENT_WEBHOOK_SECRET, "<timestamp>.<raw body>")>`
 * — so tests, benches and a local checkout can pay orders end to end.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { DomainError } from '../errors/domain-error.ts';

/** A webhook older (or further in the future) than this is refused as a possible replay. */
export const WEBHOOK_TOLERANCE_S = 300;

export const PaymentEventSchema = Type.Object(
  {
    eventId: Type.String({ minLength: 1, maxLength: 128 }),
    paymentId: Type.String({ minLength: 1, maxLength: 128 }),
    status: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')]),
    amount: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Minor units of the currency' }),
  },
  { additionalProperties: false },
);
export type PaymentEvent = Static<typeof PaymentEventSchema>;

export interface PaymentProvider {
  readonly name: string;
  /** A new payment for `amount` minor units; its id comes back in the provider's webhooks. */
  createPayment(orderId: string, amount: number): string;
  /** The event a webhook carries, once its signature and freshness are checked; 401s otherwise. */
  verify(headers: Record<string, string | string[] | undefined>, rawBody: string, nowS?: number): PaymentEvent;
}

export function signPayload(secret: string, timestamp: number | string, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
}

/** Headers the simulated provider sends with a webhook body. */
export function signedHeaders(secret: string, rawBody: string, nowS = Math.floor(Date.now() / 1000)): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-payment-timestamp': String(nowS),
    'x-payment-signature': signPayload(secret, nowS, rawBody),
  };
}

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

export class SimulatedProvider implements PaymentProvider {
  readonly name = 'simulated';
  constructor(private readonly secret: string) {}

  createPayment(): string {
    return `pay_${randomBytes(16).toString('hex')}`;
  }

  verify(headers: Record<string, string | string[] | undefined>, rawBody: string, nowS = Math.floor(Date.now() / 1000)): PaymentEvent {
    const ts = one(headers['x-payment-timestamp']);
    const sig = one(headers['x-payment-signature']);
    if (!ts || !sig) throw new DomainError('WEBHOOK_SIGNATURE_INVALID', 'x-payment-timestamp and x-payment-signature are required');
    if (!/^\d{1,12}$/.test(ts)) throw new DomainError('WEBHOOK_SIGNATURE_INVALID', 'x-payment-timestamp must be Unix seconds');
    const expected = Buffer.from(signPayload(this.secret, ts, rawBody));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new DomainError('WEBHOOK_SIGNATURE_INVALID', 'The webhook signature does not match');
    }
    // checked after the signature: an attacker learns nothing from which check failed
    if (Math.abs(nowS - Number(ts)) > WEBHOOK_TOLERANCE_S) {
      throw new DomainError('WEBHOOK_STALE', `The webhook timestamp is more than ${WEBHOOK_TOLERANCE_S} s away from now`);
    }
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      throw new DomainError('VALIDATION_FAILED', 'The webhook body is not JSON');
    }
    if (!Value.Check(PaymentEventSchema, body)) {
      const first = [...Value.Errors(PaymentEventSchema, body)][0];
      throw new DomainError('VALIDATION_FAILED', `Webhook body ${first?.path || '/'}: ${first?.message ?? 'invalid'}`);
    }
    return body;
  }
}
