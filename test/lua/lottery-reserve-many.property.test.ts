/**
 * lua/lottery-reserve-many-n.lua against lua/lottery-reserve-4.lua: a batch of prize holds must
 * decide, answer and write exactly what the same holds decide, answer and write one call at a
 * time in the same order. A lottery (or none, or one switched off or outside its window) with
 * weighted prizes, some limited with little stock, so that prizes run out inside a batch and the
 * weights renormalise; two lotteries in one batch (two prize tables: the decoded table is kept only
 * while the text is the same); keys used again with the same or another body; and now and then a
 * hold with a bad argument: it alone fails, writing nothing, and the rest of its batch runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Keys } from '../../src/redis/keys.ts';
import { assertTwins, outcomeOf, rare, runBatched, useTwins, type ScriptCall } from './batch-twins.ts';
import { DAY, T0 } from './support.ts';

const t = useTwins();

const prizeArb = fc.record({ weight: fc.integer({ min: 1, max: 5 }), stock: fc.option(fc.nat(2), { nil: undefined }) });
const lotteryArb = fc.record({
  state: fc.constantFrom('open', 'open', 'open', 'off', 'ended', 'missing'),
  prizes: fc.array(prizeArb, { minLength: 1, maxLength: 4 }),
});
const scenarioArb = fc.record({
  lotteries: fc.tuple(lotteryArb, lotteryArb),
  holds: fc.array(
    fc.record({
      lottery: fc.nat(9).map((n) => (n < 8 ? 0 : 1)),
      m: fc.nat(3),
      key: fc.nat(4),
      body: fc.nat(1),
      rand: fc.nat(1_000_000),
      bad: rare,
    }),
    { minLength: 1, maxLength: 24 },
  ),
  cuts: fc.array(fc.nat(23), { maxLength: 6 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;
type Lottery = Scenario['lotteries'][number];

const LIDS = [7, 8];

async function setLottery(keys: Keys, lid: number, l: Lottery): Promise<void> {
  if (l.state === 'missing') return;
  const live = l.prizes.map((p, i) => ({ id: i + 1, name: `prize ${i + 1}`, kind: 'none', weight: p.weight, limited: p.stock === undefined ? 0 : 1 }));
  const stock = l.prizes.flatMap((p, i) => (p.stock === undefined ? [] : [i + 1, p.stock, p.stock]));
  const endsAt = l.state === 'ended' ? T0 - DAY : 0;
  await t.redis.pmLotterySet(keys.lottery(lid), keys.lotteryStock(lid), 1, l.state === 'off' ? 0 : 1, 0, endsAt, 20, 0, 0, JSON.stringify(live), 0, ...stock);
}

const setUp = async (keys: Keys, s: Scenario) => {
  for (const [i, l] of s.lotteries.entries()) await setLottery(keys, LIDS[i], l);
};

const calls = (keys: Keys, s: Scenario): ScriptCall[] =>
  s.holds.map((h, i) => {
    const lid = LIDS[h.lottery];
    return {
      keys: [keys.lottery(lid), keys.lotteryStock(lid), keys.lotteryHolds(lid), keys.lotteryHoldDeadlines(lid)],
      args: [`d${i}`, h.bad ? 0 : 100 + h.m, `h${h.body}`, 15_000, T0 + i * 1000, `t${i}`, `k${h.key}`, h.rand],
    };
  });

describe('lottery-reserve-many: a batch is its prize holds one at a time', () => {
  it('answers and writes what the same holds alone answer and write, in order', async () => {
    await assertTwins(t.twins, scenarioArb, {
      setUp,
      build: (keys, _, s) => calls(keys, s),
      one: (...a) => t.redis.pmLotteryReserve(...a),
      many: (...a) => t.redis.pmLotteryReserveMany(...a),
      // held, key reused, no such lottery, not active, every prize gone, bad arguments
      reach: ['1', '-2', '-20', '-21', '-22', 'BAD_ARGUMENT'],
    });
  });

  it('a bad hold fails alone: the others of its batch run and it writes nothing', async () => {
    const keys = t.freshKeys();
    const s: Scenario = {
      lotteries: [{ state: 'open', prizes: [{ weight: 1, stock: 5 }] }, { state: 'missing', prizes: [{ weight: 1, stock: undefined }] }],
      holds: [
        { lottery: 0, m: 0, key: 0, body: 0, rand: 1, bad: false },
        { lottery: 0, m: 1, key: 0, body: 0, rand: 2, bad: true },
        { lottery: 0, m: 2, key: 0, body: 0, rand: 3, bad: false },
      ],
      cuts: [],
    };
    await setUp(keys, s);
    const answers = await runBatched(calls(keys, s), [], (...a) => t.redis.pmLotteryReserveMany(...a));
    expect(answers.map(outcomeOf)).toEqual(['1', 'BAD_ARGUMENT', '1']);
    expect(await t.redis.hget(keys.lotteryStock(LIDS[0]), '1')).toBe('3');
    expect(await t.redis.hlen(keys.lotteryHolds(LIDS[0]))).toBe(2);
  });
});
