/**
 * Twin runs for the batch scripts (lua/<name>-many-n.lua): the same calls, once each alone through
 * the script itself and once cut into batches, on two key prefixes of one Redis, so that their
 * answers and their whole state can be compared.
 */
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { createKeys, type Keys } from '../../src/redis/keys.ts';
import { snapshotRedis } from '../faults/support.ts';
import type { Reply } from './support.ts';

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
