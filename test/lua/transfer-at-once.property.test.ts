/**
 * lua/transfer-14.lua (a whole transfer in one script, TRANSFER_PATH=auto on one Redis) against
 * the saga it stands for: lua/transfer-debit-8.lua, then — when it debited — lua/transfer-credit-6.lua
 * with the transfer the debit recorded, then — when that credited — lua/transfer-done-2.lua. The
 * script must answer the debit's answer, say whether it credited exactly when the saga's credit
 * did, and leave exactly the saga's state: both members' balances, lots, records and outbox ops,
 * the sender's day, and the pending set (empty after a credit, the transfer on it when the
 * receiver is not in Redis). Random members (some not in Redis, some frozen, lots live and
 * expired), keys used again with the same or another body, a small daily maximum, and now and then
 * a bad argument (nothing written by either). Twin key prefixes: one runs the saga, the other the
 * script. And lua/transfer-many-n.lua against lua/transfer-14.lua: a batch of transfers answers and
 * writes what the same transfers alone answer and write, in order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Keys } from '../../src/redis/keys.ts';
import { creditKeyHash } from '../../src/transfers/service.ts';
import { requestHash } from '../../src/points/idempotency.ts';
import { snapshotRedis } from '../faults/support.ts';
import { assertTwins, memberFields, rare, setUpMembers, useTwins, type Answer, type ScriptCall } from './batch-twins.ts';
import { T0, type Reply } from './support.ts';

const t = useTwins();

/** Credit multipliers: never multiplying, with one tier table or another (the op records the receiver's tier by it). */
const MULTIPLIERS = [
  { tiers: [0], earn: [1000], applyTier: 0, campaign: 1000, lifetime: 0 },
  { tiers: [0, 60], earn: [1000, 1200], applyTier: 0, campaign: 1000, lifetime: 0 },
].map((m) => JSON.stringify(m));
const TTL = 3600;
const DAILY_MAX = 150;

interface Transfer {
  from: number;
  to: number;
  amount: number;
  key: number;
  body: number;
  bad: boolean;
  mult?: number;
}

const scenarioArb = fc.record({
  members: fc.array(fc.record(memberFields), { minLength: 2, maxLength: 4 }),
  transfers: fc.array(
    fc.record({ from: fc.nat(3), to: fc.nat(3), amount: fc.integer({ min: 1, max: 160 }), key: fc.nat(3), body: fc.nat(1), bad: rare, mult: fc.nat(1) }),
    { minLength: 1, maxLength: 16 },
  ),
  cuts: fc.array(fc.nat(15), { maxLength: 5 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/** The sender's keys and lua/transfer-debit-8.lua's arguments (the guard: the sender acts). */
function debitCall(keys: Keys, from: number, to: number, x: Transfer, i: number) {
  const kh = `k${x.key}`;
  return {
    keys: [
      keys.account(from), keys.lotsByExpiry(from), keys.lotRemaining(from), keys.idem(from, kh), keys.transferDay(from), keys.outboxOf(from),
      keys.transfersPendingOf(from), keys.transfersPendingDataOf(from),
    ],
    // a bad one: amount 0, refused before any write
    args: [`x${i}`, from, to, x.bad ? 0 : x.amount, `h${x.body}`, TTL, T0 + i * 1000, kh, 0, DAILY_MAX, `user${to}`, x.body ? 'thanks' : '', ''],
  };
}

/** The receiver's keys and lua/transfer-credit-6.lua's ARGV[2..7] for transfer `x<i>`. */
function creditCall(keys: Keys, to: number, i: number, mult = 0) {
  const id = `x${i}`;
  const kh = creditKeyHash(id);
  return {
    keys: [keys.account(to), keys.lotsByExpiry(to), keys.lotRemaining(to), keys.idem(to, kh), keys.outboxOf(to), keys.expiryIndexOf(to)],
    args: [requestHash('transfer-in', { id }), TTL, T0 + i * 1000, kh, MULTIPLIERS[mult], to],
  };
}

const errorCode = (err: Error) => err.message.split(' ')[0];

interface Outcome {
  debit: Answer;
  /** whether the transfer's credit was made (by the saga's second step, or inside the script) */
  credited: boolean;
}

/** The saga as the API runs it with nothing interrupting: debit; credit when debited; done when credited. */
async function saga(keys: Keys, uids: number[], list: Transfer[]): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const [i, x] of list.entries()) {
    const from = uids[x.from % uids.length];
    const to = uids[x.to % uids.length];
    const d = debitCall(keys, from, to, x, i);
    const debit: Answer = await t.redis.pmTransferDebit(...d.keys, ...d.args).catch(errorCode);
    let credited = false;
    if (typeof debit !== 'string' && Number(debit[0]) === 1 && Number(debit[2]) === 0) {
      const c = creditCall(keys, to, i, x.mult);
      const transfer = (JSON.parse(String(debit[1])) as { transfer: unknown }).transfer;
      const credit = await t.redis.pmTransferCredit(...c.keys, JSON.stringify(transfer), ...c.args);
      if (Number(credit[0]) === 1) {
        credited = true;
        await t.redis.pmTransferDone(keys.transfersPendingOf(from), keys.transfersPendingDataOf(from), `x${i}`);
      }
    }
    out.push({ debit, credited });
  }
  return out;
}

async function atOnce(keys: Keys, uids: number[], list: Transfer[]): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const [i, x] of list.entries()) {
    const from = uids[x.from % uids.length];
    const to = uids[x.to % uids.length];
    const d = debitCall(keys, from, to, x, i);
    const c = creditCall(keys, to, i, x.mult);
    const reply: Answer = await t.redis.pmTransfer(...d.keys, ...c.keys, ...d.args, ...c.args).catch(errorCode);
    if (typeof reply === 'string' || reply.length < 4) {
      out.push({ debit: reply, credited: false });
      continue;
    }
    out.push({ debit: reply.slice(0, 3), credited: Number(reply[3]) === 1 });
  }
  return out;
}

