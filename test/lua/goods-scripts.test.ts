/**
 * The goods-slot scripts (goods-set, restock, reserve, confirm, release) and the saga around
 * them, called directly against the real Redis with the "now" override as a fake clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DAY,
  HOUR,
  T0,
  abort,
  charge,
  confirm,
  goodsSet,
  goodsState,
  hydrateLots,
  luaEnv,
  nextId,
  parse,
  release,
  reserve,
  snapshot,
  type GoodsArgs,
  type LuaEnv,
} from './support.ts';

let env: LuaEnv;
beforeAll(() => {
  env = luaEnv();
});
afterAll(async () => env?.close());

async function goods(g: Partial<GoodsArgs> = {}): Promise<number> {
  const gid = nextId();
  await goodsSet(env.redis, env.keys, gid, { price: 100, stock: 10, ...g });
  return gid;
}

const op = (tag = 'r') => `${tag}-${nextId()}`;

describe('goods-set and restock', () => {
  it('goods-set writes the sale settings and the initial stock of a new item, returning the stock', async () => {
    const gid = nextId();
    expect(await goodsSet(env.redis, env.keys, gid, { price: 50, limit: 2, startsAt: T0, endsAt: T0 + DAY, stock: 7, dailyLimit: 1, dynamic: true })).toBe(7);
    expect(await env.redis.hgetall(env.keys.goods(gid))).toEqual({
      price: '50',
      limit: '2',
      daily: '1',
      dyn: '1',
      startsAt: String(T0),
      endsAt: String(T0 + DAY),
      active: '1',
      stock: '7',
    });
  });

  it('goods-set on an existing item updates the settings but never the live stock', async () => {
    const gid = await goods({ stock: 5 });
    await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 2, now: T0, token: 't' });
    expect(await goodsSet(env.redis, env.keys, gid, { price: 80, stock: 100, active: false })).toBe(3);
    expect(await env.redis.hgetall(env.keys.goods(gid))).toMatchObject({ price: '80', active: '0', stock: '3' });
  });

  it('restock takes the first total it is given as already counted (the item was built from Postgres)', async () => {
    const gid = await goods({ stock: 4 });
    expect(await env.redis.pmRestock(env.keys.goods(gid), 4)).toBe(4);
    expect(await env.redis.hgetall(env.keys.goods(gid))).toMatchObject({ stock: '4', stocked: '4' });
  });

  it('restock raises the live stock to a higher stocked total, adding the difference once', async () => {
    const gid = await goods({ stock: 4 });
    await env.redis.pmRestock(env.keys.goods(gid), 4);
    await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 3, now: T0, token: 't' });
    expect(await env.redis.pmRestock(env.keys.goods(gid), 10)).toBe(7);
    // the same total again (a replay), or a lower one arriving late, changes nothing
    expect(await env.redis.pmRestock(env.keys.goods(gid), 10)).toBe(7);
    expect(await env.redis.pmRestock(env.keys.goods(gid), 6)).toBe(7);
    expect(await env.redis.hgetall(env.keys.goods(gid))).toMatchObject({ stock: '7', stocked: '10' });
  });

  it('restocks applied out of order still add each unit once', async () => {
    const gid = await goods({ stock: 0 });
    await env.redis.pmRestock(env.keys.goods(gid), 0);
    // two restocks committed as totals 5 then 8; the second's Redis step runs first
    expect(await env.redis.pmRestock(env.keys.goods(gid), 8)).toBe(8);
    expect(await env.redis.pmRestock(env.keys.goods(gid), 5)).toBe(8);
  });

  it('restock of unknown goods returns -10 and creates nothing', async () => {
    const gid = nextId();
    expect(await env.redis.pmRestock(env.keys.goods(gid), 6)).toBe(-10);
    expect(await env.redis.exists(env.keys.goods(gid))).toBe(0);
  });

  it.each([['negative', '-1'], ['fractional', '1.5'], ['not a number', 'x'], ['above 2^53', '9007199254740993']])(
    'restock refuses a %s total before writing anything',
    async (_, total) => {
      const gid = await goods({ stock: 4 });
      const before = await env.redis.hgetall(env.keys.goods(gid));
      await expect(env.redis.pmRestock(env.keys.goods(gid), total)).rejects.toThrow(/BAD_ARGUMENT/);
      expect(await env.redis.hgetall(env.keys.goods(gid))).toEqual(before);
    },
  );
});

describe('reserve', () => {
  it('holds the units: decrements stock, counts them as bought, stores the reservation and its deadline', async () => {
    const gid = await goods({ price: 120, stock: 10 });
    const opId = op();
    const reply = await reserve(env.redis, env.keys, { gid, opId, uid: 42, qty: 3, now: T0, token: 'tok', hash: 'hh', timeoutMs: 15_000 });
    expect(reply).toEqual([1, 'tok', 120, 1, opId]);
    const s = await goodsState(env.redis, env.keys, gid);
    expect(s.goods.stock).toBe('7');
    expect(s.bought).toEqual({ '42': '3' });
    // the hold belongs to (member, key): concurrent attempts with one key share it and its op id
    expect(parse(s.reservations[`42:${opId}`])).toEqual({ u: 42, k: opId, o: opId, q: 3, p: 120, t: 'tok', h: 'hh', d: T0 + 15_000 });
    expect(s.deadlines).toEqual([`42:${opId}`, String(T0 + 15_000)]);
  });

  it('reserves exactly the last units in stock', async () => {
    const gid = await goods({ stock: 3 });
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 3, now: T0, token: 't' }))[0]).toBe(1);
    expect(await env.redis.hget(env.keys.goods(gid), 'stock')).toBe('0');
  });

  it('SOLD_OUT: more units than the stock returns {-13, stock} and touches nothing', async () => {
    const gid = await goods({ stock: 2 });
    const before = await snapshot(env.redis, env.prefix);
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 3, now: T0, token: 't' })).toEqual([-13, 2]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    await reserve(env.redis, env.keys, { gid, opId: op(), uid: 2, qty: 2, now: T0, token: 't' });
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 3, qty: 1, now: T0, token: 't' })).toEqual([-13, 0]);
  });

  it('LIMIT: reserved and bought units count against the per-user limit, {-12, alreadyBought}, touching nothing', async () => {
    const gid = await goods({ stock: 10, limit: 3 });
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 5, qty: 2, now: T0, token: 't' }))[0]).toBe(1);
    const before = await snapshot(env.redis, env.prefix);
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 5, qty: 2, now: T0, token: 't' })).toEqual([-12, 2]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    // up to the limit is fine, and the limit is per member
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 5, qty: 1, now: T0, token: 't' }))[0]).toBe(1);
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 6, qty: 3, now: T0, token: 't' }))[0]).toBe(1);
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 5, qty: 1, now: T0, token: 't' })).toEqual([-12, 3]);
  });

  it('LIMIT is checked before stock: a member over the limit of a sold-out item gets {-12}', async () => {
    const gid = await goods({ stock: 1, limit: 1 });
    await reserve(env.redis, env.keys, { gid, opId: op(), uid: 5, qty: 1, now: T0, token: 't' });
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 5, qty: 1, now: T0, token: 't' })).toEqual([-12, 1]);
  });

  it('SALE_NOT_ACTIVE before startsAt; allowed at startsAt (fake clock)', async () => {
    const gid = await goods({ startsAt: T0 + HOUR });
    const before = await snapshot(env.redis, env.prefix);
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 1, now: T0 + HOUR - 1, token: 't' })).toEqual([-11]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 1, now: T0 + HOUR, token: 't' }))[0]).toBe(1);
  });

  it('SALE_NOT_ACTIVE at endsAt; allowed at endsAt-1 (fake clock)', async () => {
    const gid = await goods({ startsAt: T0, endsAt: T0 + DAY });
    expect((await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 1, now: T0 + DAY - 1, token: 't' }))[0]).toBe(1);
    const before = await snapshot(env.redis, env.prefix);
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 1, now: T0 + DAY, token: 't' })).toEqual([-11]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('SALE_NOT_ACTIVE for an inactive item, whatever its window', async () => {
    const gid = await goods({ active: false });
    const before = await snapshot(env.redis, env.prefix);
    expect(await reserve(env.redis, env.keys, { gid, opId: op(), uid: 1, qty: 1, now: T0, token: 't' })).toEqual([-11]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('GOODS_NOT_FOUND {-10} for goods with no Redis state, creating nothing', async () => {
    const before = await snapshot(env.redis, env.prefix);
    expect(await reserve(env.redis, env.keys, { gid: nextId(), opId: op(), uid: 1, qty: 1, now: T0, token: 't' })).toEqual([-10]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('re-reserving with the same op id and hash returns the same token and fresh=0 without a second decrement', async () => {
    const gid = await goods({ price: 30, stock: 10, limit: 2 });
    const opId = op();
    expect(await reserve(env.redis, env.keys, { gid, opId, uid: 9, qty: 2, now: T0, token: 'first' })).toEqual([1, 'first', 30, 1, opId]);
    const before = await snapshot(env.redis, env.prefix);
    // even past the limit, sold out or after the sale: the reservation already exists
    await env.redis.hset(env.keys.goods(gid), 'active', '0');
    const again = await reserve(env.redis, env.keys, { gid, opId, uid: 9, qty: 2, now: T0 + HOUR, token: 'second' });
    await env.redis.hset(env.keys.goods(gid), 'active', '1');
    expect(again).toEqual([1, 'first', 30, 0, opId]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('re-reserving with the same op id and another hash returns -2 and touches nothing', async () => {
    const gid = await goods();
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 9, qty: 1, now: T0, token: 'first', hash: 'a' });
    const before = await snapshot(env.redis, env.prefix);
    expect(await reserve(env.redis, env.keys, { gid, opId, uid: 9, qty: 2, now: T0, token: 'x', hash: 'b' })).toEqual([-2]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });
});

describe('release', () => {
  it('restores stock and the bought count and removes the reservation and its deadline', async () => {
    const gid = await goods({ stock: 10 });
    const kept = op();
    await reserve(env.redis, env.keys, { gid, opId: kept, uid: 3, qty: 1, now: T0, token: 'k' });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 4, now: T0, token: 'tk' });
    expect(await release(env.redis, env.keys, gid, opId, 'tk')).toBe(1);
    const s = await goodsState(env.redis, env.keys, gid);
    expect(s.goods.stock).toBe('9');
    expect(s.bought).toEqual({ '3': '1' });
    expect(Object.keys(s.reservations)).toEqual([`3:${kept}`]);
    expect(s.deadlines).toEqual([`3:${kept}`, String(T0 + 30_000)]);
  });

  it("drops the member's bought field when it reaches zero", async () => {
    const gid = await goods({ stock: 10 });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 2, now: T0, token: 'tk' });
    await release(env.redis, env.keys, gid, opId, 'tk');
    expect(await env.redis.hgetall(env.keys.bought(gid))).toEqual({});
  });

  it('is idempotent: a second release returns 0 and changes nothing', async () => {
    const gid = await goods({ stock: 10 });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 2, now: T0, token: 'tk' });
    expect(await release(env.redis, env.keys, gid, opId, 'tk')).toBe(1);
    const before = await snapshot(env.redis, env.prefix);
    expect(await release(env.redis, env.keys, gid, opId, 'tk')).toBe(0);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    expect(await env.redis.hget(env.keys.goods(gid), 'stock')).toBe('10');
  });

  it('with a wrong token returns 0 and leaves the reservation alone', async () => {
    const gid = await goods({ stock: 10 });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 2, now: T0, token: 'tk' });
    const before = await snapshot(env.redis, env.prefix);
    expect(await release(env.redis, env.keys, gid, opId, 'not-tk')).toBe(0);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('after release the same op id can reserve again, with a fresh token', async () => {
    const gid = await goods({ stock: 1 });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 1, now: T0, token: 'one' });
    await release(env.redis, env.keys, gid, opId, 'one');
    expect(await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 1, now: T0, token: 'two' })).toEqual([1, 'two', 100, 1, opId]);
  });
});

describe('confirm', () => {
  it('removes the reservation and its deadline and keeps the units sold', async () => {
    const gid = await goods({ stock: 10 });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 2, now: T0, token: 'tk' });
    expect(await confirm(env.redis, env.keys, gid, opId, 'tk')).toBe(1);
    const s = await goodsState(env.redis, env.keys, gid);
    expect(s.goods.stock).toBe('8');
    expect(s.bought).toEqual({ '3': '2' });
    expect(s.reservations).toEqual({});
    expect(s.deadlines).toEqual([]);
  });

  it('with a wrong token returns 0 and changes nothing', async () => {
    const gid = await goods({ stock: 10 });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 2, now: T0, token: 'tk' });
    const before = await snapshot(env.redis, env.prefix);
    expect(await confirm(env.redis, env.keys, gid, opId, 'nope')).toBe(0);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('a second confirm and a later release both return 0: the sale stands', async () => {
    const gid = await goods({ stock: 10 });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 2, now: T0, token: 'tk' });
    await confirm(env.redis, env.keys, gid, opId, 'tk');
    const before = await snapshot(env.redis, env.prefix);
    expect(await confirm(env.redis, env.keys, gid, opId, 'tk')).toBe(0);
    expect(await release(env.redis, env.keys, gid, opId, 'tk')).toBe(0);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('a confirmed op id is not re-reserved by the reservation script alone (the app checks the op record first)', async () => {
    const gid = await goods({ stock: 10 });
    const opId = op();
    await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 2, now: T0, token: 'tk' });
    await confirm(env.redis, env.keys, gid, opId, 'tk');
    // documents the script's contract: after confirm the reservation is gone, so a bare reserve is fresh
    expect(await reserve(env.redis, env.keys, { gid, opId, uid: 3, qty: 2, now: T0, token: 'tk2' })).toEqual([1, 'tk2', 100, 1, opId]);
  });
});

describe('saga: reserve → charge → confirm / abort → release', () => {
  async function memberWith(points: number): Promise<number> {
    const uid = nextId();
    await hydrateLots(env.redis, env.keys, uid, points > 0 ? [{ id: `l${uid}`, remaining: points, expiresAt: T0 + 30 * DAY }] : []);
    return uid;
  }

  it('a charged reservation is confirmed: abort returns {1, opJson} with the token, the units stay sold', async () => {
    const gid = await goods({ price: 40, stock: 5 });
    const uid = await memberWith(100);
    const opId = op('saga');
    const [, token, price] = await reserve(env.redis, env.keys, { gid, opId, uid, qty: 2, now: T0, token: 'tk' });
    const charged = await charge(env.redis, env.keys, { uid, opId, amount: Number(price) * 2, now: T0, token: String(token) });
    expect(charged[0]).toBe(1);
    const aborted = await abort(env.redis, env.keys, uid, opId, String(token));
    expect(aborted).toEqual([1, charged[1]]);
    expect(parse(aborted[1]).t).toBe(token);
    expect(await confirm(env.redis, env.keys, gid, opId, String(token))).toBe(1);
    expect(await env.redis.hget(env.keys.goods(gid), 'stock')).toBe('3');
    expect(await env.redis.hget(env.keys.account(uid), 'avail')).toBe('20');
  });

  it('an uncharged reservation is aborted then released, and its late charge is refused with {-5}', async () => {
    const gid = await goods({ price: 40, stock: 5 });
    const uid = await memberWith(100);
    const opId = op('saga');
    await reserve(env.redis, env.keys, { gid, opId, uid, qty: 2, now: T0, token: 'tk' });
    expect(await abort(env.redis, env.keys, uid, opId, 'tk')).toEqual([0]);
    expect(parse(await env.redis.get(env.keys.idem(uid, opId)))).toEqual({ kind: 'aborted', t: 'tk' });
    expect(await release(env.redis, env.keys, gid, opId, 'tk')).toBe(1);
    expect(await env.redis.hget(env.keys.goods(gid), 'stock')).toBe('5');
    expect(await charge(env.redis, env.keys, { uid, opId, amount: 80, now: T0, token: 'tk' })).toEqual([-5]);
    expect(await env.redis.hget(env.keys.account(uid), 'avail')).toBe('100');
  });

  it('a failed charge (insufficient) is settled by abort + release, restoring stock and the limit', async () => {
    const gid = await goods({ price: 40, stock: 5, limit: 2 });
    const uid = await memberWith(50);
    const opId = op('saga');
    await reserve(env.redis, env.keys, { gid, opId, uid, qty: 2, now: T0, token: 'tk' });
    expect(await charge(env.redis, env.keys, { uid, opId, amount: 80, now: T0, token: 'tk' })).toEqual([-4, 50]);
    expect(await abort(env.redis, env.keys, uid, opId, 'tk')).toEqual([0]);
    expect(await release(env.redis, env.keys, gid, opId, 'tk')).toBe(1);
    const s = await goodsState(env.redis, env.keys, gid);
    expect(s.goods.stock).toBe('5');
    expect(s.bought).toEqual({});
    // the member can buy up to the limit again
    expect((await reserve(env.redis, env.keys, { gid, opId: op('saga'), uid, qty: 2, now: T0, token: 'x' }))[0]).toBe(1);
  });
});
