/**
 * The points scripts (earn, charge, abort, hydrate, balance, leaderboard) called directly against
 * the real Redis, with the "now" override as a fake clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodBuckets, PERIODS } from '../../src/redis/keys.ts';
import {
  DAY,
  HOUR,
  OP_TTL_S,
  T0,
  abort,
  balance,
  charge,
  earn,
  hydrate,
  hydrateLots,
  luaEnv,
  nextId,
  parse,
  snapshot,
  userState,
  type LotSpec,
  type LuaEnv,
} from './support.ts';

let env: LuaEnv;
beforeAll(() => {
  env = luaEnv();
});
afterAll(async () => env?.close());

/** A hydrated member (avail = earned = sum of the lots). */
async function member(lots: LotSpec[] = []): Promise<number> {
  const uid = nextId();
  expect(await hydrateLots(env.redis, env.keys, uid, lots)).toBe(1);
  return uid;
}

const op = (tag: string) => `${tag}-${nextId()}`;

async function lastOutboxEntry(uid: number): Promise<string | undefined> {
  const entries = await env.redis.xrevrange(env.keys.outboxOf(uid), '+', '-', 'COUNT', 1);
  if (entries.length === 0) return undefined;
  const [, fields] = entries[0];
  expect(fields[0]).toBe('o');
  return fields[1];
}

