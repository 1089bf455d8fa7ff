/**
 * lua/draw-at-once-9.lua (a whole lottery draw in one script, DRAW_PATH=auto on one Redis) against
 * the saga it stands for, run as the API runs it: the key's record first (a replay, or KEY_REUSED),
 * then lua/lottery-reserve-4.lua (the prize picked and held), lua/lottery-draw-7.lua (the member's
 * side, with the held prize), and lua/confirm-2.lua — or, when the member's side refused, the
 * settle (abort, then lottery-release: the unit back). The script must answer what the saga
 * answers and leave what it leaves: the member's balance, lots, record, cooldown and daily count,
 * the outbox ops, the prize stock, and no hold. The saga's settle also leaves a tombstone in the
 * key's record, which only refuses a late charge of a hold the script never makes: those are left
 * out of the comparison. Random members (some not in Redis, some frozen, lots live and expired),
 * prizes limited and not (running out), a cooldown or a daily limit, the lottery open or not, keys
 * used again, and now and then a bad argument (nothing written by either). Twin key prefixes. And
 * lua/draw-at-once-many-n.lua against the script alone: a batch answers and writes what the same
 * draws alone answer and write, in order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Keys } from '../../src/redis/keys.ts';
import { prizeOf } from '../../src/lottery/store.ts';
import { snapshotRedis } from '../faults/support.ts';
import { assertTwins, memberFields, rare, setUpMembers, useTwins, type Answer, type ScriptCall } from './batch-twins.ts';
import { DAY, T0, type Reply } from './support.ts';

const t = useTwins();

const L = 4;
const TTL = 3600;
const LIFETIME = 30 * DAY;
const PRIZES = [
  { id: 1, name: 'ten', kind: 'points', points: 10, weight: 3, limited: 1 },
  { id: 2, name: 'mug', kind: 'goods', goodsId: 9, weight: 2, limited: 1 },
  { id: 3, name: 'nothing', kind: 'none', weight: 2, limited: 0 },
  { id: 4, name: 'two', kind: 'points', points: 2, weight: 1, limited: 0 },
];

const scenarioArb = fc.record({
  members: fc.array(fc.record(memberFields), { minLength: 1, maxLength: 4 }),
  lottery: fc.record({
    active: fc.nat(9).map((n) => (n < 9 ? 1 : 0)),
    cost: fc.integer({ min: 5, max: 40 }),
    cooldown: fc.constantFrom(0, 0, 20_000),
    daily: fc.constantFrom(0, 1, 2),
    stock: fc.tuple(fc.nat(3), fc.nat(2)),
    // only the limited prizes: the draws can run every prize out
    onlyLimited: fc.boolean(),
  }),
  draws: fc.array(
    fc.record({ m: fc.nat(3), key: fc.nat(3), body: fc.nat(1), rand: fc.nat(1_000_000), day: fc.nat(1), bad: rare }),
    { minLength: 1, maxLength: 16 },
  ),
  cuts: fc.array(fc.nat(15), { maxLength: 5 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;
type DrawSpec = Scenario['draws'][number];

/**
 * The members and the lottery, its limited prizes' stock as the scenario says.
 */
async function setUp(keys: Keys, s: Scenario): Promise<number[]> {
  const uids = await setUpMembers(t.redis, keys, s.members);
  const { active, cost, cooldown, daily, stock, onlyLimited } = s.lottery;
  const prizes = onlyLimited ? PRIZES.filter((p) => p.limited === 1) : PRIZES;
  await t.redis.pmLotterySet(keys.lottery(L), keys.lotteryStock(L), 1, active, 0, 0, cost, cooldown, daily, JSON.stringify(prizes), 0, 1, stock[0], stock[0], 2, stock[1], stock[1]);
  return uids;
}

const nowOf = (d: DrawSpec, i: number) => T0 + d.day * DAY + i * 10_000;
const hashOf = (d: DrawSpec) => `h${d.body}`;

function atOnceCall(keys: Keys, uid: number, d: DrawSpec, i: number): ScriptCall {
  const kh = `k${d.key}`;
  return {
    keys: [
      keys.lottery(L), keys.lotteryStock(L), keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), keys.idem(uid, kh),
      keys.drawState(uid, L), keys.outboxOf(uid), keys.expiryIndexOf(uid),
    ],
    // a bad one: a random number out of range, refused before any write
    args: [`d${i}`, uid, hashOf(d), TTL, nowOf(d, i), `t${i}`, kh, L, d.bad ? 2 ** 48 : d.rand, 0, LIFETIME, `PM${i}`, ''],
  };
}

