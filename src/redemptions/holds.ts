/**
 * A reservation as the reserve scripts store it (lua/reserve-5.lua in the goods slot,
 * lua/hot-reserve-3.lua in a hot item's bucket), the redemption a charged op stands for, and the
 * answers both redemption paths (src/redemptions/service.ts, hot-stock.ts) give alike.
 */
import type { Op } from '../points/op.ts';
import { DomainError } from '../errors/domain-error.ts';
import { requestHash } from '../points/idempotency.ts';
import { countOutcome } from '../metrics/outcomes.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import type { RedeemResult, Redemption } from './service.ts';

/** A reservation as the reserve script stores it, under holdId(u, k). */
export interface Hold {
  u: number;
  k: string;
  o: string;
  q: number;
  p: number;
  t: string;
  h: string;
  d: number;
}

/** Holds belong to (member, Idempotency-Key): the reservations hash field. */
export function holdId(userId: number, kh: string): string {
  return `${userId}:${kh}`;
}

export function fromOp(op: Op): Redemption {
  return {
    id: op.opId,
    exchangeNo: String(op.exchangeNo),
    goodsId: Number(op.goodsId),
    quantity: Number(op.quantity),
    pointsSpent: -op.delta,
    available: op.available,
    status: 'confirmed',
    createdAt: new Date(op.at).toISOString(),
  };
}

/**
 * What a redemption answers from the key's record before any script runs: the recorded op again
 * (a replay), or KEY_REUSED when the key was used for another request. Undefined: no record.
 */
export function replayOf(prior: Op | { kind: 'claim'; h: string } | null, hash: string): RedeemResult | undefined {
  if (!prior) return undefined;
  if (prior.h !== hash) throw scriptError(ScriptCode.KeyReused);
  return { redemption: fromOp(prior as Op), replayed: true };
}

/** A redemption request's hash (what tells a replay of its key from the key reused for another request). */
export function redeemHash(goodsId: number, quantity: number, expectedPrice?: number): string {
  return requestHash('redeem', { goodsId, quantity, ...(expectedPrice !== undefined ? { expectedPrice } : {}) });
}

/** SOLD_OUT answered without a script, for an item seen sold out (counted as the reserve script's answer). */
export function soldOutRefusal(): DomainError {
  countOutcome('reserve', ScriptCode.SoldOut);
  return scriptError(ScriptCode.SoldOut);
}

/**
 * 409 PRICE_CHANGED: the unit price is not the one the client was shown; the body carries both,
 * and the item when the request named several (an order).
 */
export function priceChanged(currentPrice: number, expectedPrice?: number, goodsId?: number): DomainError {
  const item = goodsId === undefined ? 'this item' : `goods ${goodsId}`;
  return new DomainError('PRICE_CHANGED', `The price of ${item} has changed; see currentPrice`, { goodsId, currentPrice, expectedPrice });
}
