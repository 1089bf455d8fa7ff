/**
 * Commissions from persisted ops, as the engagement role follows the ledger: a referred member's
 * redemption (spend, bizType `redemption`) within COMMISSION_WINDOW_MS of their sign-up owes their
 * referrer floor(5%) and the referrer's referrer floor(2%) of the points spent; a refund op naming
 * that redemption (bizType `refund`, bizId = its op id) lowers what is owed, and the difference is
 * taken back. Owed is always floor(rate × (spent − refunded so far)), so partial refunds add up to
 * exactly the commission, and a refund persisted before its redemption (ids are not commit order
 * across batches) is simply counted when the redemption arrives.
 *
 * Every amount becomes a payout row whose slot names the op that caused it (`commission:<op>`,
 * `commission2:<op>`, `commission-reversal:<refund op>`, `commission2-reversal:<refund op>`), in
 * the transaction that advances the follower: each op is derived once, each slot paid once.
 */
import type { Tx } from '../db/client.ts';
import type { FollowedOp } from '../tasks/progress.ts';
import { insertPayouts, type PayoutInput } from '../rewards/payouts.ts';
import { BIZ, COMMISSION_WINDOW_MS, commissionDue, REFUND_BIZ_TYPE, type Level } from './rules.ts';

interface Chain {
  userId: number;
  referrerId: number;
  level2Id: number | null;
  signedUpAt: Date;
}

const LEVELS: Level[] = [1, 2];
const slotName = (level: Level, what: 'commission' | 'reversal', opId: string) =>
  `${level === 1 ? 'commission' : 'commission2'}${what === 'reversal' ? '-reversal' : ''}:${opId}`;

// redemptions and orders' captured points earn commissions alike
const isRedemption = (o: FollowedOp) => o.kind === 'spend' && (o.bizType === 'redemption' || o.bizType === 'order');
const isRefund = (o: FollowedOp) => o.bizType === REFUND_BIZ_TYPE && o.bizId !== null && o.bizId !== '';

/** Derives the commissions and reversals these ops cause (in id order). Returns payouts recorded. */
export async function applyCommissions(tx: Tx, ops: FollowedOp[]): Promise<number> {
  const relevant = ops.filter((o) => isRedemption(o) || isRefund(o));
  if (relevant.length === 0) return 0;
  const buyers = [...new Set(relevant.map((o) => o.userId))];
  const chains = await tx<Chain[]>`
    SELECT r1.user_id AS "userId", r1.referrer_id AS "referrerId", r2.referrer_id AS "level2Id", r1.created_at AS "signedUpAt"
    FROM referrals r1 LEFT JOIN referrals r2 ON r2.user_id = r1.referrer_id
    WHERE r1.user_id = ANY(${buyers}::bigint[])`;
  const byBuyer = new Map(chains.map((c) => [c.userId, c]));
  let recorded = 0;
  for (const op of relevant) {
    const chain = byBuyer.get(op.userId);
    if (!chain) continue;
    recorded += isRedemption(op) ? await onRedemption(tx, op, chain) : await onRefund(tx, op);
  }
  return recorded;
}

async function refundedOf(tx: Tx, sourceOpId: string, buyer: number): Promise<number> {
  const [{ total }] = await tx<Array<{ total: number }>>`
    SELECT COALESCE(SUM(points), 0)::bigint AS total FROM commission_refunds
    WHERE source_op_id = ${sourceOpId} AND user_id = ${buyer}`;
  return total;
}

async function onRedemption(tx: Tx, op: FollowedOp, chain: Chain): Promise<number> {
  if (op.at - chain.signedUpAt.getTime() > COMMISSION_WINDOW_MS) return 0;
  const spent = -op.delta;
  const refunded = await refundedOf(tx, op.opId, op.userId);
  const payouts: PayoutInput[] = [];
  for (const level of LEVELS) {
    const referrer = level === 1 ? chain.referrerId : chain.level2Id;
    const due = commissionDue(level, spent, refunded);
    if (referrer === null || due <= 0) continue;
    payouts.push({
      slot: slotName(level, 'commission', op.opId),
      userId: referrer,
      bizType: BIZ.commission[level],
      bizId: op.opId,
      direction: 'credit',
      points: due,
      sourceOpId: op.opId,
      level,
      base: spent,
      push: { type: BIZ.commission[level], title: 'Referral commission', body: 'A member you referred redeemed: +{points} points' },
    });
  }
  return (await insertPayouts(tx, payouts)).length;
}

async function onRefund(tx: Tx, op: FollowedOp): Promise<number> {
  const source = op.bizId!;
  // a refund counts only against its member's own redemption
  const [owner] = await tx<Array<{ userId: number }>>`SELECT user_id AS "userId" FROM ledger_entries WHERE op_id = ${source}`;
  if (owner && owner.userId !== op.userId) return 0;
  const fresh = await tx`
    INSERT INTO commission_refunds (refund_op_id, source_op_id, user_id, points, created_at)
    VALUES (${op.opId}, ${source}, ${op.userId}, ${Math.abs(op.delta)}, to_timestamp(${op.at} / 1000.0))
    ON CONFLICT (refund_op_id) DO NOTHING RETURNING 1`;
  if (fresh.length === 0) return 0;
  // nothing booked yet (the redemption not followed yet, out of its window, or owed nothing):
  // the refund is on record for when it is
  const booked = await tx<Array<{ level: Level; userId: number; spent: number; booked: number }>>`
    SELECT level, min(user_id) AS "userId", max(base) AS spent,
           SUM(CASE direction WHEN 'credit' THEN points ELSE -points END)::bigint AS booked
    FROM engagement_payouts WHERE source_op_id = ${source} GROUP BY level ORDER BY level`;
  if (booked.length === 0) return 0;
  const refunded = await refundedOf(tx, source, op.userId);
  const payouts: PayoutInput[] = [];
  for (const b of booked) {
    const excess = b.booked - commissionDue(b.level, b.spent, refunded);
    if (excess <= 0) continue;
    payouts.push({
      slot: slotName(b.level, 'reversal', op.opId),
      userId: b.userId,
      bizType: BIZ.reversal[b.level],
      bizId: source,
      direction: 'debit',
      points: excess,
      sourceOpId: source,
      level: b.level,
      base: b.spent,
      push: { type: BIZ.reversal[b.level], title: 'Commission reversed', body: 'A redemption you earned a commission on was refunded: -{points} points' },
    });
  }
  return (await insertPayouts(tx, payouts)).length;
}
