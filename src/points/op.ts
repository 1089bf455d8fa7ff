/**
 * The op: what a Lua script records in the outbox and under its op id. Persist workers turn ops
 * into ledger rows, lots, redemptions and audits; the API answers replays from them.
 */
export type LotTouch = [lotId: string, taken: number, expiresAt: number];

export interface Op {
  opId: string;
  kind: 'earn' | 'spend' | 'expire' | 'freeze' | 'unfreeze' | 'refund';
  userId: number;
  delta: number;
  balanceAfter: number;
  available: number;
  bizType: string;
  bizId: string;
  at: number;
  h: string;
  /** Hash of the Idempotency-Key that produced the op (names its idempotency record). */
  k?: string;
  expiresAt?: number;
  lots?: LotTouch[] | Record<string, never>;
  /** Credits that create several lots with given expiries (a transfer received): [lotId, points, expiresAt] each. */
  newLots?: LotTouch[] | Record<string, never>;
  goodsId?: number;
  quantity?: number;
  exchangeNo?: string;
  t?: string;
  actorId?: number;
  reason?: string;
  /** Admin ops (grant, integrator hold): where the request came from, for their audit row. */
  ip?: string | null;
  ua?: string | null;
  rid?: string | null;
  /** Credits: the base before multipliers, the multiplier used (per mille), whether it counts toward the tier (1/0). */
  base?: number;
  mult?: number;
  lt?: number;
  /** Credits: the member's tier after the op, and before it when the op raised it. */
  tier?: number;
  tierFrom?: number;
  /** Holds (freeze / capture / release): the hold, its amount, frozen after, its expiry. */
  holdId?: string;
  amount?: number;
  frozen?: number;
  holdExpiresAt?: number;
  /**
   * Points given back to lots (a released hold, a refund): [lotId, amount, expiresAt, fromLotId?];
   * fromLotId when the portion moved to a new lot because its own had expired.
   */
  restored?: Array<[string, number, number, string?]>;
  /** Outbox stream entry id, added by the relay. */
  sid?: string;
}

export function parseOp(json: string): Op {
  return JSON.parse(json) as Op;
}

/** cjson encodes an empty Lua table as {}: normalise to a list. */
export function lotsOf(op: Op): LotTouch[] {
  return Array.isArray(op.lots) ? op.lots : [];
}

/** Portions given back by a release, a capture's remainder or a refund (a list, however cjson encoded it). */
export function restoredOf(op: Op): NonNullable<Op['restored']> {
  return Array.isArray(op.restored) ? op.restored : [];
}

export function newLotsOf(op: Op): LotTouch[] {
  return Array.isArray(op.newLots) ? op.newLots : [];
}
