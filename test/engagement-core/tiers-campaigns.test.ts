/**
 * Member tiers (by lifetime earned points, only up; the earn that crosses a threshold is paid at
 * the old rate; the price factor is applied in the reserve step), multiplier campaigns (tier ×
 * the highest running campaign, floored), and the leaderboard history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayNumber, dayStartMs } from '../../src/engagement/business-day.ts';
import { notifyStartedCampaigns } from '../../src/engagement/notices.ts';
import { applyToBoards } from '../../src/leaderboards/apply.ts';
import type { Op } from '../../src/points/op.ts';
import { createTestContext, redeemAs, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let admin: { id: number; token: string };
beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

const earnRule = (userId: number, points: number, key: string, bizType = 'share') =>
  ctx.app.points.creditRule(userId, { bizType, bizId: '1', points, key, expiryDays: 30 });

async function adminCall(method: 'POST' | 'PUT' | 'PATCH', url: string, key: string, payload: object) {
  return ctx.app.inject({ method, url, headers: { ...bearer(admin.token), 'idempotency-key': key }, payload });
}

describe('tiers', () => {
  it('pays the earn that crosses a threshold at the old rate, upgrades atomically with it, and pushes once', async () => {
    const [m] = await ctx.createMembers(1);
    const a = await earnRule(m.id, 990, 'a');
    expect(a.op.delta).toBe(990);
    // crosses 1,000 (Silver): paid at Regular ×1.0
    const b = await earnRule(m.id, 20, 'b');
    expect(b.op).toMatchObject({ delta: 20, mult: 1000, tier: 1, tierFrom: 0 });
    // the next one at Silver ×1.05, floored
    const c = await earnRule(m.id, 30, 'c');
    expect(c.op).toMatchObject({ delta: 31, mult: 1050, tier: 1 });
    expect(c.op.tierFrom).toBeUndefined();
    const tier = await ctx.app.inject({ url: '/v1/me/tier', headers: bearer(m.token) });
    expect(tier.json()).toEqual({
      tier: 'Silver',
      position: 1,
      earnMultiplier: 1.05,
      priceFactor: 0.95,
      lifetimeEarned: 1041,
      next: { tier: 'Gold', needPoints: 3959, progressPercent: 1.02 },
    });
    await pipeline.drain();
    const pushes = await ctx.sql`SELECT type, title FROM push_records WHERE user_id = ${m.id} AND type = 'tier-upgrade'`;
    expect(pushes).toEqual([{ type: 'tier-upgrade', title: 'Welcome to Silver' }]);
    const [acct] = await ctx.sql`SELECT tier, total_earned FROM point_accounts WHERE user_id = ${m.id}`;
    expect(acct).toEqual({ tier: 1, total_earned: 1041 });
  });

  it('does not count admin grants; tiers never go down; a rebuild keeps the tier', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 50_000);
    expect((await ctx.app.tiers.describe(m.id)).tier).toBe('Regular');
    await earnRule(m.id, 6000, 'gold');
    expect((await ctx.app.tiers.describe(m.id)).tier).toBe('Gold');
    // spending does not lower it
    const goods = await ctx.createGoods({ pointsPrice: 40_000, stock: 5 });
    expect((await redeemAs(ctx, m.token, goods.id, 'spend-most')).statusCode).toBe(201);
    expect((await ctx.app.tiers.describe(m.id)).tier).toBe('Gold');
    await pipeline.drain();
    await ctx.redis.del(ctx.keys.account(m.id));
    expect((await ctx.app.tiers.describe(m.id)).tier).toBe('Gold');
  });

  it('prices a redemption by the tier in the reserve step (rounded half up), at the boundary', async () => {
    const [regular, silver] = await ctx.createMembers(2);
    await ctx.grant(regular.id, 1000);
    await ctx.grant(silver.id, 1000);
    await earnRule(silver.id, 1000, 'silver');
    const g99 = await ctx.createGoods({ pointsPrice: 99, stock: 10 });
    const g10 = await ctx.createGoods({ pointsPrice: 10, stock: 10 });
    // 99 × 0.95 = 94.05 → 94; 10 × 0.95 = 9.5 → 10 (half up)
    expect((await redeemAs(ctx, silver.token, g99.id, 's99')).json().pointsSpent).toBe(94);
    expect((await redeemAs(ctx, silver.token, g10.id, 's10', 3)).json().pointsSpent).toBe(30);
    expect((await redeemAs(ctx, regular.token, g99.id, 'r99')).json().pointsSpent).toBe(99);
  });

  it('lets admins replace the table, refusing tables that do not start at 0, are out of order, or drop a tier in use', async () => {
    const get = await ctx.app.inject({ url: '/v1/admin/tiers', headers: bearer(admin.token) });
    const tiers = get.json().tiers;
    expect(tiers.map((t: { name: string }) => t.name)).toEqual(['Regular', 'Silver', 'Gold', 'Diamond']);
    expectError(await adminCall('PUT', '/v1/admin/tiers', 't1', { tiers: [{ name: 'X', minPoints: 5, earnMultiplier: 1, priceFactor: 1 }] }), 400, 'VALIDATION_FAILED');
    expectError(
      await adminCall('PUT', '/v1/admin/tiers', 't2', { tiers: [tiers[0], { ...tiers[1], minPoints: 0 }] }),
      400,
      'VALIDATION_FAILED',
    );
    // members hold Gold (position 2): a table of two tiers would strand them
    expectError(await adminCall('PUT', '/v1/admin/tiers', 't3', { tiers: tiers.slice(0, 2) }), 400, 'VALIDATION_FAILED');
    const ok = await adminCall('PUT', '/v1/admin/tiers', 't4', { tiers: [...tiers.slice(0, 3), { ...tiers[3], earnMultiplier: 1.25 }] });
    expect(ok.statusCode).toBe(200);
    expect(ctx.app.engagement.tiers[3].earnPerMille).toBe(1250);
    await adminCall('PUT', '/v1/admin/tiers', 't5', { tiers });
  });
});

describe('multiplier campaigns', () => {
  it('multiplies matching rule earns inside the window by tier × the highest campaign, floored; shows the multiplier', async () => {
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const c1 = await adminCall('POST', '/v1/admin/campaigns', 'c1', { name: 'Double share', bizTypes: ['share'], multiplier: 2, startsAt: iso(now - 60_000), endsAt: iso(now + 3_600_000) });
    expect(c1.statusCode).toBe(201);
    expect(c1.json()).toMatchObject({ name: 'Double share', multiplier: 2, status: 'running', notify: false });
    await adminCall('POST', '/v1/admin/campaigns', 'c2', { name: 'Triple share', bizTypes: ['share', 'review'], multiplier: 3, startsAt: iso(now - 60_000), endsAt: iso(now + 3_600_000) });
    await adminCall('POST', '/v1/admin/campaigns', 'c3', { name: 'Later', bizTypes: ['share'], multiplier: 5, startsAt: iso(now + 3_600_000), endsAt: iso(now + 7_200_000) });
    const active = await ctx.app.inject({ url: '/v1/campaigns/active' });
    expect(active.json().items.map((c: { name: string }) => c.name).sort()).toEqual(['Double share', 'Triple share']);

    const [m, gold] = await ctx.createMembers(2);
    const earn = await ctx.app.inject({
      method: 'POST',
      url: '/v1/points/earn',
      headers: { ...bearer(m.token), 'idempotency-key': 'share-1' },
      payload: { action: 'share' },
    });
    expect(earn.json()).toMatchObject({ delta: 30, multiplier: 3 });
    await earnRule(gold.id, 5000, 'to-gold', 'review');
    // Gold ×1.1 × campaign ×3 = ×3.3 on 10 → 33
    expect((await earnRule(gold.id, 10, 'g-share')).op).toMatchObject({ delta: 33, mult: 3300 });
    // admin grants are never multiplied
    const grant = await ctx.app.points.grant(admin.id, m.id, 10, 'x', 'no-mult');
    expect(grant.op.delta).toBe(10);
    // end the campaigns: earns are plain again
    for (const c of (await ctx.app.campaigns.list({ status: 'running', limit: 10 })).items) {
      expect((await adminCall('PATCH', `/v1/admin/campaigns/${c.id}`, `end-${c.id}`, { endsAt: iso(now - 1000) })).statusCode).toBe(200);
    }
    expect((await earnRule(m.id, 10, 'after')).op.delta).toBe(10);
  });

  it('refuses a multiplier of 1 or less, or a window that ends before it starts', async () => {
    expectError(await adminCall('POST', '/v1/admin/campaigns', 'bad1', { name: 'x', bizTypes: ['share'], multiplier: 1, startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-02T00:00:00Z' }), 400, 'VALIDATION_FAILED');
    expectError(await adminCall('POST', '/v1/admin/campaigns', 'bad2', { name: 'x', bizTypes: ['share'], multiplier: 2, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }), 400, 'VALIDATION_FAILED');
    expectError(await adminCall('POST', '/v1/admin/campaigns', 'bad3', { name: 'x', bizTypes: [], multiplier: 2, startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-02T00:00:00Z' }), 400, 'VALIDATION_FAILED');
    expectError(await adminCall('PATCH', '/v1/admin/campaigns/999999', 'bad4', { name: 'y' }), 404, 'CAMPAIGN_NOT_FOUND');
  });

  it('announces a started campaign with notify to members once, however many runs race', async () => {
    const now = Date.now();
    const c = await adminCall('POST', '/v1/admin/campaigns', 'notify-1', {
      name: 'Weekend x2', bizTypes: ['share'], multiplier: 2, startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 60_000).toISOString(), notify: true,
    });
    const runs = await Promise.all([0, 1, 2].map(() => notifyStartedCampaigns(ctx.sql, ctx.app.campaigns, ctx.app.broadcasts, 500)));
    expect(runs.reduce((a, b) => a + b, 0)).toBe(1);
    expect((await ctx.app.campaigns.get(c.json().id)).notifiedAt).not.toBeNull();
    expect(await notifyStartedCampaigns(ctx.sql, ctx.app.campaigns, ctx.app.broadcasts, 500)).toBe(0);
  });
});

describe('GET /v1/leaderboards/:period/me/history', () => {
  it("gives the member's daily rank and points for the last N business days", async () => {
    const [a, b] = await ctx.createMembers(2);
    const today = dayNumber('UTC', Date.now());
    const op = (userId: number, day: number, points: number, seq: number): Op => ({
      opId: `h${userId}-${day}-${seq}`, kind: 'earn', userId, delta: points, balanceAfter: points, available: points,
      bizType: 'share', bizId: '1', at: dayStartMs('UTC', day) + 3_600_000, h: 'h', sid: `${Date.now()}-${seq}`,
    });
    await applyToBoards(ctx.redis, ctx.keys, 0, [op(a.id, today, 50, 1), op(b.id, today, 80, 2), op(a.id, today - 1, 30, 3), op(a.id, today - 3, 5, 4), op(b.id, today - 3, 1, 5)]);
    const res = await ctx.app.inject({ url: '/v1/leaderboards/daily/me/history?days=4', headers: bearer(a.token) });
    expect(res.statusCode).toBe(200);
    const items = res.json().items as Array<{ rank: number | null; points: number }>;
    // today's board also holds the other tests' earners: a's rank there is below b's
    const todayBoard = ctx.keys.board('daily', res.json().items[0].bucket);
    const aboveA = await ctx.redis.zcount(todayBoard, '(50', '+inf');
    expect(items.map((i) => [i.rank, i.points])).toEqual([
      [aboveA + 1, 50],
      [1, 30],
      [null, 0],
      [1, 5],
    ]);
    expect(aboveA).toBeGreaterThanOrEqual(1);
    expectError(await ctx.app.inject({ url: '/v1/leaderboards/daily/me/history?days=99', headers: bearer(a.token) }), 400, 'VALIDATION_FAILED');
  });
});
