/**
 * The hot-goods scripts (lua/hot-reserve-3, hot-charge-7, hot-release-3, with confirm-2 and
 * abort-1) against a tiny reference model: random runs of redemptions (some left half-done as a
 * crashed API leaves them), sweeps, restocks and member top-ups on an item split over a few
 * buckets. After every step Redis must equal the model: each bucket's stock, the holds, each
 * member's counted units and balance; and always sold + left + held = stocked, sold ≤ stocked,
 * every member ≤ the limit.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { bucketShare } from '../../src/goods/bucket-stock.ts';
import { DAY, OP_TTL_S, T0, hydrateLots, luaEnv, type Reply } from './support.ts';

const env = luaEnv();
afterAll(() => env.close());

const PRICE = 10;
const MEMBERS = 4;
const { redis, keys } = env;

type Cmd =
  | { k: 'redeem'; m: number; qty: number; start: number; stopAfter: 'none' | 'reserve' | 'charge' }
  | { k: 'sweep' }
  | { k: 'restock'; n: number }
  | { k: 'topUp'; m: number; points: number };

interface Model {
  buckets: number[];
  stocked: number;
  limit: number;
  daily: number;
  bought: number[];
  balance: number[];
  /** holds left by a "crash": bucket, member, charged? */
  holds: Array<{ bucket: number; m: number; qty: number; kh: string; opId: string; token: string; charged: boolean }>;
  sold: number;
}

let run = 0;

function setup(b: number, stock: number, limit: number, daily: number, gid: number): Promise<unknown> {
  return Promise.all(
    Array.from({ length: b }, async (_, k) => {
      await redis.pmGoodsSet(keys.bucket(gid, k), PRICE, limit, 0, 0, 1, bucketShare(stock, b, k), daily, 0);
      await redis.pmRestock(keys.bucket(gid, k), bucketShare(stock, b, k));
    }),
  );
}

