/**
 * lua/lottery-draw-many-n.lua against lua/lottery-draw-7.lua: a batch of draws (the member's side:
 * cost, prize, cooldown, daily limit) must decide, answer and write exactly what the same draws
 * decide, answer and write one call at a time in the same order. Random members (some not in
 * Redis, some frozen, lots live and expired, some with a hold given up under a key), draws over two
 * business days with a cooldown or a daily limit, points, goods and empty prizes, the member or
 * the system drawing, Idempotency-Keys used again with the same or another body, and now and then
 * a draw with a bad argument: it alone fails, writing nothing, and the rest of its batch runs.
 * Twin key prefixes: one runs every draw alone, the other the same list cut into batches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Keys } from '../../src/redis/keys.ts';
import { assertTwins, memberFields, outcomeOf, rare, runBatched, setUpMembers, useTwins, type ScriptCall } from './batch-twins.ts';
import { DAY, T0, abort } from './support.ts';

const t = useTwins();

const L = 3;
const PRIZES = [
  { id: 1, name: 'five', kind: 'points', points: 5 },
  { id: 2, name: 'mug', kind: 'goods', goodsId: 9 },
  { id: 3, name: 'nothing', kind: 'none' },
].map((p) => JSON.stringify(p));
/** Rules of the lottery: cost, cooldown ms, draws a day. */
const RULES = [
  { cost: 20, cooldown: 0, daily: 0 },
  { cost: 30, cooldown: 30_000, daily: 0 },
  { cost: 15, cooldown: 0, daily: 1 },
];

interface Draw {
  m: number;
  key: number;
  body: number;
  rules: number;
  prize: number;
  day: number;
  system: boolean;
  bad: boolean;
}

const scenarioArb = fc.record({
  members: fc.array(
    fc.record({
      ...memberFields,
      // a hold given up under key 0 (lottery settle's tombstone for the draw's token)
      givenUp: rare,
    }),
    { minLength: 1, maxLength: 4 },
  ),
  draws: fc.array(
    fc.record({
      m: fc.nat(3),
      key: fc.nat(4),
      body: fc.nat(1),
      rules: fc.nat(RULES.length - 1),
      prize: fc.nat(PRIZES.length - 1),
      day: fc.nat(1),
      system: rare,
      bad: rare,
    }),
    { minLength: 1, maxLength: 24 },
  ),
  cuts: fc.array(fc.nat(23), { maxLength: 6 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function call(keys: Keys, uid: number, d: Draw, i: number): ScriptCall {
  const r = RULES[d.rules];
  const kh = `k${d.key}`;
  return {
    keys: [keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), keys.idem(uid, kh), keys.drawState(uid, L), keys.outboxOf(uid), keys.expiryIndexOf(uid)],
    args: [
      `d${i}`, uid, `h${d.rules}.${d.body}`, 3600, T0 + d.day * DAY + i * 10_000, `t${d.key}`, kh, L, d.bad ? 0 : r.cost, r.cooldown, r.daily, 0,
      PRIZES[d.prize], 30 * DAY, d.prize === 1 ? `PM${i}` : '', d.system ? 'system' : '',
    ],
  };
}

const setUp = (keys: Keys, s: Scenario) =>
  setUpMembers(t.redis, keys, s.members, async (uid, m) => {
    if (m.givenUp) await abort(t.redis, keys, uid, 'k0', 't0', 3600);
  });

const calls = (keys: Keys, uids: number[], list: Draw[]): ScriptCall[] => list.map((x, i) => call(keys, uids[x.m % uids.length], x, i));

describe('lottery-draw-many: a batch is its draws one at a time', () => {
  it('answers and writes what the same draws alone answer and write, in order', async () => {
    await assertTwins(t.twins, scenarioArb, {
      setUp,
      build: (keys, uids, s) => calls(keys, uids, s.draws),
      one: (...a) => t.redis.pmLotteryDraw(...a),
      many: (...a) => t.redis.pmLotteryDrawMany(...a),
      // drawn, not hydrated, key reused, hold given up, frozen, cooldown, daily limit, insufficient, bad arguments
      reach: ['1', '-1', '-2', '-5', '-40', '-23', '-3', '-4', 'BAD_ARGUMENT'],
    });
  });

  it('a bad draw fails alone: the others of its batch run and it writes nothing', async () => {
    const keys = t.freshKeys();
    const uids = await setUp(keys, { members: [{ hydrated: true, frozen: false, lots: [{ remaining: 90, offset: 3 * DAY }], givenUp: false }], draws: [], cuts: [] });
    const d = (key: number, bad: boolean): Draw => ({ m: 0, key, body: 0, rules: 0, prize: 2, day: 0, system: false, bad });
    const answers = await runBatched(calls(keys, uids, [d(1, false), d(2, true), d(3, false)]), [], (...a) => t.redis.pmLotteryDrawMany(...a));
    expect(answers.map(outcomeOf)).toEqual(['1', 'BAD_ARGUMENT', '1']);
    expect(await t.redis.hget(keys.account(uids[0]), 'avail')).toBe('50');
    expect(await t.redis.exists(keys.idem(uids[0], 'k2'))).toBe(0);
    expect(await t.redis.xlen(keys.outboxOf(uids[0]))).toBe(2);
  });
});
