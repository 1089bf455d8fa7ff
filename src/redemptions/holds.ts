/**
 * A reservation as the reserve scripts store it (lua/reserve-5.lua in the goods slot,
 * lua/hot-reserve-3.lua in a hot item's bucket), and the redemption a charged op stands for.
 */
import type { Op } from '../points/op.ts';
import type { Redemption } from './service.ts';

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