describe('hot bucket scripts against a reference model', () => {
  it('never sells more than stocked, keeps every member within the limit, and matches the model step by step', async () => {
    const cmd: fc.Arbitrary<Cmd> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          k: fc.constant('redeem' as const),
          m: fc.integer({ min: 0, max: MEMBERS - 1 }),
          qty: fc.integer({ min: 1, max: 3 }),
          start: fc.nat(63),
          stopAfter: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'reserve' as const, 'charge' as const),
        }),
      },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('sweep' as const) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('restock' as const), n: fc.integer({ min: 1, max: 7 }) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('topUp' as const), m: fc.integer({ min: 0, max: MEMBERS - 1 }), points: fc.integer({ min: 1, max: 60 }) }) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 0, max: 12 }),
        fc.constantFrom(0, 2, 3),
        fc.constantFrom(0, 2),
        fc.array(fc.integer({ min: 0, max: 80 }), { minLength: MEMBERS, maxLength: MEMBERS }),
        fc.array(cmd, { minLength: 1, maxLength: 40 }),
        async (b, stock, limit, daily, balances, cmds) => {
          const gid = 1000 + ++run;
          const uid = (m: number) => run * 100 + m + 1;
          await setup(b, stock, limit, daily, gid);
          for (let m = 0; m < MEMBERS; m++) {
            await hydrateLots(redis, keys, uid(m), balances[m] > 0 ? [{ id: `l${m}`, remaining: balances[m], expiresAt: T0 + 365 * DAY }] : []);
          }
          const model: Model = {
            buckets: Array.from({ length: b }, (_, k) => bucketShare(stock, b, k)),
            stocked: stock, limit, daily, bought: Array(MEMBERS).fill(0), balance: [...balances], holds: [], sold: 0,
          };
          let seq = 0;
          for (const c of cmds) {
            seq++;
            if (c.k === 'redeem') await redeem(gid, uid, model, c, seq);
            else if (c.k === 'sweep') await sweep(gid, uid, model);
            else if (c.k === 'restock') await restock(gid, model, c.n);
            else await topUp(uid, model, c.m, c.points, seq);
            await check(gid, uid, model);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

async function redeem(gid: number, uid: (m: number) => number, model: Model, c: Extract<Cmd, { k: 'redeem' }>, seq: number) {
  const b = model.buckets.length;
  const u = uid(c.m);
  const kh = `kh${seq}`;
  const opId = `op${seq}`;
  const token = `t${seq}`;
  const hash = `h${seq}`;
  // the model: the first bucket from `start` on with enough units; none: sold out
  const expectBucket = Array.from({ length: b }, (_, i) => (c.start + i) % b).find((k) => model.buckets[k] >= c.qty);
  const tooMany = (model.limit > 0 && c.qty > model.limit) || (model.daily > 0 && c.qty > model.daily);
  let held: number | undefined;
  let limitSeen = 0;
  let dailySeen = 0;
  for (let i = 0; i < b; i++) {
    const k = (c.start + i) % b;
    const r = (await redis.pmHotReserve(
      keys.bucket(gid, k), keys.bucketReservations(gid, k), keys.bucketDeadlines(gid, k),
      opId, u, c.qty, hash, 15_000, T0, token, kh, 1000, '',
    )) as Reply;
    if (Number(r[0]) === 1) {
      held = k;
      limitSeen = Number(r[5]);
      dailySeen = Number(r[6]);
      break;
    }
    if (tooMany) {
      expect(Number(r[0])).toBe(model.limit > 0 && c.qty > model.limit ? -12 : -14);
      return;
    }
    expect(Number(r[0])).toBe(-13);
  }
  if (tooMany) throw new Error('a request above the limit was held');
  expect(held).toBe(expectBucket);
  if (held === undefined) return;
  expect([limitSeen, dailySeen]).toEqual([model.limit, model.daily]);
  model.buckets[held] -= c.qty;
  const hold = { bucket: held, m: c.m, qty: c.qty, kh, opId, token, charged: false };
  if (c.stopAfter === 'reserve') {
    model.holds.push(hold);
    return;
  }
  const r = (await redis.pmHotCharge(
    keys.account(u), keys.lotsByExpiry(u), keys.lotRemaining(u), keys.idem(u, kh), keys.opRef(u, opId), keys.outboxOf(u), keys.hotBought(u),
    opId, u, PRICE * c.qty, hash, OP_TTL_S, T0, token, JSON.stringify({ goodsId: gid, quantity: c.qty, bizType: 'redemption' }), kh, '',
    gid, c.qty, limitSeen, dailySeen, 0,
  )) as Reply;
  const overLimit = model.limit > 0 && model.bought[c.m] + c.qty > model.limit;
  const overDaily = model.daily > 0 && model.bought[c.m] + c.qty > model.daily;
  const poor = model.balance[c.m] < PRICE * c.qty;
  const code = Number(r[0]);
  if (overLimit) expect(code).toBe(-12);
  else if (overDaily) expect(code).toBe(-14);
  else if (poor) expect(code).toBe(-4);
  else expect(code).toBe(1);
  if (code === 1) {
    const op = JSON.parse(String(r[1])) as Record<string, unknown>;
    expect(op).toMatchObject({ kind: 'spend', opId, userId: u, delta: -PRICE * c.qty, goodsId: gid, quantity: c.qty, t: token });
    model.bought[c.m] += c.qty;
    model.balance[c.m] -= PRICE * c.qty;
    model.sold += c.qty;
    hold.charged = true;
    if (c.stopAfter === 'charge') {
      model.holds.push(hold);
      return;
    }
    expect(await redis.pmConfirm(keys.bucketReservations(gid, held), keys.bucketDeadlines(gid, held), `${u}:${kh}`, token)).toBe(1);
    return;
  }
  // a refused charge: the service settles (tombstone, then release)
  expect(Number(((await redis.pmAbort(keys.idem(u, kh), token, OP_TTL_S)) as Reply)[0])).toBe(0);
  expect(await redis.pmHotRelease(keys.bucket(gid, held), keys.bucketReservations(gid, held), keys.bucketDeadlines(gid, held), `${u}:${kh}`, token)).toBe(1);
  model.buckets[held] += c.qty;
}

/** What RedemptionService.sweep does for bucket holds: abort on the key, then confirm or release. */
async function sweep(gid: number, uid: (m: number) => number, model: Model) {
  for (const h of model.holds) {
    const u = uid(h.m);
    const a = (await redis.pmAbort(keys.idem(u, h.kh), h.token, OP_TTL_S)) as Reply;
    const charged = Number(a[0]) === 1 && (JSON.parse(String(a[1])) as { t: string }).t === h.token;
    expect(charged).toBe(h.charged);
    if (charged) {
      expect(await redis.pmConfirm(keys.bucketReservations(gid, h.bucket), keys.bucketDeadlines(gid, h.bucket), `${u}:${h.kh}`, h.token)).toBe(1);
    } else {
      expect(await redis.pmHotRelease(keys.bucket(gid, h.bucket), keys.bucketReservations(gid, h.bucket), keys.bucketDeadlines(gid, h.bucket), `${u}:${h.kh}`, h.token)).toBe(1);
      model.buckets[h.bucket] += h.qty;
    }
    // a late charge of a swept hold is refused
    if (!charged) {
      const late = (await redis.pmHotCharge(
        keys.account(u), keys.lotsByExpiry(u), keys.lotRemaining(u), keys.idem(u, h.kh), keys.opRef(u, h.opId), keys.outboxOf(u), keys.hotBought(u),
        h.opId, u, PRICE * h.qty, `late`, OP_TTL_S, T0, h.token, '{}', h.kh, '', gid, h.qty, model.limit, model.daily, 0,
      )) as Reply;
      expect(Number(late[0])).toBe(-5);
    }
  }
  model.holds = [];
}

async function restock(gid: number, model: Model, n: number) {
  model.stocked += n;
  const b = model.buckets.length;
  for (let k = 0; k < b; k++) {
    const before = bucketShare(model.stocked - n, b, k);
    const after = bucketShare(model.stocked, b, k);
    // twice: a replayed restock adds nothing more
    for (let i = 0; i < 2; i++) await redis.pmRestock(keys.bucket(gid, k), after);
    model.buckets[k] += after - before;
  }
}

async function topUp(uid: (m: number) => number, model: Model, m: number, points: number, seq: number) {
  const u = uid(m);
  await redis.zadd(keys.lotsByExpiry(u), T0 + 365 * DAY, `top${seq}`);
  await redis.hset(keys.lotRemaining(u), `top${seq}`, points);
  await redis.hincrby(keys.account(u), 'avail', points);
  model.balance[m] += points;
}

async function check(gid: number, uid: (m: number) => number, model: Model) {
  const b = model.buckets.length;
  const stocks = await Promise.all(Array.from({ length: b }, (_, k) => redis.hget(keys.bucket(gid, k), 'stock')));
  expect(stocks.map(Number)).toEqual(model.buckets);
  const holds = await Promise.all(Array.from({ length: b }, (_, k) => redis.hlen(keys.bucketReservations(gid, k))));
  expect(holds.reduce((a, n) => a + n, 0)).toBe(model.holds.length);
  const bought = await Promise.all(Array.from({ length: MEMBERS }, (_, m) => redis.hget(keys.hotBought(uid(m)), String(gid))));
  expect(bought.map((x) => Number(x ?? 0))).toEqual(model.bought);
  const avail = await Promise.all(Array.from({ length: MEMBERS }, (_, m) => redis.hget(keys.account(uid(m)), 'avail')));
  expect(avail.map(Number)).toEqual(model.balance);
  const heldUnits = model.holds.filter((h) => !h.charged).reduce((a, h) => a + h.qty, 0);
  expect(model.sold + model.buckets.reduce((a, n) => a + n, 0) + heldUnits).toBe(model.stocked);
  for (const n of model.bought) if (model.limit > 0) expect(n).toBeLessThanOrEqual(model.limit);
}