const errorCode = (err: Error) => err.message.split(' ')[0];

/** What the API does before any script: the key's record answers a replay or KEY_REUSED (a tombstone is no record). */
async function priorAnswer(keys: Keys, uid: number, d: DrawSpec): Promise<Answer | null> {
  const raw = await t.redis.get(keys.idem(uid, `k${d.key}`));
  if (raw === null) return null;
  const rec = JSON.parse(raw) as { kind: string; h: string };
  if (rec.kind === 'aborted') return null;
  return rec.h === hashOf(d) ? [1, raw, 1] : [-2];
}

async function saga(keys: Keys, uids: number[], list: DrawSpec[]): Promise<Answer[]> {
  const out: Answer[] = [];
  for (const [i, d] of list.entries()) {
    const uid = uids[d.m % uids.length];
    const kh = `k${d.key}`;
    const prior = await priorAnswer(keys, uid, d);
    if (prior) {
      out.push(prior);
      continue;
    }
    const holdReply: Answer = await t.redis
      .pmLotteryReserve(keys.lottery(L), keys.lotteryStock(L), keys.lotteryHolds(L), keys.lotteryHoldDeadlines(L), `d${i}`, uid, hashOf(d), 15_000, nowOf(d, i), `t${i}`, kh, d.bad ? 2 ** 48 : d.rand)
      .catch(errorCode);
    if (typeof holdReply === 'string' || Number(holdReply[0]) !== 1) {
      out.push(holdReply);
      continue;
    }
    const hold = JSON.parse(String(holdReply[1])) as { o: string; t: string; c: number; cd: number; dl: number; p: (typeof PRIZES)[number] };
    const prize = prizeOf(hold.p as Parameters<typeof prizeOf>[0]);
    const reply: Answer = await t.redis
      .pmLotteryDraw(
        keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), keys.idem(uid, kh), keys.drawState(uid, L), keys.outboxOf(uid),
        keys.expiryIndexOf(uid), hold.o, uid, hashOf(d), TTL, nowOf(d, i), hold.t, kh, L, hold.c, hold.cd, hold.dl, 0, JSON.stringify(prize),
        LIFETIME, prize.kind === 'goods' ? `PM${i}` : '', '',
      )
      .catch(errorCode);
    const holdId = `${uid}:${kh}`;
    if (typeof reply !== 'string' && Number(reply[0]) === 1) {
      await t.redis.pmConfirm(keys.lotteryHolds(L), keys.lotteryHoldDeadlines(L), holdId, hold.t);
    } else {
      // the settle: a tombstone for the token (nothing was charged), then the unit back
      await t.redis.pmAbort(keys.idem(uid, kh), hold.t, TTL);
      await t.redis.pmLotteryRelease(keys.lotteryStock(L), keys.lotteryHolds(L), keys.lotteryHoldDeadlines(L), holdId, hold.t);
    }
    out.push(reply);
  }
  return out;
}

async function atOnce(keys: Keys, uids: number[], list: DrawSpec[], daily: number): Promise<Answer[]> {
  const out: Answer[] = [];
  for (const [i, d] of list.entries()) {
    const uid = uids[d.m % uids.length];
    const prior = await priorAnswer(keys, uid, d);
    if (prior) {
      out.push(prior);
      continue;
    }
    const c = atOnceCall(keys, uid, d, i);
    const reply: Answer = await t.redis.pmDrawAtOnce(...c.keys, ...c.args).catch(errorCode);
    // a daily limit's refusal also names the limit (the saga's API has it from the hold)
    if (typeof reply !== 'string' && Number(reply[0]) === -3) {
      expect(reply[2]).toBe(daily);
      out.push(reply.slice(0, 2));
    } else out.push(reply);
  }
  return out;
}

/** A snapshot with JSON values parsed (key order is the encoder's), the saga's tombstones left out. */
async function state(prefix: string) {
  const snap = (await snapshotRedis(t.redis, prefix)) as Record<string, unknown>;
  const parse = (v: unknown): unknown => {
    if (typeof v === 'string' && (v.startsWith('{') || v.startsWith('['))) return JSON.parse(v);
    if (Array.isArray(v)) return v.map(parse);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, parse(x)]));
    return v;
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(snap)) {
    const value = parse(v);
    if ((value as { value?: { kind?: string } } | null)?.value?.kind === 'aborted') continue;
    out[k] = value;
  }
  return out;
}

