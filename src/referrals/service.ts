/**
 * Referrals: each member's code, who invited whom (one referrer per member, fixed at sign-up),
 * the sign-up rewards owed to both, and a member's referral summary. Commissions are derived by
 * the engagement role (src/referrals/commissions.ts).
 */
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { recordMemberEvent } from '../rewards/events.ts';
import { insertPayouts } from '../rewards/payouts.ts';
import { newReferralCode, normalizeCode } from './codes.ts';
import { BIZ, REFERRAL_EARNING_BIZ_TYPES, REFERRER_REWARD, WELCOME_REWARD } from './rules.ts';

/** Collisions are one in a trillion per code at a million members; a few tries are plenty. */
const CODE_ATTEMPTS = 10;

export interface ReferralSummary {
  code: string;
  invited: number;
  level2Invited: number;
  earned: number;
}

export class ReferralService {
  constructor(private readonly sql: Sql) {}

  /** The member a typed code belongs to; REFERRAL_CODE_INVALID when none does. */
  async resolve(typed: string): Promise<number> {
    const code = normalizeCode(typed);
    const [row] = code === null ? [] : await this.sql<Array<{ userId: number }>>`
      SELECT user_id AS "userId" FROM referral_codes WHERE code = ${code}`;
    if (!row) throw new DomainError('REFERRAL_CODE_INVALID', 'No member has this referral code');
    return row.userId;
  }

  /** Gives a new member a code, inside the transaction that creates them. */
  async assignCode(tx: Tx, userId: number): Promise<string> {
    for (let i = 0; i < CODE_ATTEMPTS; i++) {
      const code = newReferralCode();
      const rows = await tx`INSERT INTO referral_codes (user_id, code) VALUES (${userId}, ${code}) ON CONFLICT (code) DO NOTHING RETURNING 1`;
      if (rows.length > 0) return code;
    }
    throw new Error(`no free referral code after ${CODE_ATTEMPTS} attempts`);
  }

  /** The member's code; members created before codes existed get theirs on first ask. */
  async codeFor(userId: number): Promise<string> {
    for (let i = 0; i < CODE_ATTEMPTS; i++) {
      const [row] = await this.sql<Array<{ code: string }>>`SELECT code FROM referral_codes WHERE user_id = ${userId}`;
      if (row) return row.code;
      await this.sql`INSERT INTO referral_codes (user_id, code) VALUES (${userId}, ${newReferralCode()}) ON CONFLICT DO NOTHING`;
    }
    throw new Error(`no free referral code after ${CODE_ATTEMPTS} attempts`);
  }

  /**
   * Records that `referrerId` invited the new member, inside the transaction that creates them:
   * the referral (the table's check keeps the referrer older than the member, so no cycles), the
   * referrer's invite event (for invite tasks) and both sign-up rewards as payouts whose slots
   * derive from the new member's id. Returns the payout ids, to pay right after the commit.
   */
  async attach(tx: Tx, userId: number, referrerId: number): Promise<number[]> {
    await tx`INSERT INTO referrals (user_id, referrer_id) VALUES (${userId}, ${referrerId})`;
    await recordMemberEvent(tx, { userId: referrerId, type: 'invite', ref: String(userId), dedupe: `invite:${userId}` });
    return insertPayouts(tx, [
      {
        slot: `${BIZ.referral}:${userId}`,
        userId: referrerId,
        bizType: BIZ.referral,
        bizId: String(userId),
        direction: 'credit',
        points: REFERRER_REWARD,
        push: { type: BIZ.referral, title: 'A friend joined', body: 'Someone signed up with your referral code: +{points} points' },
      },
      {
        slot: `${BIZ.welcome}:${userId}`,
        userId,
        bizType: BIZ.welcome,
        bizId: String(referrerId),
        direction: 'credit',
        points: WELCOME_REWARD,
      },
    ]);
  }

  /** Code, members invited (level 1 and 2) and points the programme has paid the member, net of reversals. */
  async summary(userId: number): Promise<ReferralSummary> {
    const code = await this.codeFor(userId);
    const [row] = await this.sql<Array<Omit<ReferralSummary, 'code'>>>`
      SELECT
        (SELECT count(*) FROM referrals WHERE referrer_id = ${userId})::int AS invited,
        (SELECT count(*) FROM referrals r2 JOIN referrals r1 ON r2.referrer_id = r1.user_id
          WHERE r1.referrer_id = ${userId})::int AS "level2Invited",
        (SELECT COALESCE(SUM(CASE direction WHEN 'credit' THEN settled ELSE -settled END), 0) FROM engagement_payouts
          WHERE user_id = ${userId} AND status = 'paid' AND biz_type = ANY(${REFERRAL_EARNING_BIZ_TYPES}::text[]))::bigint AS earned`;
    return { code, ...row };
  }
}
