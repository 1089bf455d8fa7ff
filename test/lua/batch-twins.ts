/**
 * Twin runs for the batch scripts (lua/<name>-many-n.lua): the same calls, once each alone through
 * the script itself and once cut into batches, on two key prefixes of one Redis, so that their
 * answers and their whole state can be compared.
 */
import { expect } from 'vitest';
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
