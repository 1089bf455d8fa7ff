/**
 * GET /v1/me/recommendations over a model built from Postgres: cold start, the points window and
 * live sale state, planted tastes (content and collaborative), limits and auth. Each case works
 * at its own scale of points, so one case's goods never fall in another's points window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { redeem, settled } from '../catalog/support.ts';
import { build, category, postgresBalance, recommendations, redeemed } from './support.ts';
import { ModelReader } from '../../src/recommendations/model.ts';
import { peerBands } from '../../src/recommendations/scoring.ts';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

async function memberWith(points: number) {
  const [m] = await ctx.createMembers(1);
  await ctx.grant(m.id, points);
  return m;
}

/** Members with no live account, whose Postgres balance is given: the model's peers. */
async function fixtureMembers(n: number, balance: number) {
  const ms = await ctx.createMembers(n);
  for (const m of ms) await postgresBalance(ctx, m.id, balance);
  return ms;
}

describe('access', () => {
  it('requires a bearer token', async () => {
    expectError(await ctx.app.inject({ url: '/v1/me/recommendations' }), 401, 'UNAUTHORIZED');
  });

  it('takes a limit from 1 to 20 and refuses anything else with 400', async () => {
    const m = await memberWith(10);
    for (const limit of ['0', '21', '-1', 'abc', '2.5']) {
      const res = await ctx.app.inject({ url: `/v1/me/recommendations?limit=${limit}`, headers: { authorization: `Bearer ${m.token}` } });
      expectError(res, 400, 'VALIDATION_FAILED');
    }
    const other = await ctx.app.inject({ url: '/v1/me/recommendations?size=3', headers: { authorization: `Bearer ${m.token}` } });
    expectError(other, 400, 'VALIDATION_FAILED');
    for (const limit of [1, 20]) expect(Array.isArray(await recommendations(ctx, m.token, limit))).toBe(true);
  });

  it('answers an empty list before any model is built', async () => {
    const m = await memberWith(1_000);
    expect(await recommendations(ctx, m.token)).toEqual([]);
  });
});

describe('cold start (scale 1,000 points)', () => {
  let goods: Record<'a' | 'b' | 'cheap' | 'dear' | 'quiet' | 'old', number>;

  beforeAll(async () => {
    const g = (name: string, pointsPrice: number, stock = 10) => ctx.createGoods({ name, pointsPrice, stock }).then((x) => x.id);
    goods = {
      a: await g('Cold alpha', 600),
      b: await g('Cold bravo', 700),
      cheap: await g('Cold cheap', 300),
      dear: await g('Cold dear', 1_600),
      quiet: await g('Cold quiet', 800),
      old: await g('Cold old', 650),
    };
    const others = await fixtureMembers(12, 50);
    for (const [i, m] of others.entries()) {
      const list = [goods.cheap, goods.dear];
      if (i < 5) list.push(goods.a);
      if (i < 2) list.push(goods.b);
      await redeemed(ctx, m.id, list);
      // redeemed long ago: out of the 7-day popularity window
      if (i < 8) await redeemed(ctx, m.id, [goods.old], 30);
    }
    await build(ctx);
  });

  it('gives a member without history the most redeemed goods of the last 7 days that fit their points, reason popular', async () => {
    const m = await memberWith(1_000);
    const items = await recommendations(ctx, m.token);
    const ids = items.map((i) => i.goods.id);
    expect(ids.slice(0, 2)).toEqual([goods.a, goods.b]);
    expect(items.slice(0, 2).map((i) => i.reason)).toEqual(['popular', 'popular']);
    expect(items[0].score).toBe(1);
    expect(items[1].score).toBeCloseTo(2 / 5, 4);
    // outside the window (0.5×–1.5× of 1,000 at the member's price): never, however popular
    expect(ids).not.toContain(goods.cheap);
    expect(ids).not.toContain(goods.dear);
    // no redemptions in 7 days: they only fill the list
    for (const i of items.filter((x) => x.goods.id === goods.quiet || x.goods.id === goods.old)) expect(i.reason).toBe('fits_your_points');
    for (const i of items) {
      expect(i.goods.price).toBeGreaterThanOrEqual(500);
      expect(i.goods.price).toBeLessThanOrEqual(1_500);
    }
  });

  it('returns the goods summary the catalog lists, with live stock and the member’s price', async () => {
    const m = await memberWith(1_000);
    const [first] = await recommendations(ctx, m.token, 1);
    const listed = (await ctx.app.inject({ url: `/v1/goods/${goods.a}` })).json();
    const { stock: _s, price: _p, pricing, ...rest } = first.goods as unknown as Record<string, unknown>;
    const { stock: _s2, price: _p2, ...listedRest } = listed;
    expect(rest).toEqual(listedRest);
    expect(pricing).toMatchObject({ base: 600 });
    expect(first.goods.stock).toBe(10);
  });
});

