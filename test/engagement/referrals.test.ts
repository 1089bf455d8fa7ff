/**
 * Referrals: codes (8 Crockford base32 characters, unique, read leniently), registration with a
 * code (an unknown one creates nothing), sign-up rewards paid once to two members, invite tasks,
 * commissions on two levels (floored, within 365 days of sign-up, once per redemption) and their
 * reversal by refund ops — full, partial, and a refund followed before its redemption.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, redeemAs, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError, rowCounts } from '../api/helpers.ts';
import { CODE_PATTERN, newReferralCode, normalizeCode } from '../../src/referrals/codes.ts';
import type { EngagementFollower } from '../../src/rewards/follower.ts';
import { followerFor, ledgerOf, persistAt, settle } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let follower: EngagementFollower;

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
  follower = followerFor(ctx);
  // only the referral programme's own credits in these ledgers
  await ctx.sql`DELETE FROM tasks`;
});
afterAll(async () => ctx?.close());

interface Member {
  id: number;
  token: string;
  code: string;
}

async function register(referralCode?: string): Promise<Member> {
  const name = `r${randomBytes(5).toString('hex')}`;
  const res = await ctx.app.inject({
    method: 'POST',
    url: '/v1/auth/register',
    payload: { username: name, email: `${name}@example.com`, password: 'correct-horse', ...(referralCode ? { referralCode } : {}) },
  });
  expect(res.statusCode, res.body).toBe(201);
  const { user, accessToken } = res.json();
  const summary = await ctx.app.inject({ url: '/v1/me/referral', headers: bearer(accessToken) });
  return { id: user.id, token: accessToken, code: summary.json().code };
}

const summaryOf = async (m: { token: string }) => (await ctx.app.inject({ url: '/v1/me/referral', headers: bearer(m.token) })).json();
const avail = async (id: number) => Number(await ctx.redis.hget(ctx.keys.account(id), 'avail'));
const deltas = async (id: number, bizType: string) => (await ledgerOf(ctx.sql, id, bizType)).map((r) => r.delta);

async function redeem(m: Member, price: number): Promise<string> {
  const goods = await ctx.createGoods({ pointsPrice: price, stock: 10 });
  await ctx.grant(m.id, price);
  const res = await redeemAs(ctx, m.token, goods.id, randomBytes(6).toString('hex'));
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id;
}

const refund = (m: Member, sourceOpId: string, points: number) =>
  ctx.app.points.creditPlain(m.id, { bizType: 'refund', bizId: sourceOpId, points, key: `refund:${randomBytes(6).toString('hex')}`, expiryDays: 365, lifetime: false });

describe('referral codes', () => {
  it('gives every member one code of 8 Crockford base32 characters, the same on every ask', async () => {
    const m = await register();
    expect(m.code).toMatch(CODE_PATTERN);
    expect((await summaryOf(m)).code).toBe(m.code);
    // members created before codes existed get one on first ask
    const [old] = await ctx.createMembers(1);
    const codes = await Promise.all(Array.from({ length: 10 }, () => summaryOf(old)));
    expect(new Set(codes.map((c) => c.code)).size).toBe(1);
    expect(codes[0].code).toMatch(CODE_PATTERN);
    expect(await ctx.sql`SELECT code FROM referral_codes WHERE user_id = ${old.id}`).toHaveLength(1);
  });

  it('draws codes uniformly at random and reads typed codes leniently', () => {
    const drawn = Array.from({ length: 20_000 }, newReferralCode);
    expect(drawn.every((c) => CODE_PATTERN.test(c))).toBe(true);
    expect(new Set(drawn).size).toBe(drawn.length);
    // every character position uses the whole alphabet: 20,000 draws leave none of 32 symbols out
    for (let pos = 0; pos < 8; pos++) expect(new Set(drawn.map((c) => c[pos])).size).toBe(32);
    expect(normalizeCode('ab1o-ilxz')).toBe('AB1011XZ');
    expect(normalizeCode('abcd-efgh')).toBe('ABCDEFGH');
    expect(normalizeCode('0oIl1234')).toBe('00111234');
    expect(normalizeCode('ABCDEFGU')).toBeNull();
    expect(normalizeCode('ABCDEFG')).toBeNull();
  });

  it('refuses an unknown or malformed code with 400 REFERRAL_CODE_INVALID and creates nothing', async () => {
    // earlier tests' ops still on their way to Postgres would move the counts
    await settle(pipeline, follower);
    const before = await rowCounts(ctx);
    const [{ codes }] = await ctx.sql<Array<{ codes: number }>>`SELECT count(*)::int AS codes FROM referral_codes`;
    let unknown = newReferralCode();
    while ((await ctx.sql`SELECT 1 FROM referral_codes WHERE code = ${unknown}`).length > 0) unknown = newReferralCode();
    for (const referralCode of [unknown, 'not-a-code', 'UUUUUUUU']) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        payload: { username: 'nobody', email: 'nobody@example.com', password: 'correct-horse', referralCode },
      });
      expectError(res, 400, 'REFERRAL_CODE_INVALID');
    }
    expect(await rowCounts(ctx)).toEqual(before);
    const [{ after }] = await ctx.sql<Array<{ after: number }>>`SELECT count(*)::int AS after FROM referral_codes`;
    expect(after).toBe(codes);
    expect(await ctx.sql`SELECT 1 FROM users WHERE username = 'nobody'`).toHaveLength(0);
  });
});

describe('sign-up with a code', () => {
  it('credits the referrer 100 and the new member 50 once each, and pushes the referrer', async () => {
    const referrer = await register();
    const joined = await register(referrer.code.toLowerCase());
    expect(await avail(referrer.id)).toBe(200); // sign-up 100 + referral 100
    expect(await avail(joined.id)).toBe(150); // sign-up 100 + welcome 50
    await settle(pipeline, follower);
    await settle(pipeline, follower);
    expect(await ledgerOf(ctx.sql, referrer.id, 'referral')).toEqual([expect.objectContaining({ delta: 100, bizId: String(joined.id) })]);
    expect(await ledgerOf(ctx.sql, joined.id, 'referral_welcome')).toEqual([expect.objectContaining({ delta: 50, bizId: String(referrer.id) })]);
    expect(await avail(referrer.id)).toBe(200);
    const pushes = await ctx.sql`SELECT type, dedupe_key FROM push_records WHERE user_id = ${referrer.id}`;
    expect(pushes).toEqual([{ type: 'referral', dedupe_key: `payout:referral:${joined.id}` }]);
    expect(await summaryOf(referrer)).toEqual({ code: referrer.code, invited: 1, level2Invited: 0, earned: 100 });
    expect(await ctx.sql`SELECT referrer_id FROM referrals WHERE user_id = ${joined.id}`).toEqual([{ referrer_id: referrer.id }]);
  });

  it('leaves rewards the API could not pay to the engagement role, which pays them once', async () => {
    const referrer = await register();
    const [joined] = await ctx.createMembers(1);
    // committed with the account, then the API died before paying
    await ctx.sql.begin((tx) => ctx.app.referrals.attach(tx, joined.id, referrer.id));
    expect(await avail(referrer.id)).toBe(100);
    await settle(pipeline, follower);
    await settle(pipeline, follower);
    expect(await deltas(referrer.id, 'referral')).toEqual([100]);
    expect(await deltas(joined.id, 'referral_welcome')).toEqual([50]);
  });

  it('keeps one referrer per member, older than the member: no self-referral, no cycle', async () => {
    const [a, b] = await ctx.createMembers(2);
    await ctx.sql`INSERT INTO referrals (user_id, referrer_id) VALUES (${b.id}, ${a.id})`;
    await expect(ctx.sql`INSERT INTO referrals (user_id, referrer_id) VALUES (${b.id}, ${a.id})`).rejects.toMatchObject({ code: '23505' });
    await expect(ctx.sql`INSERT INTO referrals (user_id, referrer_id) VALUES (${a.id}, ${a.id})`).rejects.toMatchObject({ code: '23514' });
    await expect(ctx.sql`INSERT INTO referrals (user_id, referrer_id) VALUES (${a.id}, ${b.id})`).rejects.toMatchObject({ code: '23514' });
  });

  it('counts members who signed up with your code toward an invite task', async () => {
    await ctx.sql`INSERT INTO tasks (key, title, frequency, event, target, reward) VALUES ('invite_2', 'Invite 2', 'once', 'invite', 2, 70)`;
    const referrer = await register();
    await register(referrer.code);
    await settle(pipeline, follower);
    expect(await deltas(referrer.id, 'task')).toEqual([]);
    await register(referrer.code);
    await settle(pipeline, follower);
    expect(await deltas(referrer.id, 'task')).toEqual([70]);
    await ctx.sql`DELETE FROM tasks WHERE key = 'invite_2'`;
  });
});

describe('commissions', () => {
  async function chain(): Promise<{ top: Member; mid: Member; buyer: Member }> {
    const top = await register();
    const mid = await register(top.code);
    const buyer = await register(mid.code);
    await settle(pipeline, follower);
    return { top, mid, buyer };
  }

  it('pays the referrer floor(5%) and their referrer floor(2%) once per redemption', async () => {
    const { top, mid, buyer } = await chain();
    const opId = await redeem(buyer, 1990);
    const small = await redeem(buyer, 19); // 0.95 and 0.38: nothing owed
    await settle(pipeline, follower);
    await settle(pipeline, follower);
    expect(await ledgerOf(ctx.sql, mid.id, 'referral_commission')).toEqual([expect.objectContaining({ delta: 99, bizId: opId })]);
    expect(await ledgerOf(ctx.sql, top.id, 'referral_commission_2')).toEqual([expect.objectContaining({ delta: 39, bizId: opId })]);
    expect(await ledgerOf(ctx.sql, top.id, 'referral_commission')).toEqual([]);
    expect(await ctx.sql`SELECT 1 FROM engagement_payouts WHERE source_op_id = ${small}`).toHaveLength(0);
    expect(await summaryOf(top)).toEqual({ code: top.code, invited: 1, level2Invited: 1, earned: 100 + 39 });
    expect(await summaryOf(mid)).toMatchObject({ invited: 1, level2Invited: 0, earned: 100 + 99 });
  });

  it('pays nothing on a redemption more than 365 days after the buyer signed up', async () => {
    const { mid, buyer } = await chain();
    await ctx.sql`UPDATE referrals SET created_at = now() - interval '366 days' WHERE user_id = ${buyer.id}`;
    await redeem(buyer, 1000);
    await settle(pipeline, follower);
    expect(await deltas(mid.id, 'referral_commission')).toEqual([]);
    await ctx.sql`UPDATE referrals SET created_at = now() - interval '364 days' WHERE user_id = ${buyer.id}`;
    await redeem(buyer, 1000);
    await settle(pipeline, follower);
    expect(await deltas(mid.id, 'referral_commission')).toEqual([50]);
  });

  it('takes the commissions back when the redemption is refunded, in part and then in full', async () => {
    const { top, mid, buyer } = await chain();
    const opId = await redeem(buyer, 1000);
    await settle(pipeline, follower);
    expect([await deltas(mid.id, 'referral_commission'), await deltas(top.id, 'referral_commission_2')]).toEqual([[50], [20]]);
    const before = [await avail(mid.id), await avail(top.id)];

    await refund(buyer, opId, 300); // owed: floor(35) and floor(14)
    await settle(pipeline, follower);
    expect(await deltas(mid.id, 'referral_commission_reversal')).toEqual([-15]);
    expect(await deltas(top.id, 'referral_commission_2_reversal')).toEqual([-6]);
    await refund(buyer, opId, 700);
    await settle(pipeline, follower);
    await settle(pipeline, follower);
    expect(await deltas(mid.id, 'referral_commission_reversal')).toEqual([-15, -35]);
    expect(await deltas(top.id, 'referral_commission_2_reversal')).toEqual([-6, -14]);
    expect([await avail(mid.id), await avail(top.id)]).toEqual([before[0] - 50, before[1] - 20]);
    expect((await summaryOf(mid)).earned).toBe(100);
    const kinds = await ctx.sql`SELECT DISTINCT kind FROM ledger_entries WHERE biz_type LIKE '%reversal'`;
    expect(kinds).toEqual([{ kind: 'spend' }]);
  });

  it('takes back only what the referrer still has, recording the shortfall', async () => {
    const { mid, buyer } = await chain();
    const opId = await redeem(buyer, 1000);
    await settle(pipeline, follower);
    // the referrer spends everything but 20 of the commission
    const all = await avail(mid.id);
    const goods = await ctx.createGoods({ pointsPrice: all - 20, stock: 1 });
    expect((await redeemAs(ctx, mid.token, goods.id, randomBytes(6).toString('hex'))).statusCode).toBe(201);
    await refund(buyer, opId, 1000);
    await settle(pipeline, follower);
    expect(await deltas(mid.id, 'referral_commission_reversal')).toEqual([-20]);
    expect(await avail(mid.id)).toBe(0);
    const [p] = await ctx.sql`SELECT points, settled, status FROM engagement_payouts WHERE slot LIKE 'commission-reversal:%' AND user_id = ${mid.id}`;
    expect(p).toEqual({ points: 50, settled: 20, status: 'paid' });
  });

  it('counts a refund followed before its redemption, and ignores a refund naming another member\'s redemption', async () => {
    const { top, mid, buyer } = await chain();
    const [stranger] = await ctx.createMembers(1);
    const at = Date.now();
    const sourceOpId = `src${randomBytes(8).toString('hex')}`;
    // the refund's batch committed first: its ledger id is lower than the redemption's
    await persistAt(ctx.sql, { userId: buyer.id, kind: 'earn', delta: 400, bizType: 'refund', bizId: sourceOpId, at: at + 1 });
    await persistAt(ctx.sql, { opId: sourceOpId, userId: buyer.id, kind: 'spend', delta: -1000, bizType: 'redemption', at });
    await settle(pipeline, follower);
    expect(await deltas(mid.id, 'referral_commission')).toEqual([30]); // floor(5% of 600)
    expect(await deltas(top.id, 'referral_commission_2')).toEqual([12]);

    const opId = await redeem(buyer, 1000);
    await settle(pipeline, follower);
    await ctx.app.points.creditPlain(stranger.id, { bizType: 'refund', bizId: opId, points: 1000, key: `refund:${randomBytes(4).toString('hex')}`, expiryDays: 365, lifetime: false });
    await settle(pipeline, follower);
    expect(await deltas(mid.id, 'referral_commission_reversal')).toEqual([]);
  });
});