/** A reply with its JSON parsed, for the same reason. */
const parsed = (a: Answer) => (typeof a === 'string' ? a : a.map((x) => (typeof x === 'string' && x.startsWith('{') ? JSON.parse(x) : x)));

function outcome(a: Answer): string {
  if (typeof a === 'string') return a;
  if (Number(a[0]) === 1) return Number(a[2]) === 1 ? 'replayed' : 'drawn';
  return String(a[0]);
}

describe('draw-at-once: one script is the saga run without interruption', () => {
  it('answers and writes what hold → draw → confirm (or settle) answer and write', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const sagaKeys = t.freshKeys();
        const scriptKeys = t.freshKeys();
        const expected = await saga(sagaKeys, await setUp(sagaKeys, s), s.draws);
        const got = await atOnce(scriptKeys, await setUp(scriptKeys, s), s.draws, s.lottery.daily);
        expect(got.map(parsed)).toEqual(expected.map(parsed));
        expect(await state(scriptKeys.prefix)).toEqual(await state(sagaKeys.prefix));
        for (const a of expected) seen.add(outcome(a));
      }),
      { numRuns: 150 },
    );
    // drawn, replayed, key reused, not active, every prize gone, not hydrated, frozen, cooldown,
    // daily limit, too few points, bad argument
    for (const o of ['drawn', 'replayed', '-2', '-21', '-22', '-1', '-40', '-23', '-3', '-4', 'BAD_ARGUMENT']) expect(seen, o).toContain(o);
  });
});

describe('draw-at-once: a key with a record', () => {
  it('is answered from it before any prize is picked — replayed, or refused as reused — with every prize gone or the lottery off, writing nothing', async () => {
    const keys = t.freshKeys();
    const base: Scenario = {
      members: [{ hydrated: true, frozen: false, lots: [{ remaining: 100, offset: DAY }] }],
      lottery: { active: 1, cost: 10, cooldown: 0, daily: 0, stock: [1, 0], onlyLimited: true },
      draws: [],
      cuts: [],
    };
    const [uid] = await setUp(keys, base);
    const d: DrawSpec = { m: 0, key: 0, body: 0, rand: 7, day: 0, bad: false };
    const first = atOnceCall(keys, uid, d, 0);
    const made = await t.redis.pmDrawAtOnce(...first.keys, ...first.args);
    expect([made[0], made[2]]).toEqual([1, 0]);
    expect(await t.redis.hget(keys.lotteryStock(L), '1')).toBe('0');

    // the same key again (a concurrent duplicate past the API's own look, a resend): every prize is gone now
    const before = await state(keys.prefix);
    const again = atOnceCall(keys, uid, d, 1);
    expect(await t.redis.pmDrawAtOnce(...again.keys, ...again.args)).toEqual([1, made[1], 1]);
    const reused = atOnceCall(keys, uid, { ...d, body: 1 }, 2);
    expect(await t.redis.pmDrawAtOnce(...reused.keys, ...reused.args)).toEqual([-2]);
    // and with the lottery switched off
    await t.redis.hset(keys.lottery(L), 'active', '0');
    expect(await t.redis.pmDrawAtOnce(...again.keys, ...again.args)).toEqual([1, made[1], 1]);
    await t.redis.hset(keys.lottery(L), 'active', '1');
    expect(await state(keys.prefix)).toEqual(before);

    // two of them in one batch: the first draws, the second replays it
    const keys2 = t.freshKeys();
    const [uid2] = await setUp(keys2, base);
    const a = atOnceCall(keys2, uid2, d, 0);
    const b = atOnceCall(keys2, uid2, d, 1);
    const replies = await t.redis.pmDrawAtOnceMany(18, ...a.keys, ...b.keys, 2, ...a.args, ...b.args);
    expect(replies.map((r) => [r[0], r[2]])).toEqual([[1, 0], [1, 1]]);
    expect(replies[1][1]).toBe(replies[0][1]);
  });
});

describe('draw-at-once-many: a batch is its draws one at a time', () => {
  it('answers and writes what the same draws alone answer and write, in order', async () => {
    await assertTwins(t.twins, scenarioArb, {
      setUp,
      build: (keys, uids, s) => s.draws.map((d, i) => atOnceCall(keys, uids[d.m % uids.length], d, i)),
      one: (...a) => t.redis.pmDrawAtOnce(...a) as Promise<Reply>,
      many: (...a) => t.redis.pmDrawAtOnceMany(...a),
      reach: ['1', '-2', '-21', '-22', '-1', '-40', '-23', '-3', '-4', 'BAD_ARGUMENT'],
    });
  });
});
