import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from './support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

describe('register → grant → redeem → history', () => {
  it('walks the main flow and persists every op', async () => {
    const pipeline = await ctx.startPipeline();
    const reg = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username: 'alice', email: 'Alice@Example.com', password: 'correct-horse' },
    });
    expect(reg.statusCode).toBe(201);
    const { user, accessToken } = reg.json();
    expect(user).toMatchObject({ username: 'alice', email: 'alice@example.com', role: 'member' });
    const auth = { authorization: `Bearer ${accessToken}` };

    const admin = await ctx.admin();
    const grant = await ctx.app.inject({
      method: 'POST',
      url: '/v1/admin/points/grant',
      headers: { authorization: `Bearer ${admin.token}`, 'idempotency-key': 'g-1' },
      payload: { userId: user.id, amount: 500, reason: 'welcome' },
    });
    expect(grant.statusCode).toBe(200);
    expect(grant.json().available).toBe(600); // 100 sign-up bonus + 500

    const goods = await ctx.createGoods({ pointsPrice: 150, stock: 5, perUserLimit: 2 });
    const redeem = await ctx.app.inject({
      method: 'POST',
      url: '/v1/redemptions',
      headers: { ...auth, 'idempotency-key': 'r-1' },
      payload: { goodsId: goods.id, quantity: 2 },
    });
    expect(redeem.statusCode).toBe(201);
    expect(redeem.json()).toMatchObject({ goodsId: goods.id, quantity: 2, pointsSpent: 300, available: 300, status: 'confirmed' });

    const balance = await ctx.app.inject({ url: '/v1/me/points', headers: auth });
    // totalEarned is the lifetime earned that sets the tier: the 500 granted by an admin do not count
    expect(balance.json()).toMatchObject({ available: 300, frozen: 0, totalEarned: 100 });

    await pipeline.drain();
    const ledger = await ctx.app.inject({ url: '/v1/me/ledger', headers: auth });
    expect(ledger.json().items.map((i: { kind: string; delta: number }) => [i.kind, i.delta])).toEqual([
      ['spend', -300],
      ['earn', 500],
      ['earn', 100],
    ]);
    const history = await ctx.app.inject({ url: '/v1/me/redemptions', headers: auth });
    expect(history.json().items).toHaveLength(1);
    const one = await ctx.app.inject({ url: `/v1/redemptions/${redeem.json().id}`, headers: auth });
    expect(one.json().exchangeNo).toBe(redeem.json().exchangeNo);
    const [account] = await ctx.sql`SELECT available, total_earned FROM point_accounts WHERE user_id = ${user.id}`;
    expect(account).toEqual({ available: 300, total_earned: 100 });
    const [audit] = await ctx.sql`SELECT actor_id, data FROM audit_log WHERE action = 'points.grant'`;
    expect(audit.actor_id).toBe(admin.id);
    const goodsNow = await ctx.app.inject({ url: `/v1/goods/${goods.id}` });
    expect(goodsNow.json().stock).toBe(3);
  });
});
