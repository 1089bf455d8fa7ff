/**
 * The reserve, release and quote scripts on their own, with a fake clock (the scripts' now
 * override): the daily limit counts per member per business day and starts again the next one
 * (in BUSINESS_TIMEZONE through the offset the API passes); a release gives back that day's
 * units; quote and reserve price alike, exactly, rounding half up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, T0, goodsSet, luaEnv, release, reserve, type LuaEnv } from '../lua/support.ts';

let env: LuaEnv;
beforeAll(() => {
  env = luaEnv();
});
afterAll(async () => env?.close());

let seq = 0;
const nextId = () => ++seq;
const op = () => `op-${nextId()}`;
const SHANGHAI = 8 * HOUR;

async function item(g: { stock?: number; price?: number; dailyLimit?: number; limit?: number; dynamic?: boolean } = {}) {
  const gid = 1000 + nextId();
  await goodsSet(env.redis, env.keys, gid, { price: g.price ?? 100, stock: g.stock ?? 100, dailyLimit: g.dailyLimit, limit: g.limit, dynamic: g.dynamic });
  return gid;
}

const quote = (gid: number, uid: number, now: number, o: { tier?: number; campaign?: number; offset?: number } = {}) =>
  env.redis.pmQuote(
    env.keys.goods(gid), env.keys.bought(gid), env.keys.dailyBought(gid), uid, o.tier ?? 1000, o.campaign ?? 1000, o.offset ?? 0, now,
  );

describe('daily limit in the reserve script', () => {
  it('counts per member per business day and starts again on the next day', async () => {
    const gid = await item({ dailyLimit: 2 });
    const at = (now: number, uid = 7) => reserve(env.redis, env.keys, { gid, opId: op(), uid, qty: 1, now, token: 't' });
    expect((await at(T0))[0]).toBe(1);
    expect((await at(T0 + HOUR))[0]).toBe(1);
    expect(await at(T0 + 2 * HOUR)).toEqual([-14, 2]);
    // another member has their own count
    expect((await at(T0, 8))[0]).toBe(1);
    // the last millisecond of the day (T0 is noon UTC) is still that day; midnight starts the next
    expect(await at(T0 + 12 * HOUR - 1)).toEqual([-14, 2]);
    expect((await at(T0 + 12 * HOUR))[0]).toBe(1);
    expect((await at(T0 + DAY))[0]).toBe(1);
    expect(await at(T0 + DAY + 1)).toEqual([-14, 2]);
    // the per-member limit still counts every day's units
    expect(await env.redis.hget(env.keys.bought(gid), '7')).toBe('4');
  });

  it('turns the day at midnight in the business time zone (the offset the API passes)', async () => {
    const gid = await item({ dailyLimit: 1 });
    const at = (now: number) => reserve(env.redis, env.keys, { gid, opId: op(), uid: 9, qty: 1, now, token: 't', dayOffsetMs: SHANGHAI });
    // 15:59 UTC is 23:59 in Shanghai; 16:00 UTC is the next day there
    const shanghaiMidnight = Date.UTC(2026, 2, 10, 16, 0, 0);
    expect((await at(shanghaiMidnight - 60_000))[0]).toBe(1);
    expect(await at(shanghaiMidnight - 1)).toEqual([-14, 1]);
    expect((await at(shanghaiMidnight))[0]).toBe(1);
  });

  it('refuses a quantity that would pass the daily limit, holding nothing', async () => {
    const gid = await item({ dailyLimit: 3, stock: 10 });
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 5, qty: 4, now: T0, token: 't' })).toEqual([-14, 0]);
    expect(await env.redis.hget(env.keys.goods(gid), 'stock')).toBe('10');
    expect(await env.redis.hlen(env.keys.dailyBought(gid))).toBe(0);
    expect(await env.redis.hlen(env.keys.bought(gid))).toBe(0);
  });

  it("gives a released reservation's units back to the day it counted on, and not to a later day", async () => {
    const gid = await item({ dailyLimit: 2 });
    const a = op();
    await reserve(env.redis, env.keys, { gid, opId: a, uid: 3, qty: 2, now: T0, token: 'ta' });
    expect(await env.redis.hget(env.keys.dailyBought(gid), '3')).toBe(`${Math.floor(T0 / DAY)}:2`);
    expect(await release(env.redis, env.keys, gid, a, 'ta')).toBe(1);
    expect(await env.redis.hget(env.keys.dailyBought(gid), '3')).toBeNull();
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 3, qty: 2, now: T0, token: 't' }))[0]).toBe(1);

    // held yesterday, released today: today's count is not lowered by it
    const b = op();
    const gid2 = await item({ dailyLimit: 2 });
    await reserve(env.redis, env.keys, { gid: gid2, opId: b, uid: 3, qty: 1, now: T0, token: 'tb' });
    await reserve(env.redis, env.keys, { gid: gid2, opId: op(), uid: 3, qty: 2, now: T0 + DAY, token: 't' });
    expect(await release(env.redis, env.keys, gid2, b, 'tb')).toBe(1);
    expect(await env.redis.hget(env.keys.dailyBought(gid2), '3')).toBe(`${Math.floor((T0 + DAY) / DAY)}:2`);
    expect(await env.redis.hget(env.keys.bought(gid2), '3')).toBe('2');
  });

  it('writes no day count for goods without a daily limit', async () => {
    const gid = await item();
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 4, qty: 1, now: T0, token: 't' }))[0]).toBe(1);
    expect(await env.redis.exists(env.keys.dailyBought(gid))).toBe(0);
  });

  it('quote reports the units the limits leave today', async () => {
    const gid = await item({ dailyLimit: 3, limit: 5 });
    await reserve(env.redis, env.keys, { gid, opId: op(), uid: 6, qty: 2, now: T0, token: 't' });
    const q = await quote(gid, 6, T0);
    expect(q.slice(8)).toEqual([3, 1]);
    expect((await quote(gid, 6, T0 + DAY)).slice(8)).toEqual([3, 3]);
  });
});

describe('pricing in the scripts', () => {
  /** The formula with exact integers: round half up(base × tier × campaign × sf / 10^7), at least 1. */
  const reference = (base: number, tier: number, campaign: number, stock: number, dyn: boolean) => {
    const sf = dyn ? (stock < 10 ? 12n : stock < 50 ? 11n : 10n) : 10n;
    const n = BigInt(base) * BigInt(tier) * BigInt(dyn ? campaign : 1000) * sf;
    const d = 10_000_000n;
    const p = (2n * n + d) / (2n * d);
    return Number(p < 1n ? 1n : p);
  };

  it('quote and reserve agree with the exact formula over random prices, factors and stocks', async () => {
    const rnd = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
    for (let i = 0; i < 300; i++) {
      const base = i % 3 === 0 ? rnd(1, 50) : i % 3 === 1 ? rnd(1, 100_000) : rnd(1, 1_000_000_000);
      const tier = rnd(1, 1000);
      const campaign = rnd(1, 1000);
      const stock = rnd(1, 120);
      const dyn = i % 4 !== 0;
      const gid = await item({ price: base, stock, dynamic: dyn });
      const want = reference(base, tier, campaign, stock, dyn);
      const q = await quote(gid, 1, T0, { tier, campaign });
      expect(Number(q[1]), `base ${base} tier ${tier} campaign ${campaign} stock ${stock} dyn ${dyn}`).toBe(want);
      const r = await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 1, now: T0, token: 't', priceFactor: tier, campaignDiscount: campaign });
      expect(Number(r[2])).toBe(want);
    }
  });

  it('rounds exact halves up and never prices below 1', async () => {
    const g1 = await item({ price: 15, dynamic: true });
    expect(Number((await quote(g1, 1, T0, { tier: 900 }))[1])).toBe(14); // 13.5
    const g2 = await item({ price: 5, dynamic: true });
    expect(Number((await quote(g2, 1, T0, { tier: 900 }))[1])).toBe(5); // 4.5
    const g3 = await item({ price: 1, dynamic: true });
    expect(Number((await quote(g3, 1, T0, { tier: 850, campaign: 1 }))[1])).toBe(1);
  });

  it('refuses an expected price other than the one computed, writing nothing', async () => {
    const gid = await item({ price: 100, stock: 9, dynamic: true, dailyLimit: 5 });
    const before = await env.redis.hgetall(env.keys.goods(gid));
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 2, qty: 1, now: T0, token: 't', expectedPrice: 100 })).toEqual([-15, 120]);
    expect(await env.redis.hgetall(env.keys.goods(gid))).toEqual(before);
    expect(await env.redis.exists(env.keys.bought(gid), env.keys.dailyBought(gid), env.keys.reservations(gid))).toBe(0);
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 2, qty: 1, now: T0, token: 't', expectedPrice: 120 }))[0]).toBe(1);
  });
});
