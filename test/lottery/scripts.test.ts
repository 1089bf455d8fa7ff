/**
 * The prize selection in lua/lottery-reserve-4.lua, driven directly with node:crypto numbers as
 * the API draws them: its frequencies follow the weights renormalised over the prizes in stock
 * (chi-square at p = 0.001 over 20,000 draws), a prize out of stock is never picked, a limited
 * prize is never held more often than its stock, and a hold is shared by retries of one key.
 */
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { T0, luaEnv, type LuaEnv } from '../lua/support.ts';

let env: LuaEnv;
beforeAll(() => {
  env = luaEnv();
});
afterAll(async () => env?.close());

const RANDOM_RANGE = 2 ** 48 - 1;

interface TestPrize {
  id: number;
  weight: number;
  stock?: number;
}

/** Puts a lottery (cost 20, open, no window) with these prizes into Redis. */
async function setLottery(lid: number, prizes: TestPrize[]): Promise<void> {
  const live = prizes.map((p) => ({ id: p.id, name: `prize ${p.id}`, kind: 'none', weight: p.weight, limited: p.stock === undefined ? 0 : 1 }));
  const stock = prizes.filter((p) => p.stock !== undefined).flatMap((p) => [p.id, p.stock!, p.stock!]);
  await env.redis.pmLotterySet(env.keys.lottery(lid), env.keys.lotteryStock(lid), 1, 1, 0, 0, 20, 0, 0, JSON.stringify(live), 0, ...stock);
}

let next = 0;
/** One reserve as the API sends it: a fresh member key, a CSPRNG number. Returns the reply. */
function reserve(lid: number, o: { uid?: number; kh?: string; hash?: string; rand?: number } = {}) {
  const n = ++next;
  return env.redis.pmLotteryReserve(
    env.keys.lottery(lid),
    env.keys.lotteryStock(lid),
    env.keys.lotteryHolds(lid),
    env.keys.lotteryHoldDeadlines(lid),
    `draw${n}`,
    o.uid ?? 1,
    o.hash ?? 'h',
    60_000,
    T0,
    `tok${n}`,
    o.kh ?? `kh${n}`,
    o.rand ?? randomInt(RANDOM_RANGE),
  );
}

const prizeOf = (reply: Array<string | number | null>) => (JSON.parse(String(reply[1])) as { p: { id: number } }).p.id;

function chiSquare(observed: number[], expected: number[]): number {
  return observed.reduce((sum, o, i) => sum + (o - expected[i]) ** 2 / expected[i], 0);
}