describe('window and live sale state (scale 10,000 points)', () => {
  it('recommends only goods priced 0.5×–1.5× of the available points', async () => {
    const ids = {
      low: (await ctx.createGoods({ name: 'Win low', pointsPrice: 4_000 })).id,
      in1: (await ctx.createGoods({ name: 'Win in one', pointsPrice: 6_000 })).id,
      in2: (await ctx.createGoods({ name: 'Win in two', pointsPrice: 9_000 })).id,
      stretch: (await ctx.createGoods({ name: 'Win stretch', pointsPrice: 14_500 })).id,
      over: (await ctx.createGoods({ name: 'Win over', pointsPrice: 15_500 })).id,
    };
    await build(ctx);
    const m = await memberWith(10_000);
    const got = (await recommendations(ctx, m.token, 20)).map((i) => i.goods.id);
    expect(got).toContain(ids.in1);
    expect(got).toContain(ids.in2);
    // above the balance but within 1.5×: worth earning toward
    expect(got).toContain(ids.stretch);
    expect(got).not.toContain(ids.low);
    expect(got).not.toContain(ids.over);
    // the same member with fewer points: the window moves with the live balance
    const poorer = await memberWith(5_900);
    const got2 = (await recommendations(ctx, poorer.token, 20)).map((i) => i.goods.id);
    expect(got2).toContain(ids.low);
    expect(got2).toContain(ids.in1);
    expect(got2).not.toContain(ids.in2);
  });

  it('drops an item sold out or switched off after the model was built (live stock and status)', async () => {
    const admin = await ctx.admin();
    const soldOut = (await ctx.createGoods({ name: 'Live last unit', pointsPrice: 7_000, stock: 1 })).id;
    const switchedOff = (await ctx.createGoods({ name: 'Live switched off', pointsPrice: 7_500, stock: 5 })).id;
    await build(ctx);
    const m = await memberWith(10_000);
    const before = (await recommendations(ctx, m.token, 20)).map((i) => i.goods.id);
    expect(before).toEqual(expect.arrayContaining([soldOut, switchedOff]));

    const buyer = await memberWith(10_000);
    expect((await redeem(ctx, buyer.token, soldOut)).statusCode).toBe(201);
    await settled(ctx, soldOut);
    const off = await ctx.app.inject({
      method: 'PATCH',
      url: `/v1/admin/goods/${switchedOff}`,
      headers: { authorization: `Bearer ${admin.token}`, 'idempotency-key': 'reco-off' },
      payload: { active: false },
    });
    expect(off.statusCode, off.body).toBe(200);

    const after = (await recommendations(ctx, m.token, 20)).map((i) => i.goods.id);
    expect(after).not.toContain(soldOut);
    expect(after).not.toContain(switchedOff);
  });
});

