/**
 * The hold scripts (hold: freeze; hold-settle: capture / release) and refund, called directly
 * against the real Redis under a fake clock, plus a property: under random sequences of earns,
 * freezes, captures, releases and refunds, avail always equals the live lots, avail + frozen always
 * equals the sum of the ops' deltas (what the ledger records), and frozen equals the open holds.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DAY,
  OP_TTL_S,
  T0,
  earn,
  hydrateLots,
  luaEnv,
  nextId,
  parse,
  snapshot,
  userState,
  type LotSpec,
  type LuaEnv,
  type Reply,
} from './support.ts';

let env: LuaEnv;
beforeAll(() => {
  env = luaEnv();
});
afterAll(async () => env?.close());

const GRACE = 30 * DAY;

async function member(lots: LotSpec[] = []): Promise<number> {
  const uid = nextId();
  expect(await hydrateLots(env.redis, env.keys, uid, lots)).toBe(1);
  return uid;
}

function freeze(uid: number, holdId: string, amount: number, now: number, o: { hash?: string; expiresAt?: number } = {}): Promise<Reply> {
  const k = env.keys;
  return env.redis.pmHold(
    k.account(uid), k.lotsByExpiry(uid), k.lotRemaining(uid), k.hold(uid, holdId), k.outboxOf(uid),
    `fz-${nextId()}`, uid, amount, holdId, 'hold', 'why', now, o.expiresAt ?? 0, '{}', o.hash ?? `h-${holdId}`,
  );
}

function settle(uid: number, holdId: string, mode: 'capture' | 'release', capture: number, now: number): Promise<Reply> {
  const k = env.keys;
  return env.redis.pmHoldSettle(
    k.account(uid), k.lotsByExpiry(uid), k.lotRemaining(uid), k.hold(uid, holdId), k.outboxOf(uid), k.expiryIndexOf(uid),
    mode, `st-${nextId()}`, uid, capture, now, GRACE, '{}', OP_TTL_S,
  );
}

function refund(uid: number, key: string, portions: Array<[string, number, number]>, now: number): Promise<Reply> {
  const k = env.keys;
  return env.redis.pmRefund(
    k.account(uid), k.lotsByExpiry(uid), k.lotRemaining(uid), k.idem(uid, key), k.outboxOf(uid), k.expiryIndexOf(uid),
    `rf-${nextId()}`, uid, JSON.stringify(portions), now, GRACE, JSON.stringify({ bizId: 'spend-op' }), `h-${key}`, OP_TTL_S, key,
  );
}

async function lastOp(uid: number): Promise<Record<string, unknown>> {
  const [[, fields]] = await env.redis.xrevrange(env.keys.outboxOf(uid), '+', '-', 'COUNT', 1);
  return parse(fields[1]);
}

describe('hold (freeze)', () => {
  it('moves points from avail to frozen, out of the earliest lots, and records a delta-0 freeze op', async () => {
    const uid = await member([
      { id: 'a', remaining: 30, expiresAt: T0 + DAY },
      { id: 'b', remaining: 50, expiresAt: T0 + 2 * DAY },
    ]);
    const r = await freeze(uid, 'H1', 40, T0);
    expect(r[0]).toBe(1);
    const hold = parse(r[1]);
    expect(hold).toMatchObject({ state: 'frozen', amount: 40, lots: [['a', 30, T0 + DAY], ['b', 10, T0 + 2 * DAY]] });
    const s = await userState(env.redis, env.keys, uid);
    expect(s.acct).toMatchObject({ avail: '40', frozen: '40' });
    expect(s.lots).toEqual({ b: [40, T0 + 2 * DAY] });
    expect(await lastOp(uid)).toMatchObject({ kind: 'freeze', delta: 0, amount: 40, frozen: 40, holdId: 'H1' });
  });

  it('refuses more than the spendable points and writes nothing', async () => {
    const uid = await member([{ id: 'a', remaining: 30, expiresAt: T0 + DAY }]);
    const before = await snapshot(env.redis, env.prefix);
    expect((await freeze(uid, 'H1', 31, T0))[0]).toBe(-4);
    // an expired, unswept lot is not spendable either
    expect((await freeze(uid, 'H1', 1, T0 + 2 * DAY))[0]).toBe(-4);
    expect(await snapshot(env.redis, env.prefix)).toEqual(before);
  });

  it('replays the same hold id with the same request; another request under it is refused', async () => {
    const uid = await member([{ id: 'a', remaining: 100, expiresAt: T0 + DAY }]);
    await freeze(uid, 'H1', 10, T0);
    const again = await freeze(uid, 'H1', 10, T0);
    expect([again[0], again[2]]).toEqual([1, 1]);
    expect((await freeze(uid, 'H1', 10, T0, { hash: 'other' }))[0]).toBe(-2);
    expect((await userState(env.redis, env.keys, uid)).acct).toMatchObject({ avail: '90', frozen: '10' });
  });
});

describe('hold-settle', () => {
  it('a partial capture spends the earliest portions and gives the rest back to its lots', async () => {
    const uid = await member([
      { id: 'a', remaining: 30, expiresAt: T0 + DAY },
      { id: 'b', remaining: 50, expiresAt: T0 + 2 * DAY },
    ]);
    await freeze(uid, 'H1', 60, T0);
    const r = await settle(uid, 'H1', 'capture', 45, T0 + 1000);
    expect(r[0]).toBe(1);
    expect(parse(r[1])).toMatchObject({ state: 'captured', captured: 45 });
    const s = await userState(env.redis, env.keys, uid);
    expect(s.acct).toMatchObject({ avail: '35', frozen: '0' });
    expect(s.lots).toEqual({ b: [35, T0 + 2 * DAY] });
    expect(await lastOp(uid)).toMatchObject({ kind: 'spend', delta: -45, lots: [['a', 30, T0 + DAY], ['b', 15, T0 + 2 * DAY]], restored: [['b', 15, T0 + 2 * DAY]] });
    // capture again replays; release after capture is refused
    const again = await settle(uid, 'H1', 'capture', 45, T0 + 2000);
    expect([again[0], again[2]]).toEqual([1, 1]);
    expect((await settle(uid, 'H1', 'release', 0, T0 + 2000))[0]).toBe(-8);
  });

  it('a release gives portions back to their lots, and a portion whose lot expired meanwhile to a new lot with the grace period', async () => {
    const uid = await member([
      { id: 'a', remaining: 30, expiresAt: T0 + DAY },
      { id: 'b', remaining: 50, expiresAt: T0 + 5 * DAY },
    ]);
    await freeze(uid, 'H1', 60, T0);
    const at = T0 + 2 * DAY;
    const r = await settle(uid, 'H1', 'release', 0, at);
    expect(r[0]).toBe(1);
    const op = await lastOp(uid);
    expect(op).toMatchObject({ kind: 'unfreeze', delta: 0 });
    const newLot = `${op.opId}:1`;
    expect(op.restored).toEqual([[newLot, 30, at + GRACE, 'a'], ['b', 30, T0 + 5 * DAY]]);
    const s = await userState(env.redis, env.keys, uid);
    expect(s.acct).toMatchObject({ avail: '80', frozen: '0' });
    expect(s.lots).toEqual({ b: [50, T0 + 5 * DAY], [newLot]: [30, at + GRACE] });
    expect((await settle(uid, 'H1', 'capture', 10, at))[0]).toBe(-8);
  });

  it('refuses to capture a hold past its expiry, and a capture beyond the hold', async () => {
    const uid = await member([{ id: 'a', remaining: 100, expiresAt: T0 + 10 * DAY }]);
    await freeze(uid, 'H1', 50, T0, { expiresAt: T0 + 60_000 });
    await expect(settle(uid, 'H1', 'capture', 51, T0 + 1000)).rejects.toThrow(/BAD_ARGUMENT/);
    expect((await settle(uid, 'H1', 'capture', 50, T0 + 60_000))[0]).toBe(-9);
    expect((await settle(uid, 'H1', 'release', 0, T0 + 60_000))[0]).toBe(1);
  });

  it('answers no such hold for an unknown id or a fenced tombstone', async () => {
    const uid = await member([{ id: 'a', remaining: 100, expiresAt: T0 + 10 * DAY }]);
    expect((await settle(uid, 'nope', 'release', 0, T0))[0]).toBe(-7);
    await env.redis.set(env.keys.hold(uid, 'F'), JSON.stringify({ id: 'F', state: 'aborted', h: 'fenced' }));
    expect((await freeze(uid, 'F', 10, T0))[0]).toBe(-2);
    expect((await settle(uid, 'F', 'release', 0, T0))[0]).toBe(-7);
  });
});

describe('refund', () => {
  it('gives spent portions back once: live lots keep their expiry, expired ones come back with the grace period', async () => {
    const uid = await member([{ id: 'b', remaining: 10, expiresAt: T0 + 5 * DAY }]);
    const at = T0 + 2 * DAY;
    const r = await refund(uid, 'rf-1', [['a', 20, T0 + DAY], ['b', 5, T0 + 5 * DAY]], at);
    expect([r[0], r[2]]).toEqual([1, 0]);
    const op = parse(r[1]);
    expect(op).toMatchObject({ kind: 'refund', bizType: 'refund', bizId: 'spend-op', delta: 25, lt: 0 });
    const s = await userState(env.redis, env.keys, uid);
    expect(s.acct).toMatchObject({ avail: '35' });
    expect(s.lots).toEqual({ b: [15, T0 + 5 * DAY], [`${op.opId}:1`]: [20, at + GRACE] });
    const again = await refund(uid, 'rf-1', [['a', 20, T0 + DAY], ['b', 5, T0 + 5 * DAY]], at);
    expect([again[0], again[2]]).toEqual([1, 1]);
    expect((await userState(env.redis, env.keys, uid)).acct).toMatchObject({ avail: '35' });
  });

  it('refuses malformed portions', async () => {
    const uid = await member();
    await expect(refund(uid, 'x', [], T0)).rejects.toThrow(/BAD_ARGUMENT/);
  });
});

describe('property: holds keep the books', () => {
  type Cmd =
    | { k: 'earn'; points: number; lifeDays: number }
    | { k: 'freeze'; amount: number }
    | { k: 'capture'; h: number; part: number }
    | { k: 'release'; h: number }
    | { k: 'refundLast' }
    | { k: 'tick'; days: number };
  const cmd = fc.oneof(
    fc.record({ k: fc.constant('earn' as const), points: fc.integer({ min: 1, max: 80 }), lifeDays: fc.integer({ min: 1, max: 6 }) }),
    fc.record({ k: fc.constant('freeze' as const), amount: fc.integer({ min: 1, max: 120 }) }),
    fc.record({ k: fc.constant('capture' as const), h: fc.nat(), part: fc.integer({ min: 1, max: 100 }) }),
    fc.record({ k: fc.constant('release' as const), h: fc.nat() }),
    fc.record({ k: fc.constant('refundLast' as const) }),
    fc.record({ k: fc.constant('tick' as const), days: fc.integer({ min: 0, max: 3 }) }),
  );

  it('avail = live lots, avail + frozen = Σ op deltas, frozen = Σ open holds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 25 }), async (cmds) => {
        const uid = await member();
        let now = T0;
        let deltas = 0;
        const open = new Map<string, number>();
        const holds: string[] = [];
        let lastSpend: Array<[string, number, number]> | null = null;
        for (const c of cmds) {
          if (c.k === 'tick') now += c.days * DAY;
          else if (c.k === 'earn') {
            const r = await earn(env.redis, env.keys, { uid, opId: `e${nextId()}`, points: c.points, lifetimeMs: c.lifeDays * DAY, now });
            deltas += Number(parse(r[1]).delta);
          } else if (c.k === 'freeze') {
            const id = `H${nextId()}`;
            const r = await freeze(uid, id, c.amount, now);
            if (r[0] === 1) {
              open.set(id, c.amount);
              holds.push(id);
            }
          } else if ((c.k === 'capture' || c.k === 'release') && holds.length > 0) {
            const id = holds[c.h % holds.length];
            const amount = open.get(id);
            const capture = c.k === 'capture' ? Math.min(amount ?? c.part, c.part) : 0;
            const r = await settle(uid, id, c.k, capture, now);
            if (r[0] === 1 && r[2] === 0) {
              open.delete(id);
              const op = await lastOp(uid);
              deltas += Number(op.delta);
              if (c.k === 'capture') lastSpend = op.lots as Array<[string, number, number]>;
            }
          } else if (c.k === 'refundLast' && lastSpend) {
            const r = await refund(uid, `rk${nextId()}`, lastSpend, now);
            deltas += Number(parse(r[1]).delta);
            lastSpend = null;
          }
          // the expire job is not run: expired lots stay in avail and in the lots alike
          const s = await userState(env.redis, env.keys, uid);
          const avail = Number(s.acct.avail);
          const frozen = Number(s.acct.frozen ?? 0);
          const lots = Object.values(s.lots).reduce((n, [rem]) => n + (rem ?? 0), 0);
          expect(avail).toBe(lots);
          expect(avail + frozen).toBe(deltas);
          expect(frozen).toBe([...open.values()].reduce((n, v) => n + v, 0));
          expect(avail).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 40 },
    );
  });
});