describe('prize selection', () => {
  it('follows the weights renormalised over the prizes in stock (chi-square, p = 0.001, 20,000 CSPRNG draws)', async () => {
    // the seeded example's weights, with its 100-point prize out of stock
    const lid = 1;
    await setLottery(lid, [
      { id: 1, weight: 1000, stock: 0 },
      { id: 2, weight: 2000 },
      { id: 3, weight: 3000 },
      { id: 4, weight: 5000 },
      { id: 5, weight: 10000 },
    ]);
    const N = 20_000;
    const counts = new Map<number, number>();
    for (let done = 0; done < N; done += 1000) {
      const replies = await Promise.all(Array.from({ length: 1000 }, () => reserve(lid)));
      for (const r of replies) {
        expect(r[0]).toBe(1);
        counts.set(prizeOf(r), (counts.get(prizeOf(r)) ?? 0) + 1);
      }
    }
    expect(counts.get(1) ?? 0, 'a prize out of stock is never drawn').toBe(0);
    const inStock = [2000, 3000, 5000, 10000];
    const total = inStock.reduce((a, b) => a + b, 0);
    const expected = inStock.map((w) => (N * w) / total);
    const observed = [2, 3, 4, 5].map((id) => counts.get(id) ?? 0);
    // 3 degrees of freedom: P(χ² > 16.266) = 0.001
    const CRITICAL = 16.266;
    const chi = chiSquare(observed, expected);
    expect(chi, `observed ${observed.join('/')} against ${expected.join('/')}`).toBeLessThan(CRITICAL);
    // the test has power: uniform selection would fail it by far
    expect(chiSquare([N / 4, N / 4, N / 4, N / 4], expected)).toBeGreaterThan(100 * CRITICAL);
  });

  it('maps the CSPRNG number onto the cumulative weights, ends included', async () => {
    const lid = 2;
    await setLottery(lid, [
      { id: 1, weight: 1 },
      { id: 2, weight: 3 },
    ]);
    // total weight 4: numbers ≡ 0 (mod 4) pick prize 1, ≡ 1..3 pick prize 2
    expect(prizeOf(await reserve(lid, { rand: 0 }))).toBe(1);
    expect(prizeOf(await reserve(lid, { rand: 1 }))).toBe(2);
    expect(prizeOf(await reserve(lid, { rand: 3 }))).toBe(2);
    expect(prizeOf(await reserve(lid, { rand: 4 }))).toBe(1);
    expect(prizeOf(await reserve(lid, { rand: RANDOM_RANGE - 1 }))).toBe(2);
    await expect(reserve(lid, { rand: 2 ** 48 })).rejects.toThrow(/BAD_ARGUMENT random/);
    await expect(reserve(lid, { rand: -1 })).rejects.toThrow(/BAD_ARGUMENT random/);
  });

  it('never holds a limited prize more often than its stock, and never drives its stock below zero', async () => {
    const lid = 3;
    await setLottery(lid, [
      { id: 1, weight: 1_000_000, stock: 3 },
      { id: 2, weight: 1 },
    ]);
    const replies = await Promise.all(Array.from({ length: 200 }, () => reserve(lid)));
    expect(replies.filter((r) => prizeOf(r) === 1)).toHaveLength(3);
    expect(Number(await env.redis.hget(env.keys.lotteryStock(lid), '1'))).toBe(0);
    // a released hold puts its unit back, once
    const held = replies.find((r) => prizeOf(r) === 1)!;
    const hold = JSON.parse(String(held[1])) as { u: number; k: string; t: string };
    const release = () =>
      env.redis.pmLotteryRelease(env.keys.lotteryStock(lid), env.keys.lotteryHolds(lid), env.keys.lotteryHoldDeadlines(lid), `${hold.u}:${hold.k}`, hold.t);
    expect(await release()).toBe(1);
    expect(await release()).toBe(0);
    expect(Number(await env.redis.hget(env.keys.lotteryStock(lid), '1'))).toBe(1);
  });

  it('gives retries of one key the same hold (same draw, same prize) and refuses the key for another request', async () => {
    const lid = 4;
    await setLottery(lid, [
      { id: 1, weight: 1, stock: 5 },
      { id: 2, weight: 1 },
    ]);
    const first = await reserve(lid, { uid: 9, kh: 'same' });
    expect(first[2]).toBe(1);
    const again = await Promise.all(Array.from({ length: 20 }, () => reserve(lid, { uid: 9, kh: 'same' })));
    for (const r of again) expect([r[0], r[1], r[2]]).toEqual([1, first[1], 0]);
    expect(await env.redis.hlen(env.keys.lotteryHolds(lid))).toBe(1);
    expect(await reserve(lid, { uid: 9, kh: 'same', hash: 'other' })).toEqual([-2]);
  });

  it('refuses a lottery not in Redis, switched off, outside its window, or with every prize gone, writing nothing', async () => {
    expect(await reserve(99)).toEqual([-20]);
    const lid = 5;
    const live = JSON.stringify([{ id: 1, name: 'p', kind: 'none', weight: 1, limited: 1 }]);
    const set = (active: number, startsAt: number, endsAt: number, version: number, left: number) =>
      env.redis.pmLotterySet(env.keys.lottery(lid), env.keys.lotteryStock(lid), version, active, startsAt, endsAt, 20, 0, 0, live, 0, 1, left, left);
    await set(0, 0, 0, 1, 1);
    expect(await reserve(lid)).toEqual([-21]);
    await set(1, T0 + 1, 0, 2, 1);
    expect(await reserve(lid)).toEqual([-21]);
    await set(1, 0, T0, 3, 1);
    expect(await reserve(lid)).toEqual([-21]);
    await set(1, 0, 0, 4, 1);
    await env.redis.hset(env.keys.lotteryStock(lid), '1', 0);
    expect(await reserve(lid)).toEqual([-22]);
    expect(await env.redis.hlen(env.keys.lotteryHolds(lid))).toBe(0);
    // an older version's settings never overwrite a newer one's
    await set(0, 0, 0, 2, 1);
    expect(await env.redis.hget(env.keys.lottery(lid), 'active')).toBe('1');
  });
});