/**
 * The members; odd ones keep no stored tier (an account from before tiers were stored), so a
 * credit takes the tier its multipliers' table gives their lifetime points.
 */
const setUp = (keys: Keys, s: Scenario) =>
  setUpMembers(t.redis, keys, s.members, (uid) => (uid % 2 === 1 ? t.redis.hdel(keys.account(uid), 'tier') : Promise.resolve(0)));

function outcome(o: Outcome): string {
  if (typeof o.debit === 'string') return o.debit;
  if (Number(o.debit[0]) !== 1) return String(o.debit[0]);
  if (Number(o.debit[2]) === 1) return 'replayed';
  return o.credited ? 'credited' : 'pending';
}

describe('transfer: one script is the saga run without interruption', () => {
  it('answers, credits and writes what debit → credit → done answer, credit and write', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s: Scenario) => {
        const n = t.twins.prefixes.length;
        const sagaKeys = t.freshKeys();
        const scriptKeys = t.freshKeys();
        expect(t.twins.prefixes.length).toBe(n + 2);
        const expected = await saga(sagaKeys, await setUp(sagaKeys, s), s.transfers);
        const got = await atOnce(scriptKeys, await setUp(scriptKeys, s), s.transfers);
        expect(got).toEqual(expected);
        expect(await snapshotRedis(t.redis, scriptKeys.prefix)).toEqual(await snapshotRedis(t.redis, sagaKeys.prefix));
        for (const o of expected) seen.add(outcome(o));
      }),
      { numRuns: 150 },
    );
    // credited, left pending (receiver not in Redis), replayed, key reused, over the day, too few
    // points, sender not in Redis, sender frozen, bad argument (the amount, or to oneself)
    for (const o of ['credited', 'pending', 'replayed', '-2', '-30', '-4', '-1', '-40', 'BAD_ARGUMENT']) expect(seen, o).toContain(o);
  });

  it('refuses a receiver id other than the debit names, writing nothing', async () => {
    const keys = t.freshKeys();
    const uids = await setUpMembers(t.redis, keys, [{ lots: [{ remaining: 50, offset: 86_400_000 }] }, { lots: [] }, { lots: [] }]);
    const x: Transfer = { from: 0, to: 1, amount: 10, key: 0, body: 0, bad: false };
    const d = debitCall(keys, uids[0], uids[1], x, 0);
    const c = creditCall(keys, uids[2], 0);
    const before = await snapshotRedis(t.redis, keys.prefix);
    await expect(t.redis.pmTransfer(...d.keys, ...c.keys, ...d.args, ...c.args)).rejects.toThrow(/BAD_ARGUMENT/);
    expect(await snapshotRedis(t.redis, keys.prefix)).toEqual(before);
  });
});

/** Each transfer as one call of lua/transfer-14.lua: the debit's keys and the credit's, then their arguments. */
function atOnceCalls(keys: Keys, uids: number[], list: Transfer[]): ScriptCall[] {
  return list.map((x, i) => {
    const from = uids[x.from % uids.length];
    const to = uids[x.to % uids.length];
    const d = debitCall(keys, from, to, x, i);
    const c = creditCall(keys, to, i, x.mult);
    return { keys: [...d.keys, ...c.keys], args: [...d.args, ...c.args] };
  });
}

describe('transfer-many: a batch is its transfers one at a time', () => {
  it('answers and writes what the same transfers alone answer and write, in order', async () => {
    await assertTwins(t.twins, scenarioArb, {
      setUp,
      build: (keys, uids, s) => atOnceCalls(keys, uids, s.transfers),
      one: (...a) => t.redis.pmTransfer(...a),
      many: (...a) => t.redis.pmTransferMany(...a),
      // debited, key reused, over the day, too few points, sender not in Redis, frozen, bad argument
      reach: ['1', '-2', '-30', '-4', '-1', '-40', 'BAD_ARGUMENT'],
    });
  });
});