describe('earn', () => {
  it('credits a lot expiring at now+lifetime and raises avail and earned', async () => {
    const uid = await member();
    const opId = op('earn');
    const reply = await earn(env.redis, env.keys, { uid, opId, points: 40, lifetimeMs: 5 * DAY, now: T0 });
    expect(reply[0]).toBe(1);
    expect(reply[2]).toBe(0);
    const s = await userState(env.redis, env.keys, uid);
    expect(s.acct).toMatchObject({ avail: '40', earned: '40' });
    expect(s.lots).toEqual({ [opId]: [40, T0 + 5 * DAY] });
  });

  it("pays a member whose tier is past the multiplier table at the table's top tier (a process with an older table)", async () => {
    const uid = await member();
    const grown = { tiers: [0, 100, 500], earn: [1000, 1500, 2000], applyTier: 1, campaign: 1000, lifetime: 1 };
    // reaches the third tier (position 2) under the grown table
    expect((await earn(env.redis, env.keys, { uid, opId: op('t'), points: 600, lifetimeMs: DAY, now: T0, multipliers: grown }))[0]).toBe(1);
    expect(await env.redis.hget(env.keys.account(uid), 'tier')).toBe('2');
    // another API process still sends the table before it grew: its top tier, not a script error
    const older = { tiers: [0, 100], earn: [1000, 1500], applyTier: 1, campaign: 1000, lifetime: 1 };
    const reply = await earn(env.redis, env.keys, { uid, opId: op('t'), points: 10, lifetimeMs: DAY, now: T0 + 1, multipliers: older });
    expect(reply[0]).toBe(1);
    expect(JSON.parse(String(reply[1]))).toMatchObject({ delta: 15, mult: 1500, tier: 2 });
  });

  it('returns the op JSON with every field, extra fields merged in', async () => {
    const uid = await member([{ id: 'old', remaining: 10, expiresAt: T0 + DAY }]);
    const opId = op('earn');
    const reply = await earn(env.redis, env.keys, {
      uid,
      opId,
      points: 25,
      lifetimeMs: 3 * DAY,
      now: T0,
      hash: 'hash-1',
      bizType: 'checkin',
      bizId: '12',
      extra: { actorId: 99, reason: 'welcome' },
    });
    expect(parse(reply[1])).toEqual({
      opId,
      kind: 'earn',
      userId: uid,
      delta: 25,
      balanceAfter: 35,
      available: 35,
      bizType: 'checkin',
      bizId: '12',
      at: T0,
      expiresAt: T0 + 3 * DAY,
      h: 'hash-1',
      k: opId,
      base: 25,
      mult: 1000,
      lt: 1,
      tier: 0,
      actorId: 99,
      reason: 'welcome',
    });
  });

  it("op.available leaves out expired lots the expire job has not swept yet (balanceAfter keeps them)", async () => {
    const uid = await member([{ id: 'stale', remaining: 30, expiresAt: T0 - HOUR }]);
    const reply = await earn(env.redis, env.keys, { uid, opId: op('earn'), points: 5, lifetimeMs: DAY, now: T0 });
    expect(parse(reply[1])).toMatchObject({ balanceAfter: 35, available: 5 });
  });

  it('appends exactly one outbox entry whose field o holds the op JSON', async () => {
    const uid = await member();
    const before = await env.redis.xlen(env.keys.outboxOf(uid));
    const reply = await earn(env.redis, env.keys, { uid, opId: op('earn'), points: 7, lifetimeMs: DAY, now: T0 });
    expect(await env.redis.xlen(env.keys.outboxOf(uid))).toBe(before + 1);
    expect(await lastOutboxEntry(uid)).toBe(reply[1]);
  });

  it('stores the op record under the op id with the given TTL', async () => {
    const uid = await member();
    const opId = op('earn');
    const reply = await earn(env.redis, env.keys, { uid, opId, points: 7, lifetimeMs: DAY, now: T0, ttlS: 600 });
    expect(await env.redis.get(env.keys.idem(uid, opId))).toBe(reply[1]);
    const ttl = await env.redis.ttl(env.keys.idem(uid, opId));
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  });

  it('a replay with the same request hash returns the same op JSON with replayed=1 and writes nothing', async () => {
    const uid = await member();
    const opId = op('earn');
    const outbox0 = await env.redis.xlen(env.keys.outboxOf(uid));
    const first = await earn(env.redis, env.keys, { uid, opId, points: 9, lifetimeMs: DAY, now: T0, hash: 'same' });
    const before = await snapshot(env.redis, env.prefix);
    // a later clock and other arguments do not matter: the record answers
    const again = await earn(env.redis, env.keys, { uid, opId, points: 9, lifetimeMs: DAY, now: T0 + HOUR, hash: 'same' });
    expect(again).toEqual([1, first[1], 1]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    expect(await env.redis.xlen(env.keys.outboxOf(uid))).toBe(outbox0 + 1);
    expect((await userState(env.redis, env.keys, uid)).acct.avail).toBe('9');
  });

  it('the same op id with a different request hash returns -2 and writes nothing', async () => {
    const uid = await member();
    const opId = op('earn');
    await earn(env.redis, env.keys, { uid, opId, points: 9, lifetimeMs: DAY, now: T0, hash: 'one' });
    const before = await snapshot(env.redis, env.prefix);
    expect(await earn(env.redis, env.keys, { uid, opId, points: 9, lifetimeMs: DAY, now: T0, hash: 'two' })).toEqual([-2]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('the daily count cap refuses the (capCount+1)th earn with {-3, count, points} and writes nothing', async () => {
    const uid = await member();
    const capped = { uid, points: 10, lifetimeMs: DAY, bizType: 'checkin', capCount: 2, capPoints: 0 };
    const outbox0 = await env.redis.xlen(env.keys.outboxOf(uid));
    expect((await earn(env.redis, env.keys, { ...capped, opId: op('c'), now: T0 }))[0]).toBe(1);
    expect((await earn(env.redis, env.keys, { ...capped, opId: op('c'), now: T0 + HOUR }))[0]).toBe(1);
    const before = await snapshot(env.redis, env.prefix);
    const opId = op('c');
    expect(await earn(env.redis, env.keys, { ...capped, opId, now: T0 + 2 * HOUR })).toEqual([-3, 2, 20]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    expect(await env.redis.exists(env.keys.idem(uid, opId))).toBe(0);
    const s = await userState(env.redis, env.keys, uid);
    expect(s.acct.avail).toBe('20');
    expect(s.outboxLen).toBe(outbox0 + 2);
    expect(await env.redis.hgetall(env.keys.dailyCap(uid, 'checkin'))).toEqual({
      day: String(Math.floor(T0 / DAY)),
      n: '2',
      pts: '20',
    });
  });

  it('the daily points cap accepts an earn reaching it exactly and refuses one going past it with {-3, count, points}', async () => {
    const uid = await member();
    const capped = { uid, lifetimeMs: DAY, bizType: 'quiz', capCount: 0, capPoints: 50 };
    expect((await earn(env.redis, env.keys, { ...capped, points: 30, opId: op('p'), now: T0 }))[0]).toBe(1);
    const before = await snapshot(env.redis, env.prefix);
    expect(await earn(env.redis, env.keys, { ...capped, points: 21, opId: op('p'), now: T0 })).toEqual([-3, 1, 30]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    expect((await earn(env.redis, env.keys, { ...capped, points: 20, opId: op('p'), now: T0 }))[0]).toBe(1);
    expect(await earn(env.redis, env.keys, { ...capped, points: 1, opId: op('p'), now: T0 })).toEqual([-3, 2, 50]);
    expect((await userState(env.redis, env.keys, uid)).acct.avail).toBe('50');
  });

  it('caps are counted per action: another action has its own counters', async () => {
    const uid = await member();
    const base = { uid, points: 10, lifetimeMs: DAY, capCount: 1, capPoints: 0, now: T0 };
    expect((await earn(env.redis, env.keys, { ...base, bizType: 'a', opId: op('a') }))[0]).toBe(1);
    expect((await earn(env.redis, env.keys, { ...base, bizType: 'a', opId: op('a') }))[0]).toBe(-3);
    expect((await earn(env.redis, env.keys, { ...base, bizType: 'b', opId: op('b') }))[0]).toBe(1);
  });

  it('caps of 0 mean no cap and leave no cap counters', async () => {
    const uid = await member();
    for (let i = 0; i < 5; i++) {
      expect((await earn(env.redis, env.keys, { uid, points: 100, lifetimeMs: DAY, now: T0, bizType: 'grant', opId: op('g') }))[0]).toBe(1);
    }
    expect(await env.redis.exists(env.keys.dailyCap(uid, 'grant'))).toBe(0);
  });

  it('the daily cap resets at the next UTC midnight, not before (fake clock)', async () => {
    const uid = await member();
    const midnight = Date.UTC(2026, 2, 11);
    const capped = { uid, points: 10, lifetimeMs: DAY, bizType: 'checkin', capCount: 1, capPoints: 10 };
    expect((await earn(env.redis, env.keys, { ...capped, opId: op('d'), now: midnight - 5 * HOUR }))[0]).toBe(1);
    expect(await earn(env.redis, env.keys, { ...capped, opId: op('d'), now: midnight - 1 })).toEqual([-3, 1, 10]);
    expect((await earn(env.redis, env.keys, { ...capped, opId: op('d'), now: midnight }))[0]).toBe(1);
    expect(await env.redis.hgetall(env.keys.dailyCap(uid, 'checkin'))).toEqual({
      day: String(midnight / DAY),
      n: '1',
      pts: '10',
    });
    expect(await earn(env.redis, env.keys, { ...capped, opId: op('d'), now: midnight + DAY - 1 })).toEqual([-3, 1, 10]);
    const pttl = await env.redis.pttl(env.keys.dailyCap(uid, 'checkin'));
    expect(pttl).toBeGreaterThan(2 * DAY - 60_000);
    expect(pttl).toBeLessThanOrEqual(2 * DAY);
  });

  it('a missing account returns {-1} and writes nothing: no account, lot, op record, cap or outbox entry', async () => {
    const uid = nextId();
    const before = await snapshot(env.redis, env.prefix);
    const reply = await earn(env.redis, env.keys, {
      uid,
      opId: op('ghost'),
      points: 10,
      lifetimeMs: DAY,
      now: T0,
      bizType: 'checkin',
      capCount: 3,
      capPoints: 100,
    });
    expect(reply).toEqual([-1]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });
});

describe('charge', () => {
  it('consumes lots earliest expiry first across more lots than one page, and reports them as triples', async () => {
    // 40 lots of 10 points (> the script's page of 32), hydrated in shuffled order
    const lots: LotSpec[] = Array.from({ length: 40 }, (_, i) => ({
      id: `lot${String(i).padStart(2, '0')}`,
      remaining: 10,
      expiresAt: T0 + (i + 1) * HOUR,
    }));
    const shuffled = [...lots].sort((a, b) => ((a.id.charCodeAt(4) * 7) % 11) - ((b.id.charCodeAt(4) * 7) % 11));
    const uid = await member(shuffled);
    const opId = op('spend');
    const reply = await charge(env.redis, env.keys, { uid, opId, amount: 355, now: T0, token: 'tk' });
    expect(reply[0]).toBe(1);
    const spent = parse(reply[1]);
    const expected = lots.slice(0, 35).map((l) => [l.id, 10, l.expiresAt]);
    expected.push([lots[35].id, 5, lots[35].expiresAt]);
    expect(spent.lots).toEqual(expected);
    const s = await userState(env.redis, env.keys, uid);
    expect(s.lots).toEqual({
      [lots[35].id]: [5, lots[35].expiresAt],
      ...Object.fromEntries(lots.slice(36).map((l) => [l.id, [10, l.expiresAt]])),
    });
    expect(s.acct.avail).toBe(String(400 - 355));
  });

  it('counts every expired lot when more than a page of them has expired, and spends only live ones', async () => {
    // 35 expired lots of 5 (> the page of 32 the script reads first), one at the exact instant, and 2 live ones
    const expired: LotSpec[] = Array.from({ length: 35 }, (_, i) => ({ id: `old${String(i).padStart(2, '0')}`, remaining: 5, expiresAt: T0 - i }));
    const live: LotSpec[] = [
      { id: 'live1', remaining: 10, expiresAt: T0 + 1 },
      { id: 'live2', remaining: 10, expiresAt: T0 + DAY },
    ];
    const uid = await member([...live, ...expired]);
    expect(await charge(env.redis, env.keys, { uid, opId: op('over'), amount: 21, now: T0, token: 'tk' })).toEqual([-4, 20]);
    const reply = await charge(env.redis, env.keys, { uid, opId: op('spend'), amount: 15, now: T0, token: 'tk' });
    expect(reply[0]).toBe(1);
    const spent = parse(reply[1]);
    expect(spent.lots).toEqual([
      ['live1', 10, T0 + 1],
      ['live2', 5, T0 + DAY],
    ]);
    expect(spent.available).toBe(5);
    expect(Object.keys((await userState(env.redis, env.keys, uid)).lots).filter((id) => id.startsWith('old'))).toHaveLength(35);
  });

  it('spends past the first page when it starts with expired lots', async () => {
    // 3 expired lots, then 40 live ones of 10: the first read holds 29 live lots, the rest come after
    const lots: LotSpec[] = [
      ...Array.from({ length: 3 }, (_, i) => ({ id: `old${i}`, remaining: 7, expiresAt: T0 - HOUR * (i + 1) })),
      ...Array.from({ length: 40 }, (_, i) => ({ id: `lot${String(i).padStart(2, '0')}`, remaining: 10, expiresAt: T0 + (i + 1) * HOUR })),
    ];
    const uid = await member(lots);
    const reply = await charge(env.redis, env.keys, { uid, opId: op('spend'), amount: 355, now: T0, token: 'tk' });
    expect(reply[0]).toBe(1);
    const spent = parse(reply[1]);
    const live = lots.slice(3);
    expect(spent.lots).toEqual([...live.slice(0, 35).map((l) => [l.id, 10, l.expiresAt]), [live[35].id, 5, live[35].expiresAt]]);
    expect(spent.available).toBe(400 - 355);
    expect(Object.keys((await userState(env.redis, env.keys, uid)).lots).sort()).toEqual(['old0', 'old1', 'old2', ...live.slice(35).map((l) => l.id)].sort());
  });

  it('breaks a tie between lots of equal expiry by lot id', async () => {
    const uid = await member([
      { id: 'b', remaining: 5, expiresAt: T0 + DAY },
      { id: 'a', remaining: 5, expiresAt: T0 + DAY },
      { id: 'c', remaining: 5, expiresAt: T0 + HOUR },
    ]);
    const reply = await charge(env.redis, env.keys, { uid, opId: op('spend'), amount: 8, now: T0, token: 'tk' });
    expect(parse(reply[1]).lots).toEqual([
      ['c', 5, T0 + HOUR],
      ['a', 3, T0 + DAY],
    ]);
  });

  it('returns the spend op with delta, balanceAfter, available, token, hash and the extra fields', async () => {
    const uid = await member([
      { id: 'x', remaining: 100, expiresAt: T0 + DAY },
      { id: 'gone', remaining: 20, expiresAt: T0 - 1 },
    ]);
    const opId = op('spend');
    const outbox0 = await env.redis.xlen(env.keys.outboxOf(uid));
    const reply = await charge(env.redis, env.keys, {
      uid,
      opId,
      amount: 30,
      now: T0,
      token: 'tok-1',
      hash: 'h-spend',
      extra: { goodsId: 4, quantity: 3, exchangeNo: 'PMX', bizType: 'redemption', bizId: '4' },
    });
    expect(reply[2]).toBe(0);
    expect(parse(reply[1])).toEqual({
      opId,
      kind: 'spend',
      userId: uid,
      delta: -30,
      balanceAfter: 90,
      available: 70,
      lots: [['x', 30, T0 + DAY]],
      at: T0,
      t: 'tok-1',
      h: 'h-spend',
      k: opId,
      goodsId: 4,
      quantity: 3,
      exchangeNo: 'PMX',
      bizType: 'redemption',
      bizId: '4',
    });
    expect(await env.redis.get(env.keys.idem(uid, opId))).toBe(reply[1]);
    // the by-id reference names the key's record, under the member's own id
    expect(await env.redis.get(env.keys.opRef(uid, opId))).toBe(opId);
    expect(await lastOutboxEntry(uid)).toBe(reply[1]);
    expect(await env.redis.xlen(env.keys.outboxOf(uid))).toBe(outbox0 + 1);
  });

  it('a lot expiring at T is spendable at T-1', async () => {
    const T = T0 + 7 * DAY;
    const uid = await member([{ id: 'edge', remaining: 50, expiresAt: T }]);
    const reply = await charge(env.redis, env.keys, { uid, opId: op('spend'), amount: 50, now: T - 1, token: 'tk' });
    expect(reply[0]).toBe(1);
    expect(parse(reply[1]).lots).toEqual([['edge', 50, T]]);
    expect((await userState(env.redis, env.keys, uid)).lots).toEqual({});
  });

  it('a lot expiring at T is not spendable at T: {-4, 0}', async () => {
    const T = T0 + 7 * DAY;
    const uid = await member([{ id: 'edge', remaining: 50, expiresAt: T }]);
    expect(await charge(env.redis, env.keys, { uid, opId: op('spend'), amount: 1, now: T, token: 'tk' })).toEqual([-4, 0]);
    expect((await userState(env.redis, env.keys, uid)).lots).toEqual({ edge: [50, T] });
  });

  it('never spends an expired-but-unswept lot, even when it sorts first', async () => {
    const uid = await member([
      { id: 'stale', remaining: 40, expiresAt: T0 - DAY },
      { id: 'live', remaining: 60, expiresAt: T0 + DAY },
    ]);
    expect(await charge(env.redis, env.keys, { uid, opId: op('spend'), amount: 61, now: T0, token: 'tk' })).toEqual([-4, 60]);
    const reply = await charge(env.redis, env.keys, { uid, opId: op('spend'), amount: 60, now: T0, token: 'tk' });
    expect(parse(reply[1])).toMatchObject({ lots: [['live', 60, T0 + DAY]], balanceAfter: 40, available: 0 });
    expect((await userState(env.redis, env.keys, uid)).lots).toEqual({ stale: [40, T0 - DAY] });
  });

  it('insufficient points return {-4, spendable} and write nothing: no outbox entry, no op record', async () => {
    const uid = await member([
      { id: 'p', remaining: 30, expiresAt: T0 + DAY },
      { id: 'q', remaining: 20, expiresAt: T0 + 2 * DAY },
    ]);
    const opId = op('spend');
    const outbox0 = await env.redis.xlen(env.keys.outboxOf(uid));
    const before = await snapshot(env.redis, env.prefix);
    expect(await charge(env.redis, env.keys, { uid, opId, amount: 51, now: T0, token: 'tk' })).toEqual([-4, 50]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    expect(await env.redis.exists(env.keys.idem(uid, opId))).toBe(0);
    expect(await env.redis.xlen(env.keys.outboxOf(uid))).toBe(outbox0);
  });

  it('a missing account returns {-1} and writes nothing', async () => {
    const uid = nextId();
    const before = await snapshot(env.redis, env.prefix);
    expect(await charge(env.redis, env.keys, { uid, opId: op('spend'), amount: 1, now: T0, token: 'tk' })).toEqual([-1]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('a replay with the same hash returns the same op JSON with replayed=1 and deducts nothing more', async () => {
    const uid = await member([{ id: 'p', remaining: 100, expiresAt: T0 + DAY }]);
    const opId = op('spend');
    const first = await charge(env.redis, env.keys, { uid, opId, amount: 40, now: T0, token: 'tk1', hash: 'hh' });
    const before = await snapshot(env.redis, env.prefix);
    // any token: the record is the answer (the saga then settles its own reservation)
    for (const token of ['tk1', 'tk2']) {
      expect(await charge(env.redis, env.keys, { uid, opId, amount: 40, now: T0 + 1, token, hash: 'hh' })).toEqual([1, first[1], 1]);
    }
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    expect((await userState(env.redis, env.keys, uid)).acct.avail).toBe('60');
  });

  it('the same op id with another hash returns -2 and writes nothing', async () => {
    const uid = await member([{ id: 'p', remaining: 100, expiresAt: T0 + DAY }]);
    const opId = op('spend');
    await charge(env.redis, env.keys, { uid, opId, amount: 40, now: T0, token: 'tk1', hash: 'hh' });
    const before = await snapshot(env.redis, env.prefix);
    expect(await charge(env.redis, env.keys, { uid, opId, amount: 40, now: T0, token: 'tk1', hash: 'other' })).toEqual([-2]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it("after an abort's tombstone a charge with the same token returns {-5} and writes nothing", async () => {
    const uid = await member([{ id: 'p', remaining: 100, expiresAt: T0 + DAY }]);
    const opId = op('spend');
    expect(await abort(env.redis, env.keys, uid, opId, 'late')).toEqual([0]);
    const before = await snapshot(env.redis, env.prefix);
    expect(await charge(env.redis, env.keys, { uid, opId, amount: 10, now: T0, token: 'late' })).toEqual([-5]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it("after an abort's tombstone a charge with another token proceeds and replaces the tombstone with the op", async () => {
    const uid = await member([{ id: 'p', remaining: 100, expiresAt: T0 + DAY }]);
    const opId = op('spend');
    await abort(env.redis, env.keys, uid, opId, 'old');
    const reply = await charge(env.redis, env.keys, { uid, opId, amount: 10, now: T0, token: 'new' });
    expect(reply[0]).toBe(1);
    expect(reply[2]).toBe(0);
    expect(parse(reply[1])).toMatchObject({ t: 'new', delta: -10 });
    expect(await env.redis.get(env.keys.idem(uid, opId))).toBe(reply[1]);
    // the late charge of the aborted reservation now replays the op (charged with the other token)
    expect(await charge(env.redis, env.keys, { uid, opId, amount: 10, now: T0, token: 'old' })).toEqual([1, reply[1], 1]);
  });

  it('a tombstone keeps refusing the first token after a retry with another token was aborted too', async () => {
    // reservation A is swept (abort A); the retry's reservation B fails its charge and is settled
    // (abort B); the stalled charge of A must still be refused, or it would spend points for units
    // that went back to stock
    const uid = await member([{ id: 'p', remaining: 100, expiresAt: T0 + DAY }]);
    const opId = op('spend');
    expect(await abort(env.redis, env.keys, uid, opId, 'A')).toEqual([0]);
    expect(await abort(env.redis, env.keys, uid, opId, 'B')).toEqual([0]);
    expect(parse(await env.redis.get(env.keys.idem(uid, opId)))).toEqual({ kind: 'aborted', t: 'B', old: ['A'] });
    const before = await snapshot(env.redis, env.prefix);
    expect(await charge(env.redis, env.keys, { uid, opId, amount: 10, now: T0, token: 'A' })).toEqual([-5]);
    expect(await charge(env.redis, env.keys, { uid, opId, amount: 10, now: T0, token: 'B' })).toEqual([-5]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
    expect((await charge(env.redis, env.keys, { uid, opId, amount: 10, now: T0, token: 'C' }))[0]).toBe(1);
  });
});

describe('abort', () => {
  it('returns {1, opJson} when the op was charged, and leaves the record', async () => {
    const uid = await member([{ id: 'p', remaining: 100, expiresAt: T0 + DAY }]);
    const opId = op('spend');
    const charged = await charge(env.redis, env.keys, { uid, opId, amount: 10, now: T0, token: 'tk' });
    expect(await abort(env.redis, env.keys, uid, opId, 'tk')).toEqual([1, charged[1]]);
    expect(await abort(env.redis, env.keys, uid, opId, 'other')).toEqual([1, charged[1]]);
    expect(await env.redis.get(env.keys.idem(uid, opId))).toBe(charged[1]);
  });

  it("writes a tombstone {kind:'aborted', t} with the TTL when nothing was charged", async () => {
    const uid = nextId();
    const opId = op('spend');
    expect(await abort(env.redis, env.keys, uid, opId, 'tk', 900)).toEqual([0]);
    expect(parse(await env.redis.get(env.keys.idem(uid, opId)))).toEqual({ kind: 'aborted', t: 'tk' });
    const ttl = await env.redis.ttl(env.keys.idem(uid, opId));
    expect(ttl).toBeGreaterThan(890);
    expect(ttl).toBeLessThanOrEqual(900);
    // aborting again is harmless
    expect(await abort(env.redis, env.keys, uid, opId, 'tk', 900)).toEqual([0]);
    expect(parse(await env.redis.get(env.keys.idem(uid, opId)))).toMatchObject({ kind: 'aborted', t: 'tk' });
  });

  it('a tombstone does not block earn or the replay bookkeeping of another op id', async () => {
    const uid = await member();
    await abort(env.redis, env.keys, uid, 'other-op', 'tk');
    expect((await earn(env.redis, env.keys, { uid, opId: op('e'), points: 5, lifetimeMs: DAY, now: T0 }))[0]).toBe(1);
  });
});

describe('hydrate', () => {
  it('loads the account and its lots when the account is absent', async () => {
    const uid = nextId();
    const lots = [
      { id: 'l1', remaining: 30, expiresAt: T0 + DAY },
      { id: 'l2', remaining: 20, expiresAt: T0 + 2 * DAY },
    ];
    expect(await hydrate(env.redis, env.keys, uid, 50, 80, lots)).toBe(1);
    const s = await userState(env.redis, env.keys, uid);
    expect(s.acct).toEqual({ avail: '50', earned: '80', tier: '0', frozen: '0' });
    expect(s.lots).toEqual({ l1: [30, T0 + DAY], l2: [20, T0 + 2 * DAY] });
  });

  it('loads an account without lots', async () => {
    const uid = nextId();
    expect(await hydrate(env.redis, env.keys, uid, 0, 0)).toBe(1);
    expect((await userState(env.redis, env.keys, uid)).acct).toEqual({ avail: '0', earned: '0', tier: '0', frozen: '0' });
  });

  it('does nothing when the account is present: Redis is newer than Postgres', async () => {
    const uid = await member([{ id: 'l1', remaining: 30, expiresAt: T0 + DAY }]);
    await earn(env.redis, env.keys, { uid, opId: 'e1', points: 5, lifetimeMs: DAY, now: T0 });
    const before = await snapshot(env.redis, env.prefix);
    expect(await hydrate(env.redis, env.keys, uid, 999, 999, [{ id: 'l9', remaining: 999, expiresAt: T0 + DAY }])).toBe(0);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });
});

describe('balance', () => {
  it('returns {-1} for an account that is not hydrated', async () => {
    expect(await balance(env.redis, env.keys, nextId(), DAY, T0)).toEqual([-1]);
  });

  it('reports avail, earned, frozen, expired-unswept points and the lots expiring within the horizon', async () => {
    const horizon = 10 * DAY;
    const uid = await member([
      { id: 'expired', remaining: 30, expiresAt: T0 - 1000 },
      { id: 'atNow', remaining: 20, expiresAt: T0 }, // expiring at now = expired
      { id: 'soon2', remaining: 4, expiresAt: T0 + 2 * DAY },
      { id: 'soon1', remaining: 10, expiresAt: T0 + 1 },
      { id: 'edge', remaining: 5, expiresAt: T0 + horizon }, // inclusive
      { id: 'later', remaining: 7, expiresAt: T0 + horizon + 1 },
    ]);
    await env.redis.hset(env.keys.account(uid), 'frozen', 3);
    const reply = await balance(env.redis, env.keys, uid, horizon, T0);
    expect(reply).toEqual([
      1, 76, 76, 3, 50, T0,
      'soon1', 10, T0 + 1,
      'soon2', 4, T0 + 2 * DAY,
      'edge', 5, T0 + horizon,
    ]);
    // the app's available: avail minus expired-unswept
    expect(Number(reply[1]) - Number(reply[4])).toBe(26);
  });

  it('reads 0 for missing earned and frozen fields and writes nothing', async () => {
    const uid = nextId();
    await env.redis.hset(env.keys.account(uid), 'avail', 12);
    const before = await snapshot(env.redis, env.prefix);
    expect(await balance(env.redis, env.keys, uid, DAY, T0)).toEqual([1, 12, 0, 0, 0, T0]);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('moves a lot from listed to expired as the fake clock passes its expiry', async () => {
    const uid = await member([{ id: 'l', remaining: 9, expiresAt: T0 + HOUR }]);
    expect(await balance(env.redis, env.keys, uid, DAY, T0 + HOUR - 1)).toEqual([1, 9, 9, 0, 0, T0 + HOUR - 1, 'l', 9, T0 + HOUR]);
    expect(await balance(env.redis, env.keys, uid, DAY, T0 + HOUR)).toEqual([1, 9, 9, 0, 9, T0 + HOUR]);
  });
});

describe('leaderboard', () => {
  const DAY_S = 86_400;
  let partition = 0;
  function boards(at: number) {
    const b = periodBuckets(at);
    const applied = env.keys.boardApplied(partition++ % env.keys.partitions);
    return {
      keys: [...PERIODS.map((p) => env.keys.board(p, b[p])), applied],
      board: (p: (typeof PERIODS)[number]) => env.keys.board(p, b[p]),
      applied,
    };
  }
  const ttls = [2 * DAY_S, 8 * DAY_S, 32 * DAY_S];
  let seq = 0;
  const sid = () => `${T0}-${seq++}`;

  it('counts an outbox entry once on all four boards and remembers its id with its ms as score', async () => {
    const uid = nextId();
    const b = boards(T0);
    const first = sid();
    expect(await env.redis.pmLeaderboard(...b.keys, ...ttls, uid, 15, first)).toBe(1);
    expect(await env.redis.pmLeaderboard(...b.keys, ...ttls, uid, 15, first)).toBe(0);
    for (const p of PERIODS) expect(await env.redis.zscore(b.board(p), String(uid))).toBe('15');
    expect(await env.redis.zscore(b.applied, first)).toBe(String(T0));
    expect(await env.redis.pmLeaderboard(...b.keys, ...ttls, uid, 5, sid())).toBe(1);
    for (const p of PERIODS) expect(await env.redis.zscore(b.board(p), String(uid))).toBe('20');
  });

  it('gives the period boards a TTL, and neither the all-time board nor the applied set one', async () => {
    const uid = nextId();
    const b = boards(T0 + 40 * DAY);
    expect(await env.redis.pmLeaderboard(...b.keys, ...ttls, uid, 3, sid())).toBe(1);
    const [daily, weekly, monthly, all, applied] = await Promise.all(b.keys.map((k) => env.redis.ttl(k)));
    expect(daily).toBeGreaterThan(2 * DAY_S - 60);
    expect(daily).toBeLessThanOrEqual(2 * DAY_S);
    expect(weekly).toBeGreaterThan(8 * DAY_S - 60);
    expect(weekly).toBeLessThanOrEqual(8 * DAY_S);
    expect(monthly).toBeGreaterThan(32 * DAY_S - 60);
    expect(monthly).toBeLessThanOrEqual(32 * DAY_S);
    expect(all).toBe(-1);
    // bounded by the relay's trimming, not by time
    expect(applied).toBe(-1);
  });

  it('an already counted entry changes no score and refreshes no TTL', async () => {
    const uid = nextId();
    const b = boards(T0 + 80 * DAY);
    const id = sid();
    await env.redis.pmLeaderboard(...b.keys, ...ttls, uid, 3, id);
    await env.redis.expire(b.board('daily'), 100);
    expect(await env.redis.pmLeaderboard(...b.keys, ...ttls, uid, 3, id)).toBe(0);
    expect(await env.redis.ttl(b.board('daily'))).toBeLessThanOrEqual(100);
    expect(await env.redis.zscore(b.board('daily'), String(uid))).toBe('3');
  });

  it('counts a batch: each entry once (a repeat inside the call or from an earlier call is skipped), a member\'s points summed', async () => {
    const [u1, u2] = [nextId(), nextId()];
    const b = boards(T0 + 160 * DAY);
    const [a, c, d] = [sid(), sid(), sid()];
    expect(await env.redis.pmLeaderboard(...b.keys, ...ttls, u1, 4, a)).toBe(1);
    // a again (counted before), c twice in this call, d: u1 gets c and d, u2 nothing new
    expect(await env.redis.pmLeaderboard(...b.keys, ...ttls, u1, 4, a, u1, 10, c, u1, 10, c, u1, 1, d, u2, 7, a)).toBe(2);
    for (const p of PERIODS) {
      expect(await env.redis.zscore(b.board(p), String(u1))).toBe('15');
      expect(await env.redis.zscore(b.board(p), String(u2))).toBeNull();
    }
    for (const id of [a, c, d]) expect(await env.redis.zscore(b.applied, id)).toBe(id.split('-')[0]);
  });

  it('a batch of many members adds the same totals as one call per op', async () => {
    const members = Array.from({ length: 40 }, () => nextId());
    const ops = Array.from({ length: 300 }, (_, i) => ({ uid: members[(i * 7) % members.length], points: 1 + ((i * 13) % 50), id: sid() }));
    const expected = new Map<number, number>();
    for (const o of ops) expected.set(o.uid, (expected.get(o.uid) ?? 0) + o.points);
    const batched = boards(T0 + 200 * DAY);
    const single = boards(T0 + 240 * DAY);
    expect(await env.redis.pmLeaderboard(...batched.keys, ...ttls, ...ops.flatMap((o) => [o.uid, o.points, o.id]))).toBe(300);
    // other ids than the batch's (sid() always uses T0's millisecond)
    for (const [i, o] of ops.entries()) await env.redis.pmLeaderboard(...single.keys, ...ttls, o.uid, o.points, `${T0 + 1}-${i}`);
    for (const [uid, total] of expected) {
      for (const p of ['daily', 'weekly', 'monthly'] as const) {
        expect(await env.redis.zscore(batched.board(p), String(uid))).toBe(String(total));
        expect(await env.redis.zscore(single.board(p), String(uid))).toBe(String(total));
      }
      // one all-time board: both runs added to it
      expect(await env.redis.zscore(batched.board('all'), String(uid))).toBe(String(2 * total));
    }
  });

  it.each([
    ['a user id that is not a positive integer', [...ttls, '0', 3, '1-0']],
    ['zero points', [...ttls, '7', 0, '1-0']],
    ['fractional points', [...ttls, '7', 1.5, '1-0']],
    ['a missing TTL', [0, ...ttls.slice(1), '7', 3, '1-0']],
    ['a stream id without a sequence', [...ttls, '7', 3, '1700000000000']],
    ['an op id instead of a stream id', [...ttls, '7', 3, 'lb-op-1']],
    ['no op', [...ttls]],
    ['an op cut short', [...ttls, '7', 3, '1-0', '8', 3]],
    ['a bad op after good ones', [...ttls, '7', 3, '1-0', '8', 3, '2-0', '9', -1, '3-0']],
  ] as Array<[string, Array<string | number>]>)('refuses %s before writing anything', async (_, args) => {
    const b = boards(T0 + 120 * DAY);
    const before = await snapshot(env.redis, env.prefix);
    await expect(env.redis.pmLeaderboard(...b.keys, ...args)).rejects.toThrow(/BAD_ARGUMENT/);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });
});

describe('op record TTL', () => {
  it('charge stores its op record with the given TTL', async () => {
    const uid = await member([{ id: 'p', remaining: 100, expiresAt: T0 + DAY }]);
    const opId = op('spend');
    await charge(env.redis, env.keys, { uid, opId, amount: 1, now: T0, token: 'tk', ttlS: OP_TTL_S });
    const ttl = await env.redis.ttl(env.keys.idem(uid, opId));
    expect(ttl).toBeGreaterThan(OP_TTL_S - 10);
    expect(ttl).toBeLessThanOrEqual(OP_TTL_S);
  });
});
