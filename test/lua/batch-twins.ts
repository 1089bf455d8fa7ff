/**
 * Twin runs for the batch scripts (lua/<name>-many-n.lua): the same calls, once each alone through
 * the script itself and once cut into batches, on two key prefixes of one Redis, so that their
 * answers and their whole state can be compared.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect } from 'vitest';
import { createKeys, type Keys } from '../../src/redis/keys.ts';
import { deleteKeys } from '../../src/redis/delete-prefix.ts';
import { snapshotRedis } from '../faults/support.ts';
import { DAY, T0, hydrateLots, luaEnv, type LotSpec, type LuaEnv, type Reply } from './support.ts';

/** One call of the script: its keys and arguments. */
export interface ScriptCall {
  keys: string[];
  args: Array<string | number>;
}

/** An answer as the API sees it: the reply, or the code word of the error the call raised. */
export type Answer = Reply | string;

const errorCode = (message: string) => message.split(' ')[0];

/** Each call through the script alone, in order. */
export async function runAlone(calls: ScriptCall[], one: (...args: Array<string | number>) => Promise<Reply>): Promise<Answer[]> {
  const out: Answer[] = [];
  for (const c of calls) out.push(await one(...c.keys, ...c.args).catch((err: Error) => errorCode(err.message)));
  return out;
}

/** The same calls in batches, cut before each index in `cuts` (those inside the list). */
export async function runBatched(
  calls: ScriptCall[],
  cuts: number[],
  many: (...args: Array<string | number>) => Promise<Reply[]>,
): Promise<Answer[]> {
  const bounds = [...new Set([0, ...cuts.filter((c) => c > 0 && c < calls.length), calls.length])].sort((a, b) => a - b);
  const out: Answer[] = [];
  for (let b = 0; b + 1 < bounds.length; b++) {
    const batch = calls.slice(bounds[b], bounds[b + 1]);
    const keys = batch.flatMap((c) => c.keys);
    const replies = await many(keys.length, ...keys, batch.length, ...batch.flatMap((c) => c.args));
    expect(replies).toHaveLength(batch.length);
    for (const reply of replies) out.push(Number(reply[0]) === 0 ? errorCode(String(reply[1])) : reply);
  }
  return out;
}

/** The outcome of each answer: the reply's code, or the error's code word. */
export const outcomeOf = (a: Answer): string => (typeof a === 'string' ? a : String(a[0]));

export interface Twins {
  redis: Redis;
  /** Key prefixes made so far, for the file's cleanup. */
  prefixes: string[];
  base: string;
}

/**
 * One twin run: `setUp` on two fresh key prefixes, the calls `build` makes for each, alone on one
 * and in batches cut at `cuts` on the other; their answers and their whole state (every key under
 * the prefix) must be equal. Returns the outcomes of the answers.
 */
export async function compareTwins<U>(
  t: Twins,
  setUp: (keys: Keys) => Promise<U>,
  build: (keys: Keys, setUpResult: U) => ScriptCall[],
  cuts: number[],
  one: (...args: Array<string | number>) => Promise<Reply>,
  many: (...args: Array<string | number>) => Promise<Reply[]>,
): Promise<string[]> {
  const n = t.prefixes.length;
  const single = createKeys({ prefix: `${t.base}s${n}`, partitions: 4 });
  const batch = createKeys({ prefix: `${t.base}b${n}`, partitions: 4 });
  t.prefixes.push(single.prefix, batch.prefix);
  const expected = await runAlone(build(single, await setUp(single)), one);
  const got = await runBatched(build(batch, await setUp(batch)), cuts, many);
  expect(got).toEqual(expected);
  expect(await snapshotRedis(t.redis, batch.prefix)).toEqual(await snapshotRedis(t.redis, single.prefix));
  return expected.map(outcomeOf);
}

/**
 * The file's Redis and its twin prefixes, made before its tests and deleted after them; fresh
 * keys for the tests that run one batch by hand.
 */
export function useTwins() {
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
  return {
    get redis(): Redis {
      return env.redis;
    },
    get twins(): Twins {
      return twins;
    },
    /** Keys under a fresh prefix, deleted with the file's. */
    freshKeys(): Keys {
      const keys = createKeys({ prefix: `${env.prefix}x${twins.prefixes.length}`, partitions: 4 });
      twins.prefixes.push(keys.prefix);
      return keys;
    },
  };
}

/** true now and then (one in eight). */
export const rare = fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))).chain((b) => (b ? fc.boolean() : fc.constant(false)));

/** A member as the twin runs set one up: in Redis or not, frozen or not, lots live and expired. */
export const memberFields = {
  hydrated: fc.nat(9).map((n) => n < 8),
  frozen: rare,
  lots: fc.array(fc.record({ remaining: fc.integer({ min: 1, max: 150 }), offset: fc.constantFrom(-DAY, 1, 3 * DAY) }), { maxLength: 3 }),
};

export interface MemberSpec {
  hydrated?: boolean;
  frozen?: boolean;
  lots: Array<{ remaining: number; offset: number }>;
}

/**
 * Members 100, 101, … under `keys`: hydrated with their lots (expiring at T0 + offset) unless
 * `hydrated` is false, frozen when asked, then `more` for what a script needs besides.
 */
export async function setUpMembers<M extends MemberSpec>(
  redis: Redis,
  keys: Keys,
  members: M[],
  more?: (uid: number, member: M) => Promise<unknown>,
): Promise<number[]> {
  const uids: number[] = [];
  for (const [m, spec] of members.entries()) {
    const uid = 100 + m;
    if (spec.hydrated !== false) {
      const lots = spec.lots.map((l, j): LotSpec => ({ id: `l${m}.${j}`, remaining: l.remaining, expiresAt: T0 + l.offset }));
      await hydrateLots(redis, keys, uid, lots);
      if (spec.frozen) await redis.hset(keys.account(uid), 'rs', 'f');
      if (more) await more(uid, spec);
    }
    uids.push(uid);
  }
  return uids;
}

/**
 * compareTwins over `runs` scenarios of `arb`; between them the runs must have reached every
 * outcome of `reach` (a reply code or an error's code word).
 */
export async function assertTwins<S extends { cuts: number[] }, U>(
  t: Twins,
  arb: fc.Arbitrary<S>,
  o: {
    setUp: (keys: Keys, s: S) => Promise<U>;
    build: (keys: Keys, setUpResult: U, s: S) => ScriptCall[];
    one: (...args: Array<string | number>) => Promise<Reply>;
    many: (...args: Array<string | number>) => Promise<Reply[]>;
    reach: string[];
    runs?: number;
  },
): Promise<void> {
  const seen = new Set<string>();
  await fc.assert(
    fc.asyncProperty(arb, async (s) => {
      const outcomes = await compareTwins(t, (keys) => o.setUp(keys, s), (keys, u) => o.build(keys, u, s), s.cuts, o.one, o.many);
      for (const outcome of outcomes) seen.add(outcome);
    }),
    { numRuns: o.runs ?? 150 },
  );
  for (const outcome of o.reach) expect(seen, outcome).toContain(outcome);
}
