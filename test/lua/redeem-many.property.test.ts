/**
 * lua/redeem-many-n.lua against lua/redeem-9.lua: a batch of redemptions must decide, answer and
 * write exactly what the same redemptions decide, answer and write one call at a time in the same
 * order. Random members (lots live and expired), a goods item with little stock, a per-member and
 * a daily limit, Idempotency-Keys used again with the same or another body, and now and then a
 * redemption with a bad argument: it alone fails, writing nothing, and the rest of its batch runs.
 * Twin key prefixes: one runs every redemption alone, the other the same list cut into batches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Keys } from '../../src/redis/keys.ts';
import { assertTwins, outcomeOf, runBatched, setUpMembers, useTwins, type ScriptCall } from './batch-twins.ts';
import { DAY, T0, goodsSet } from './support.ts';

const t = useTwins();

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
  await goodsSet(t.redis, keys, G, { price: goods.price, stock: goods.stock, limit: goods.limit, dailyLimit: goods.daily, startsAt: T0 - DAY, endsAt: T0 + DAY });
  return setUpMembers(t.redis, keys, s.members.map((lots) => ({ lots })));
}

const calls = (keys: Keys, uids: number[], list: Redemption[]): ScriptCall[] => list.map((x, i) => redemption(keys, uids[x.m % uids.length], x, i));
const batched = (keys: Keys, uids: number[], list: Redemption[], cuts: number[]) =>
  runBatched(calls(keys, uids, list), cuts, (...a) => t.redis.pmRedeemMany(...a));

describe('redeem-many: a batch is its redemptions one at a time', () => {
  it('answers and writes what the same redemptions alone answer and write, in order', async () => {
    await assertTwins(t.twins, scenarioArb, {
      setUp,
      build: (keys, uids, s) => calls(keys, uids, s.redemptions),
      one: (...a) => t.redis.pmRedeem(...a),
      many: (...a) => t.redis.pmRedeemMany(...a),
      // taken, replayed or refused for each reason, bad arguments
      reach: ['1', '-2', '-4', '-13', 'BAD_ARGUMENT'],
    });
  });

  it('a bad redemption fails alone: the others of its batch run and it writes nothing', async () => {
    const keys = t.freshKeys();
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
    expect(await t.redis.hget(keys.goods(G), 'stock')).toBe('7');
    expect(await t.redis.hget(keys.account(uids[0]), 'avail')).toBe(String(300 - 3 * 50));
    expect(await t.redis.exists(keys.idem(uids[0], 'k1'))).toBe(0);
    expect(await t.redis.xlen(keys.outboxOf(uids[0]))).toBe(2);
  });

  it('refuses a count that does not match its keys and arguments, writing nothing', async () => {
    const keys = t.freshKeys();
    const uids = await setUp(keys, { members: [[{ remaining: 300, offset: DAY }]], goods: { price: 50, stock: 10, limit: 0, daily: 0 }, redemptions: [], cuts: [] });
    const one = redemption(keys, uids[0], { m: 0, qty: 1, key: 0, body: 0, bad: false }, 0);
    await expect(t.redis.pmRedeemMany(one.keys.length, ...one.keys, 2, ...one.args)).rejects.toThrow(/BAD_ARGUMENT count/);
    await expect(t.redis.pmRedeemMany(one.keys.length, ...one.keys, 0, ...one.args)).rejects.toThrow(/BAD_ARGUMENT count/);
    expect(await t.redis.hget(keys.goods(G), 'stock')).toBe('10');
  });
});
