/**
 * A spend's view of the lots (lua/includes/lots.lua) against a reference model, for random sets of
 * lots: more than one page of them, expired ones (more than a page too), lots expiring at the very
 * instant of the spend, equal expiries. The script reads the earliest-expiring page once for both
 * the expired points and the first live lots, so the cases around that page's edges are the ones
 * that matter: every spend must see exactly the live lots' points and take them earliest expiry
 * first (ties by lot id), leaving expired lots alone.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, T0, charge, hydrateLots, luaEnv, nextId, parse, userState, type LotSpec, type LuaEnv } from './support.ts';

let env: LuaEnv;
beforeAll(() => {
  env = luaEnv();
});
afterAll(async () => env?.close());

/** Expiry offsets from "now": the spend instant itself, just around it, and a few shared values. */
const offsetArb = fc.oneof(
  fc.constantFrom(0, -1, 1, -DAY, DAY, 2 * DAY),
  fc.integer({ min: -3 * DAY, max: 3 * DAY }),
);
const lotsArb = fc
  .array(fc.record({ offset: offsetArb, remaining: fc.integer({ min: 1, max: 20 }) }), { minLength: 0, maxLength: 90 })
  .map((ls) => ls.map((l, i): LotSpec => ({ id: `l${String(i).padStart(3, '0')}`, remaining: l.remaining, expiresAt: T0 + l.offset })));
/** Many lots on one side of "now": whole pages of expired lots, or of live ones. */
const skewedArb = fc
  .tuple(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 0, max: 70 }), fc.integer({ min: 1, max: 9 }))
  .map(([expired, live, r]) => [
    ...Array.from({ length: expired }, (_, i): LotSpec => ({ id: `e${String(i).padStart(3, '0')}`, remaining: r, expiresAt: T0 - i })),
    ...Array.from({ length: live }, (_, i): LotSpec => ({ id: `v${String(i).padStart(3, '0')}`, remaining: r + 1, expiresAt: T0 + 1 + (i % 5) })),
  ]);

/** Live lots in spending order: expiry strictly after now, earliest first, ties by id (as a sorted set orders them). */
function liveInOrder(lots: LotSpec[]): LotSpec[] {
  return lots
    .filter((l) => l.expiresAt > T0)
    .sort((a, b) => a.expiresAt - b.expiresAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

async function spendMatchesModel(lots: LotSpec[], pick: number): Promise<void> {
  const uid = nextId();
  expect(await hydrateLots(env.redis, env.keys, uid, lots)).toBe(1);
  const live = liveInOrder(lots);
  const spendable = live.reduce((n, l) => n + l.remaining, 0);
  // an amount within the live points, or just above them
  const amount = Math.max(1, Math.round((pick / 1000) * (spendable + 5)));
  const reply = await charge(env.redis, env.keys, { uid, opId: `o${uid}`, amount, now: T0, token: 'tk' });
  const state = await userState(env.redis, env.keys, uid);
  if (amount > spendable) {
    expect(reply).toEqual([-4, spendable]);
    expect(Object.keys(state.lots)).toHaveLength(lots.length);
    return;
  }
  expect(reply[0]).toBe(1);
  const touched: Array<[string, number, number]> = [];
  const left = new Map(lots.map((l) => [l.id, l.remaining]));
  let need = amount;
  for (const l of live) {
    if (need === 0) break;
    const take = Math.min(l.remaining, need);
    touched.push([l.id, take, l.expiresAt]);
    need -= take;
    if (take === l.remaining) left.delete(l.id);
    else left.set(l.id, l.remaining - take);
  }
  const op = parse(reply[1]) as { lots: unknown[] | Record<string, never>; available: number };
  // cjson writes an empty list as {}
  expect(Array.isArray(op.lots) ? op.lots : []).toEqual(touched);
  expect(op.available).toBe(spendable - amount);
  expect(Object.fromEntries(Object.entries(state.lots).map(([id, [remaining]]) => [id, remaining]))).toEqual(Object.fromEntries(left));
}

describe('a spend and the lots', () => {
  it('sees exactly the live points and takes them earliest expiry first, for random lots', async () => {
    await fc.assert(
      fc.asyncProperty(lotsArb, fc.integer({ min: 0, max: 1000 }), spendMatchesModel),
      { numRuns: 150 },
    );
  });

  it('does the same with whole pages of expired or live lots', async () => {
    await fc.assert(
      fc.asyncProperty(skewedArb, fc.integer({ min: 0, max: 1000 }), spendMatchesModel),
      { numRuns: 100 },
    );
  });
});
