/**
 * Dynamic pricing: price = round half up(list price × tier factor × campaign discount × stock
 * factor), computed in the reserve script from the live stock at that instant; GET /v1/goods/:id
 * with a token shows the same price and its breakdown; expectedPrice refuses a price that moved
 * (409 PRICE_CHANGED) and holds nothing. Goods campaigns: admin CRUD, the lowest factor wins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { adminWrite, get, redeem, setTier, settled } from './support.ts';

let ctx: TestContext;
let admin: { id: number; token: string };

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

async function member(points = 100_000) {
  const [m] = await ctx.createMembers(1);
  await ctx.grant(m.id, points);
  return m;
}

async function campaign(body: Record<string, unknown>) {
  const res = await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods-campaigns', body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: number; status: string; discount: number };
}

const running = () => ({ startsAt: new Date(Date.now() - 60_000).toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString() });

describe('the stock factor at its boundaries', () => {
  it.each([
    [50, 1, 100],
    [49, 1.1, 110],
    [10, 1.1, 110],
    [9, 1.2, 120],
    [1, 1.2, 120],
  ])('with %i units left the factor is %d: shown %i, charged the same', async (stock, factor, price) => {
    const m = await member();
    const g = await ctx.createGoods({ pointsPrice: 100, stock, dynamicPricing: true });
    const shown = await get(ctx, `/v1/goods/${g.id}`, m.token);
    expect(shown.statusCode, shown.body).toBe(200);
    expect(shown.json().pricing).toEqual({ base: 100, tierFactor: 1, campaignDiscount: 1, stockFactor: factor, price });
    expect(shown.json().price).toBe(price);
    const res = await redeem(ctx, m.token, g.id, { expectedPrice: price });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().pointsSpent).toBe(price);
  });

  it('charges each unit of a run down through the boundaries by the stock before it was taken', async () => {
    const m = await member();
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 51, dynamicPricing: true });
    const spent: number[] = [];
    for (let i = 0; i < 43; i++) {
      const res = await redeem(ctx, m.token, g.id);
      expect(res.statusCode, res.body).toBe(201);
      spent.push(res.json().pointsSpent);
    }
    // stock 51, 50 → ×1.0; 49 … 10 → ×1.1; 9 → ×1.2
    expect(spent).toEqual([100, 100, ...Array(40).fill(110), 120]);
  });

  it('leaves goods without dynamic pricing at list price × tier factor, whatever the stock and campaigns', async () => {
    const m = await member();
    await setTier(ctx, m.id, 2);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 3 });
    await campaign({ goodsIds: [g.id], discount: 0.5, ...running() });
    const shown = (await get(ctx, `/v1/goods/${g.id}`, m.token)).json();
    expect(shown.pricing).toEqual({ base: 100, tierFactor: 0.9, campaignDiscount: 1, stockFactor: 1, price: 90 });
    expect((await redeem(ctx, m.token, g.id, { expectedPrice: 90 })).json().pointsSpent).toBe(90);
  });

  it('shows the list price and no breakdown without a token', async () => {
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 5, dynamicPricing: true });
    const shown = (await get(ctx, `/v1/goods/${g.id}`)).json();
    expect(shown.price).toBe(100);
    expect(shown.pricing).toBeUndefined();
  });
});

describe('tier and campaign factors', () => {
  it('multiplies tier × campaign × stock and rounds the product once, half up', async () => {
    const m = await member();
    await setTier(ctx, m.id, 2); // Gold: 0.9
    // 105 × 0.9 × 0.85 × 1.2 = 96.39 → 96
    const a = await ctx.createGoods({ pointsPrice: 105, stock: 9, dynamicPricing: true });
    await campaign({ goodsIds: [a.id], discount: 0.85, ...running() });
    const shownA = (await get(ctx, `/v1/goods/${a.id}`, m.token)).json();
    expect(shownA.pricing).toEqual({ base: 105, tierFactor: 0.9, campaignDiscount: 0.85, stockFactor: 1.2, price: 96 });
    expect((await redeem(ctx, m.token, a.id, { expectedPrice: 96 })).json().pointsSpent).toBe(96);
    // 15 × 0.9 = 13.5 exactly → 14 (half up), stock 100 → ×1
    const b = await ctx.createGoods({ pointsPrice: 15, stock: 100, dynamicPricing: true });
    expect((await get(ctx, `/v1/goods/${b.id}`, m.token)).json().price).toBe(14);
    expect((await redeem(ctx, m.token, b.id)).json().pointsSpent).toBe(14);
  });

  it('applies the lowest discount of the campaigns running for an item, by goods or by category; ended and future ones do not count', async () => {
    const m = await member();
    const cat = await adminWrite(ctx, admin.token, 'POST', '/v1/admin/categories', { name: 'Audio', slug: 'audio-pricing' });
    expect(cat.statusCode, cat.body).toBe(201);
    const g = await ctx.createGoods({ pointsPrice: 200, stock: 100, dynamicPricing: true, categoryId: cat.json().id });
    await campaign({ goodsIds: [g.id], discount: 0.9, ...running() });
    expect((await get(ctx, `/v1/goods/${g.id}`, m.token)).json().price).toBe(180);
    await campaign({ categoryId: cat.json().id, discount: 0.75, ...running() });
    expect((await get(ctx, `/v1/goods/${g.id}`, m.token)).json().pricing.campaignDiscount).toBe(0.75);
    // a bigger discount that has ended, and one still to come, change nothing
    await campaign({ goodsIds: [g.id], discount: 0.1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2020-01-02T00:00:00Z' });
    const later = await campaign({ goodsIds: [g.id], discount: 0.2, startsAt: '2099-01-01T00:00:00Z', endsAt: '2099-01-02T00:00:00Z' });
    expect(later.status).toBe('scheduled');
    const res = await redeem(ctx, m.token, g.id, { expectedPrice: 150 });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().pointsSpent).toBe(150);
  });

  it('a goods item moved into a discounted category is discounted from then on', async () => {
    const m = await member();
    const cat = (await adminWrite(ctx, admin.token, 'POST', '/v1/admin/categories', { name: 'Sale', slug: 'sale-move' })).json();
    await campaign({ categoryId: cat.id, discount: 0.5, ...running() });
    const g = await ctx.createGoods({ pointsPrice: 80, stock: 100, dynamicPricing: true });
    expect((await get(ctx, `/v1/goods/${g.id}`, m.token)).json().price).toBe(80);
    const moved = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${g.id}`, { categoryId: cat.id });
    expect(moved.statusCode, moved.body).toBe(200);
    expect((await get(ctx, `/v1/goods/${g.id}`, m.token)).json().price).toBe(40);
    expect((await redeem(ctx, m.token, g.id)).json().pointsSpent).toBe(40);
  });
});

describe('expectedPrice', () => {
  it('refuses a price that moved with 409 PRICE_CHANGED and the current price, holding and charging nothing', async () => {
    const m = await member(1000);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 10, dynamicPricing: true, perUserLimit: 5, dailyLimit: 3 });
    const shown = (await get(ctx, `/v1/goods/${g.id}`, m.token)).json().price;
    expect(shown).toBe(110);
    const snap = async () => ({
      goods: await ctx.redis.hgetall(ctx.keys.goods(g.id)),
      bought: await ctx.redis.hgetall(ctx.keys.bought(g.id)),
      daily: await ctx.redis.hgetall(ctx.keys.dailyBought(g.id)),
      holds: await ctx.redis.hgetall(ctx.keys.reservations(g.id)),
      deadlines: await ctx.redis.zcard(ctx.keys.reservationDeadlines(g.id)),
      account: await ctx.redis.hgetall(ctx.keys.account(m.id)),
      outbox: await ctx.redis.xlen(ctx.keys.outboxOf(m.id)),
    });
    const before = await snap();
    const res = await redeem(ctx, m.token, g.id, { expectedPrice: 100, key: 'shown-100' });
    const body = expectError(res, 409, 'PRICE_CHANGED') as unknown as { currentPrice: number; expectedPrice: number };
    expect(body.currentPrice).toBe(110);
    expect(body.expectedPrice).toBe(100);
    expect(await snap()).toEqual(before);
    // nothing was stored under the key: the same key with the current price goes through
    const retry = await redeem(ctx, m.token, g.id, { expectedPrice: 110, key: 'shown-100' });
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.json().pointsSpent).toBe(110);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
  });

  it('compares the unit price, for any quantity', async () => {
    const m = await member();
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 60, dynamicPricing: true });
    const res = await redeem(ctx, m.token, g.id, { quantity: 3, expectedPrice: 100 });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().pointsSpent).toBe(300);
  });

  it('price shown = price charged under racing restocks and a campaign starting mid-sale', { timeout: 60_000 }, async () => {
    const members = await Promise.all(Array.from({ length: 25 }, () => member(100_000)));
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 12, dynamicPricing: true });
    const startsAt = Date.now() + 600;
    await campaign({ goodsIds: [g.id], discount: 0.8, startsAt: new Date(startsAt).toISOString(), endsAt: new Date(startsAt + 3_600_000).toISOString() });
    const pipeline = await ctx.startPipeline();

    type Outcome = { shown: number; status: number; spent?: number; current?: number; code?: string };
    const outcomes: Outcome[] = [];
    const deadline = startsAt + 700;
    let restocks = 0;
    // buyers and restocker race until the campaign has started and at least 4 restocks landed (a
    // loaded machine makes fewer restocks per second; the race must still happen)
    const racing = () => Date.now() < deadline || restocks < 4;
    const buyer = async (m: { token: string }) => {
      while (racing()) {
        const shown = (await get(ctx, `/v1/goods/${g.id}`, m.token)).json().price as number;
        await new Promise((r) => setTimeout(r, Math.random() * 15));
        const res = await redeem(ctx, m.token, g.id, { expectedPrice: shown });
        const body = res.json();
        outcomes.push({ shown, status: res.statusCode, spent: body.pointsSpent, current: body.currentPrice, code: body.code });
      }
    };
    const restocker = async () => {
      while (racing()) {
        const res = await adminWrite(ctx, admin.token, 'POST', `/v1/admin/goods/${g.id}/restock`, { quantity: 12 });
        expect(res.statusCode, res.body).toBe(200);
        restocks++;
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
      }
    };
    await Promise.all([...members.map(buyer), restocker()]);
    await settled(ctx, g.id);
    await pipeline.drain();

    const accepted = outcomes.filter((o) => o.status === 201);
    const changed = outcomes.filter((o) => o.code === 'PRICE_CHANGED');
    // every answer is a sale at the price shown, a refused changed price, or sold out
    expect(outcomes.filter((o) => o.status !== 201 && o.code !== 'PRICE_CHANGED' && o.code !== 'SOLD_OUT')).toEqual([]);
    for (const o of accepted) expect(o.spent).toBe(o.shown);
    for (const o of changed) expect(o.current).not.toBe(o.shown);
    // the race did happen: prices with and without the campaign, across stock factors
    const prices = new Set(accepted.map((o) => o.spent));
    expect([...prices].some((p) => p! >= 100)).toBe(true);
    expect([...prices].some((p) => p! < 100)).toBe(true);
    expect(prices.size).toBeGreaterThanOrEqual(3);
    expect(restocks).toBeGreaterThan(3);

    // what the members were answered is what the ledger and the stock say
    const [{ n, spent }] = await ctx.sql<Array<{ n: number; spent: number }>>`
      SELECT count(*)::int AS n, COALESCE(sum(points_spent), 0)::int AS spent FROM redemptions WHERE goods_id = ${g.id}`;
    expect(n).toBe(accepted.length);
    expect(spent).toBe(accepted.reduce((s, o) => s + o.spent!, 0));
    const [{ total }] = await ctx.sql<Array<{ total: number }>>`SELECT total_stock AS total FROM goods WHERE id = ${g.id}`;
    expect(Number(await ctx.redis.hget(ctx.keys.goods(g.id), 'stock'))).toBe(total - n);
  });
});

describe('goods campaigns admin', () => {
  it('creates, lists, reads and changes a campaign; each write audited', async () => {
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 100, dynamicPricing: true });
    const c = await campaign({ name: 'Spring', goodsIds: [g.id, g.id], discount: 0.9, ...running() });
    expect(c).toMatchObject({ name: 'Spring', goodsIds: [g.id], categoryId: null, discount: 0.9, status: 'running' });
    const one = await get(ctx, `/v1/admin/goods-campaigns/${c.id}`, admin.token);
    expect(one.json()).toEqual(c);
    const list = (await get(ctx, '/v1/admin/goods-campaigns?status=running&limit=100', admin.token)).json();
    expect(list.items.map((i: { id: number }) => i.id)).toContain(c.id);
    const ended = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods-campaigns/${c.id}`, { endsAt: new Date(Date.now() - 1000).toISOString() });
    expect(ended.statusCode, ended.body).toBe(200);
    expect(ended.json().status).toBe('ended');
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM audit_log WHERE target_type = 'goods_campaign' AND target_id = ${String(c.id)}`;
    expect(n).toBe(2);
    // ended: the item is back at its price in this process at once
    const [m] = await ctx.createMembers(1);
    expect((await get(ctx, `/v1/goods/${g.id}`, m.token)).json().price).toBe(100);
  });

  it.each([
    ['no target', (g: number) => ({ discount: 0.9, ...running(), goodsIds: undefined, _: g })],
    ['both targets', (g: number) => ({ goodsIds: [g], categoryId: 1, discount: 0.9, ...running() })],
    ['discount 1', (g: number) => ({ goodsIds: [g], discount: 1, ...running() })],
    ['discount 0', (g: number) => ({ goodsIds: [g], discount: 0, ...running() })],
    ['discount 0.9999 (rounds to 1)', (g: number) => ({ goodsIds: [g], discount: 0.9999, ...running() })],
    ['discount 1.2 (a surcharge)', (g: number) => ({ goodsIds: [g], discount: 1.2, ...running() })],
    ['unknown goods', () => ({ goodsIds: [Number.MAX_SAFE_INTEGER], discount: 0.9, ...running() })],
    ['unknown category', () => ({ categoryId: 2_000_000_000, discount: 0.9, ...running() })],
    ['empty goods list', () => ({ goodsIds: [], discount: 0.9, ...running() })],
    ['endsAt before startsAt', (g: number) => ({ goodsIds: [g], discount: 0.9, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' })],
  ])('refuses %s with 400, writing nothing', async (_name, body) => {
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 1 });
    const payload = Object.fromEntries(Object.entries(body(g.id)).filter(([k, v]) => k !== '_' && v !== undefined));
    const [{ before }] = await ctx.sql<Array<{ before: number }>>`SELECT count(*)::int AS before FROM goods_campaigns`;
    expectError(await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods-campaigns', payload), 400, 'VALIDATION_FAILED');
    const [{ after }] = await ctx.sql<Array<{ after: number }>>`SELECT count(*)::int AS after FROM goods_campaigns`;
    expect(after).toBe(before);
  });

  it('answers 404 for a campaign that does not exist, and 403 to a member', async () => {
    expectError(await get(ctx, '/v1/admin/goods-campaigns/2000000000', admin.token), 404, 'GOODS_CAMPAIGN_NOT_FOUND');
    expectError(await adminWrite(ctx, admin.token, 'PATCH', '/v1/admin/goods-campaigns/2000000000', { discount: 0.5 }), 404, 'GOODS_CAMPAIGN_NOT_FOUND');
    const [m] = await ctx.createMembers(1);
    expectError(await get(ctx, '/v1/admin/goods-campaigns', m.token), 403, 'FORBIDDEN');
  });
});
