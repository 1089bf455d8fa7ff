/**
 * lua/redeem-many-n.lua against lua/redeem-9.lua: a batch of redemptions must decide, answer and
 * write exactly what the same redemptions decide, answer and write one call at a time in the same
 * order. Random members (lots live and expired), a goods item with little stock, a per-member and
 * a daily limit, Idempotency-Keys used again with the same or another body, and now and then a
 * redemption with a bad argument: it alone fails, writing nothing, and the rest of its batch runs.
 * Twin key prefixes: one runs every redemption alone, the other the same list cut into batches.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys, type Keys } from '../../src/redis/keys.ts';
import { deleteKeys } from '../../src/redis/delete-prefix.ts';
import { compareTwins, outcomeOf, runBatched, type ScriptCall, type Twins } from './batch-twins.ts';
import { DAY, T0, goodsSet, hydrateLots, luaEnv, type LotSpec, type LuaEnv } from './support.ts';

let env: LuaEnv;
let twins: Twins;
beforeAll(() => {
  env = luaEnv();
  twins = { redis: env.redis, prefixes: [], base: env.prefix };
});
afterAll(async () => {
  for (const prefix of twins.prefixes) await deleteKeys(env.redis, prefix);
  await env.close();
});

/** Keys under a fresh prefix, deleted with the file's. */
function freshKeys(): Keys {
  const keys = createKeys({ prefix: `${env.prefix}x${twins.prefixes.length}`, partitions: 4 });
  twins.prefixes.push(keys.prefix);
  return keys;
}

const G = 5;
const TIERS = JSON.stringify({ min: [0, 500], pm: [1000, 900] });

interface Redemption {
  m: number;
  qty: number;
  key: number;
  body: number;
  bad: boolean;
}

const memberArb = fc.array(
  fc.record({ remaining: fc.integer({ min: 1, max: 400 }), offset: fc.constantFrom(-DAY, -1, 1, DAY, 2 * DAY) }),
  { maxLength: 4 },
);
const scenarioArb = fc.record({
  members: fc.array(memberArb, { minLength: 1, maxLength: 4 }),
  goods: fc.record({
    price: fc.integer({ min: 10, max: 120 }),
    stock: fc.integer({ min: 0, max: 12 }),
    limit: fc.constantFrom(0, 1, 3),
    daily: fc.constantFrom(0, 2),
  }),
  redemptions: fc.array(
    fc.record({
      m: fc.nat(3),
      qty: fc.integer({ min: 1, max: 3 }),
      key: fc.nat(4),
      body: fc.nat(1),
      bad: fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))).chain((b) => (b ? fc.boolean() : fc.constant(false))),
    }),
    { minLength: 1, maxLength: 24 },
  ),
  cuts: fc.array(fc.nat(23), { maxLength: 6 }),
});

function redemption(keys: Keys, uid: number, r: Redemption, i: number): ScriptCall {
  const kh = `k${r.key}`;
  const opId = `o${i}`;
  return {
    keys: [keys.goods(G), keys.bought(G), keys.dailyBought(G), keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), keys.idem(uid, kh), keys.opRef(uid, opId), keys.outboxOf(uid)],
    args: [
      opId, uid, r.bad ? 0 : r.qty, `h${r.qty}.${r.body}`, 3600, T0 + i, `t${i}`, kh, TIERS, 1000, 0, '',
      JSON.stringify({ goodsId: G, quantity: r.qty, exchangeNo: `PM${i}`, bizType: 'redemption', bizId: String(G) }),
    ],
  };
}

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

async function setUp(keys: Keys, s: Scenario): Promise<number[]> {
  const { goods } = s;
  await goodsSet(env.redis, keys, G, { price: goods.price, stock: goods.stock, limit: goods.limit, dailyLimit: goods.daily, startsAt: T0 - DAY, endsAt: T0 + DAY });
  const uids: number[] = [];
  for (const [m, lots] of s.members.entries()) {
    const uid = 100 + m;
    const specs = lots.map((l, j): LotSpec => ({ id: `l${m}.${j}`, remaining: l.remaining, expiresAt: T0 + l.offset }));
    await hydrateLots(env.redis, keys, uid, specs);
    uids.push(uid);
  }
  return uids;
}

const calls = (keys: Keys, uids: number[], list: Redemption[]): ScriptCall[] => list.map((x, i) => redemption(keys, uids[x.m % uids.length], x, i));
const batched = (keys: Keys, uids: number[], list: Redemption[], cuts: number[]) =>
  runBatched(calls(keys, uids, list), cuts, (...a) => env.redis.pmRedeemMany(...a));

describe('redeem-many: a batch is its redemptions one at a time', () => {
  it('answers and writes what the same redemptions alone answer and write, in order', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const outcomes = await compareTwins(
          twins,
          (keys) => setUp(keys, s),
          (keys, uids) => calls(keys, uids, s.redemptions),
          s.cuts,
          (...a) => env.redis.pmRedeem(...a),
          (...a) => env.redis.pmRedeemMany(...a),
        );
        for (const o of outcomes) seen.add(o);
      }),
      { numRuns: 150 },
    );
    // the runs reached the outcomes that matter: taken, replayed or refused for each reason, bad arguments
    for (const outcome of ['1', '-2', '-4', '-13', 'BAD_ARGUMENT']) expect(seen, outcome).toContain(outcome);
  });

  it('a bad redemption fails alone: the others of its batch run and it writes nothing', async () => {
    const keys = freshKeys();
    const uids = await setUp(keys, {
      members: [[{ remaining: 300, offset: DAY }]],
      goods: { price: 50, stock: 10, limit: 0, daily: 0 },
      redemptions: [],
      cuts: [],
    });
    const list: Redemption[] = [
      { m: 0, qty: 1, key: 0, body: 0, bad: false },
      { m: 0, qty: 1, key: 1, body: 0, bad: true },
      { m: 0, qty: 2, key: 2, body: 0, bad: false },
    ];
    const answers = await batched(keys, uids, list, []);
    expect(answers.map(outcomeOf)).toEqual(['1', 'BAD_ARGUMENT', '1']);
    expect(await env.redis.hget(keys.goods(G), 'stock')).toBe('7');
    expect(await env.redis.hget(keys.account(uids[0]), 'avail')).toBe(String(300 - 3 * 50));
    expect(await env.redis.exists(keys.idem(uids[0], 'k1'))).toBe(0);
    expect(await env.redis.xlen(keys.outboxOf(uids[0]))).toBe(2);
  });

  it('refuses a count that does not match its keys and arguments, writing nothing', async () => {
    const keys = freshKeys();
    const uids = await setUp(keys, { members: [[{ remaining: 300, offset: DAY }]], goods: { price: 50, stock: 10, limit: 0, daily: 0 }, redemptions: [], cuts: [] });
    const one = redemption(keys, uids[0], { m: 0, qty: 1, key: 0, body: 0, bad: false }, 0);
    await expect(env.redis.pmRedeemMany(one.keys.length, ...one.keys, 2, ...one.args)).rejects.toThrow(/BAD_ARGUMENT count/);
    await expect(env.redis.pmRedeemMany(one.keys.length, ...one.keys, 0, ...one.args)).rejects.toThrow(/BAD_ARGUMENT count/);
    expect(await env.redis.hget(keys.goods(G), 'stock')).toBe('10');
  });
});
