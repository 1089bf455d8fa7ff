/**
 * lua/checkin-many-n.lua against lua/checkin-6.lua: a batch of check-ins must decide, answer and
 * write exactly what the same check-ins decide, answer and write one call at a time in the same
 * order. Random members (some not in Redis, some frozen, some with a streak already running),
 * check-ins over four business days (the second of a day is ALREADY_CHECKED_IN, a missed day
 * resets the streak), two rule texts with streak bonuses, tier and campaign multipliers and the
 * in-script risk rules (several texts in one batch), and now and then a check-in with a bad
 * argument: it alone fails, writing nothing, and the rest of its batch runs. Twin key prefixes:
 * one runs every check-in alone, the other the same list cut into batches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Keys } from '../../src/redis/keys.ts';
import { assertTwins, memberFields, outcomeOf, rare, runBatched, setUpMembers, useTwins, type ScriptCall } from './batch-twins.ts';
import { DAY, T0 } from './support.ts';

const t = useTwins();

const RULES = [
  { base: 10, bonuses: [{ days: 2, points: 15 }, { days: 3, points: 30 }], expiryMs: 30 * DAY },
  { base: 5, bonuses: [], expiryMs: 10 * DAY },
].map((r) => JSON.stringify(r));
const MULTIPLIERS = [
  { tiers: [0], earn: [1000], applyTier: 1, campaign: 1000, lifetime: 1 },
  { tiers: [0, 40], earn: [1000, 1500], applyTier: 1, campaign: 2000, lifetime: 1 },
].map((m) => JSON.stringify(m));
const RISKS = [
  '',
  JSON.stringify({ m: 1, c: 1, g: 25, h: 2, b: 0, bw: 60_000, ip: '10.0.0.1' }),
  JSON.stringify({ m: 0, c: 1, g: 25, h: 0, b: 0, bw: 60_000 }),
];
/** Rules the script refuses (a bonus of 0 points). */
const BAD_RULES = JSON.stringify({ base: 10, bonuses: [{ days: 2, points: 0 }], expiryMs: DAY });
const T0_DAY = Math.floor(T0 / DAY);

interface Checkin {
  m: number;
  day: number;
  rules: number;
  mult: number;
  risk: number;
  bad: boolean;
  badRules?: boolean;
}

const scenarioArb = fc.record({
  members: fc.array(
    fc.record({
      ...memberFields,
      // a streak already running: its last check-in this many days before T0's day (0: none)
      streakFrom: fc.nat(2),
    }),
    { minLength: 1, maxLength: 4 },
  ),
  checkins: fc.array(
    fc.record({
      m: fc.nat(3),
      day: fc.nat(3),
      rules: fc.nat(RULES.length - 1),
      mult: fc.nat(MULTIPLIERS.length - 1),
      risk: fc.nat(RISKS.length - 1),
      bad: rare,
      // what is bad about it: the member id, or the rules text (a decode that fails mid-batch)
      badRules: fc.boolean(),
    }),
    { minLength: 1, maxLength: 24 },
  ),
  cuts: fc.array(fc.nat(23), { maxLength: 6 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function call(keys: Keys, uid: number, c: Checkin, i: number): ScriptCall {
  return {
    keys: [keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), keys.streak(uid), keys.outboxOf(uid), keys.expiryIndexOf(uid)],
    args: [
      `o${i}`, c.bad && !c.badRules ? 0 : uid, T0 + c.day * DAY + i * 1000, 0, c.bad && c.badRules ? BAD_RULES : RULES[c.rules], MULTIPLIERS[c.mult],
      JSON.stringify({ n: i }), RISKS[c.risk],
    ],
  };
}

const setUp = (keys: Keys, s: Scenario) =>
  setUpMembers(t.redis, keys, s.members, async (uid, m) => {
    if (m.streakFrom > 0) await t.redis.hset(keys.streak(uid), 'last', T0_DAY - m.streakFrom, 'streak', 2, 'longest', 4);
  });

const calls = (keys: Keys, uids: number[], list: Checkin[]): ScriptCall[] => list.map((x, i) => call(keys, uids[x.m % uids.length], x, i));

describe('checkin-many: a batch is its check-ins one at a time', () => {
  it('answers and writes what the same check-ins alone answer and write, in order', async () => {
    await assertTwins(t.twins, scenarioArb, {
      setUp,
      build: (keys, uids, s) => calls(keys, uids, s.checkins),
      one: (...a) => t.redis.pmCheckin(...a),
      many: (...a) => t.redis.pmCheckinMany(...a),
      // checked in, already checked in, not hydrated, frozen, bad arguments
      reach: ['1', '-6', '-1', '-40', 'BAD_ARGUMENT'],
    });
  });

  it('a bad check-in fails alone: the others of its batch run and it writes nothing', async () => {
    const keys = t.freshKeys();
    const uids = await setUp(keys, { members: [{ hydrated: true, frozen: false, lots: [], streakFrom: 0 }], checkins: [], cuts: [] });
    const c = (day: number, bad: boolean): Checkin => ({ m: 0, day, rules: 1, mult: 0, risk: 0, bad });
    const answers = await runBatched(calls(keys, uids, [c(0, false), c(1, true), c(2, false)]), [], (...a) => t.redis.pmCheckinMany(...a));
    expect(answers.map(outcomeOf)).toEqual(['1', 'BAD_ARGUMENT', '1']);
    // day 0, then day 2 (day 1 failed): the streak started again, 5 points each
    expect(await t.redis.hget(keys.account(uids[0]), 'avail')).toBe('10');
    expect(await t.redis.hmget(keys.streak(uids[0]), 'last', 'streak')).toEqual([String(T0_DAY + 2), '1']);
    expect(await t.redis.xlen(keys.outboxOf(uids[0]))).toBe(2);
  });
});