describe('planted tastes', () => {
  it('gives a member whose history is one category more of it, reason same_category_as_last (scale 100,000)', async () => {
    const books = await category(ctx, 'Books');
    const kitchen = await category(ctx, 'Kitchen');
    const g = (name: string, categoryId: number, tags: string[], pointsPrice: number) =>
      ctx.createGoods({ name, categoryId, tags, pointsPrice }).then((x) => x.id);
    const read1 = await g('Paperback mystery novel', books, ['novel', 'paper'], 60_000);
    const read2 = await g('Hardcover fantasy novel', books, ['novel', 'hardcover'], 70_000);
    const bookA = await g('Science fiction novel', books, ['novel', 'scifi'], 80_000);
    const bookB = await g('Poetry collection', books, ['poetry'], 75_000);
    const pan = await g('Cast iron pan', kitchen, ['cookware'], 80_000);
    const knife = await g('Chef knife', kitchen, ['cookware', 'steel'], 85_000);
    const m = await memberWith(100_000);
    await redeemed(ctx, m.id, [read1, read2]);
    await build(ctx);

    const items = await recommendations(ctx, m.token, 10);
    const ids = items.map((i) => i.goods.id);
    expect(ids).not.toContain(read1); // already redeemed
    expect(ids).not.toContain(read2);
    expect(ids.slice(0, 2)).toEqual([bookA, bookB]);
    for (const i of items.slice(0, 2)) expect(i.reason).toBe('same_category_as_last');
    expect(items[0].score).toBeGreaterThan(items[1].score);
    // the other category comes after, if at all, and never for its category
    for (const i of items.filter((x) => x.goods.id === pan || x.goods.id === knife)) {
      expect(i.reason).not.toBe('same_category_as_last');
      expect(i.score).toBeLessThan(items[1].score);
    }
  });

  it('puts what members of a similar balance redeemed together first, reason similar_members_redeemed (scale 1,000,000)', async () => {
    const sports = await category(ctx, 'Sports');
    const garden = await category(ctx, 'Garden');
    const g = (name: string, categoryId: number, tags: string[], pointsPrice: number) =>
      ctx.createGoods({ name, categoryId, tags, pointsPrice }).then((x) => x.id);
    const ball = await g('Leather football', sports, ['ball'], 600_000);
    const seeds = await g('Tomato seeds', garden, ['seeds'], 700_000);
    const hose = await g('Garden hose', garden, ['water'], 700_000);
    const racket = await g('Tennis racket', sports, ['racket'], 900_000);
    // peers (balance within 0.7–1.3× of the member's) redeemed the ball and the seeds
    for (const p of await fixtureMembers(6, 1_050_000)) await redeemed(ctx, p.id, [ball, seeds]);
    // members far richer redeemed the ball and the hose: not the member's peers
    for (const p of await fixtureMembers(9, 40_000_000)) await redeemed(ctx, p.id, [ball, hose]);
    const m = await memberWith(1_000_000);
    await redeemed(ctx, m.id, [ball]);
    await build(ctx);

    const items = await recommendations(ctx, m.token, 10);
    expect(items[0].goods.id).toBe(seeds);
    expect(items[0].reason).toBe('similar_members_redeemed');
    const hoseItem = items.find((i) => i.goods.id === hose);
    expect(hoseItem?.reason).not.toBe('similar_members_redeemed');
    // the content side still finds the other sports item
    expect(items.find((i) => i.goods.id === racket)?.reason).toBe('same_category_as_last');

    // asked again, the co-occurrence lists and counts come from the process's cache: the same answer
    expect(await recommendations(ctx, m.token, 10)).toEqual(items);
    // a reader that holds some of what a ranking needs (the ball's lists and counts) and reads the
    // rest (the hose's) gives what a reader that held nothing gives
    const current = (await ctx.redis.get(ctx.keys.recoCurrent()))!;
    const bands = peerBands(1_000_000);
    const warm = new ModelReader(ctx.redis, ctx.keys);
    await warm.rankingData(current, [ball], [seeds, racket], bands);
    const both = await warm.rankingData(current, [ball, hose], [seeds, racket, hose, ball], bands);
    expect(both).toEqual(await new ModelReader(ctx.redis, ctx.keys).rankingData(current, [ball, hose], [seeds, racket, hose, ball], bands));
    expect(both.peers.n.size).toBeGreaterThan(0);
    // a new build is read afresh: more peers now redeemed the ball with the hose than with the seeds
    for (const p of await fixtureMembers(12, 1_050_000)) await redeemed(ctx, p.id, [ball, hose]);
    await build(ctx);
    const after = await recommendations(ctx, m.token, 10);
    expect(after[0].goods.id).toBe(hose);
    expect(after[0].reason).toBe('similar_members_redeemed');
  });
});
