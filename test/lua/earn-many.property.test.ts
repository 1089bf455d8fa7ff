/**
 * lua/earn-many-n.lua against lua/earn-7.lua: a batch of earns must decide, answer and write
 * exactly what the same earns decide, answer and write one call at a time in the same order.
 * Random members (some not in Redis, some frozen), daily caps by count and by points, tier and
 * campaign multipliers (several texts in one batch), the in-script risk rules (EARN_BURST,
 * HIGH_FREQUENCY, DAILY_GAIN's freeze), Idempotency-Keys used again with the same or another
 * body, and now and then an earn with a bad argument: it alone fails, writing nothing, and the
 * rest of its batch runs. Twin key prefixes: one runs every earn alone, the other the same list
 * cut into batches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Keys } from '../../src/redis/keys.ts';
import { assertTwins, memberFields, outcomeOf, rare, runBatched, setUpMembers, useTwins, type ScriptCall } from './batch-twins.ts';
import { DAY, T0 } from './support.ts';

const t = useTwins();

const MULTIPLIERS = [
  { tiers: [0], earn: [1000], applyTier: 0, campaign: 1000, lifetime: 1 },
  { tiers: [0, 100], earn: [1000, 1500], applyTier: 1, campaign: 2000, lifetime: 1 },
  { tiers: [0, 100], earn: [1000, 1500], applyTier: 0, campaign: 1000, lifetime: 0 },
].map((m) => JSON.stringify(m));
const RISKS = [
  '',
  JSON.stringify({ m: 1, c: 0, g: 0, h: 0, b: 1, bw: 60_000 }),
  JSON.stringify({ m: 1, c: 1, g: 60, h: 2, b: 0, bw: 60_000 }),
  JSON.stringify({ m: 0, c: 1, g: 60, h: 0, b: 0, bw: 60_000 }),
];

interface Earn {
  m: number;
  points: number;
  action: number;
  key: number;
  body: number;
  mult: number;
  risk: number;
  bad: boolean;
}

const scenarioArb = fc.record({
  members: fc.array(fc.record(memberFields), { minLength: 1, maxLength: 4 }),
  earns: fc.array(
    fc.record({
      m: fc.nat(3),
      points: fc.integer({ min: 1, max: 40 }),
      action: fc.nat(2),
      key: fc.nat(5),
      body: fc.nat(1),
      mult: fc.nat(MULTIPLIERS.length - 1),
      risk: fc.nat(RISKS.length - 1),
      bad: rare,
    }),
    { minLength: 1, maxLength: 24 },
  ),
  cuts: fc.array(fc.nat(23), { maxLength: 6 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/** Actions: a capped one (2 a day, 50 points), one capped by points only, and an uncapped grant. */
const ACTIONS = [
  { bizType: 'share', capCount: 2, capPoints: 50 },
  { bizType: 'review', capCount: 0, capPoints: 60 },
  { bizType: 'grant', capCount: 0, capPoints: 0 },
];

function call(keys: Keys, uid: number, e: Earn, i: number): ScriptCall {
  const a = ACTIONS[e.action];
  const kh = `k${e.key}`;
  const opId = `o${i}`;
  return {
    keys: [keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), keys.idem(uid, kh), keys.dailyCap(uid, a.bizType), keys.outboxOf(uid), keys.expiryIndexOf(uid)],
    args: [
      opId, uid, e.bad ? 0 : e.points, a.bizType, '7', a.capCount, a.capPoints, 30 * DAY, `h${e.action}.${e.points}.${e.body}`, 3600,
      T0 + i * 1000, JSON.stringify({ n: i }), kh, 0, MULTIPLIERS[e.mult], RISKS[e.risk],
    ],
  };
}

const setUp = (keys: Keys, s: Scenario) => setUpMembers(t.redis, keys, s.members);

const calls = (keys: Keys, uids: number[], list: Earn[]): ScriptCall[] => list.map((x, i) => call(keys, uids[x.m % uids.length], x, i));
const batched = (keys: Keys, uids: number[], list: Earn[], cuts: number[]) =>
  runBatched(calls(keys, uids, list), cuts, (...a) => t.redis.pmEarnMany(...a));

describe('earn-many: a batch is its earns one at a time', () => {
  it('answers and writes what the same earns alone answer and write, in order', async () => {
    await assertTwins(t.twins, scenarioArb, {
      setUp,
      build: (keys, uids, s) => calls(keys, uids, s.earns),
      one: (...a) => t.redis.pmEarn(...a),
      many: (...a) => t.redis.pmEarnMany(...a),
      // credited, refused for each reason, bad arguments
      reach: ['1', '-1', '-2', '-3', '-40', '-41', 'BAD_ARGUMENT'],
    });
  });

  it('a bad earn fails alone: the others of its batch run and it writes nothing', async () => {
    const keys = t.freshKeys();
    const uids = await setUp(keys, { members: [{ hydrated: true, frozen: false, lots: [] }], earns: [], cuts: [] });
    const e = (key: number, bad: boolean): Earn => ({ m: 0, points: 10, action: 2, key, body: 0, mult: 0, risk: 0, bad });
    const answers = await batched(keys, uids, [e(0, false), e(1, true), e(2, false)], []);
    expect(answers.map(outcomeOf)).toEqual(['1', 'BAD_ARGUMENT', '1']);
    expect(await t.redis.hget(keys.account(uids[0]), 'avail')).toBe('20');
    expect(await t.redis.exists(keys.idem(uids[0], 'k1'))).toBe(0);
    expect(await t.redis.xlen(keys.outboxOf(uids[0]))).toBe(2);
  });
});
