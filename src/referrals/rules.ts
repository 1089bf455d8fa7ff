/**
 * The referral programme's numbers and the one formula for commissions. Rewards and commissions
 * are credited plain (never multiplied by tier or campaign).
 */
const DAY_MS = 86_400_000;

/** The referrer's reward and the new member's welcome, at sign-up. */
export const REFERRER_REWARD = 100;
export const WELCOME_REWARD = 50;

/** Commission on a referred member's redemptions, per mille of the points spent: level 1, level 2. */
export const COMMISSION_PER_MILLE = { 1: 50, 2: 20 } as const;
export type Level = keyof typeof COMMISSION_PER_MILLE;

/** A redemption earns commissions when confirmed within this long after the buyer's sign-up. */
export const COMMISSION_WINDOW_MS = 365 * DAY_MS;

export const BIZ = {
  referral: 'referral',
  welcome: 'referral_welcome',
  commission: { 1: 'referral_commission', 2: 'referral_commission_2' },
  reversal: { 1: 'referral_commission_reversal', 2: 'referral_commission_2_reversal' },
} as const;

/**
 * The op that takes a redemption back (a cancel or a refund, issue 8): ledger bizType `refund`
 * with bizId = the redemption's op id; its delta is the points returned (partial refunds allowed).
 */
export const REFUND_BIZ_TYPE = 'refund';

/** Debits of the referral programme: bookkeeping, never "spending" for a task. */
export const REVERSAL_BIZ_TYPES: ReadonlySet<string> = new Set(Object.values(BIZ.reversal));

/** Everything the programme pays or takes back, for a member's `earned`. */
export const REFERRAL_EARNING_BIZ_TYPES = [BIZ.referral, ...Object.values(BIZ.commission), ...Object.values(BIZ.reversal)];

/** What a level is owed on a redemption: floor(rate × (spent − refunded)), never below 0. */
export function commissionDue(level: Level, spent: number, refunded: number): number {
  return Math.floor((Math.max(0, spent - refunded) * COMMISSION_PER_MILLE[level]) / 1000);
}
