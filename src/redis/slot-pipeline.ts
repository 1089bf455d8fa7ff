/**
 * A pipeline whose commands may touch many hash slots. On a single Redis it is a plain pipeline.
 * On a cluster ioredis refuses a pipeline whose keys live on different masters, so the commands
 * are grouped by the hash tag of their key (the first argument; every key of the layout carries
 * its tag, src/redis/keys.ts), one pipeline per group runs, and the replies come back in the
 * order the commands were added, as from one pipeline. Not a transaction: use it only where a
 * plain pipeline was (bulk loads, counters, reads), never for a MULTI.
 */
import type { ChainableCommander } from 'ioredis';
import { isCluster, type RedisClient } from './client.ts';

type Reply = [error: Error | null, result: unknown];

/** The part of a key that picks its slot: the first non-empty {…}, else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

export function slotPipeline(redis: RedisClient): ChainableCommander {
  if (!isCluster(redis)) return redis.pipeline();
  const queued: Array<{ name: string; args: unknown[] }> = [];
  const exec = async (): Promise<Reply[]> => {
    const groups = new Map<string, number[]>();
    queued.forEach((c, i) => {
      const tag = hashTagOf(String(c.args[0]));
      const list = groups.get(tag);
      if (list) list.push(i);
      else groups.set(tag, [i]);
    });
    const replies: Reply[] = new Array(queued.length);
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        const p = redis.pipeline() as unknown as Record<string, (...a: unknown[]) => unknown>;
        for (const i of indexes) p[queued[i].name](...queued[i].args);
        const out = ((await (p as unknown as ChainableCommander).exec()) ?? []) as Reply[];
        indexes.forEach((i, j) => (replies[i] = out[j] ?? [new Error('no reply'), null]));
      }),
    );
    return replies;
  };
  const proxy: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_target, prop) {
      if (prop === 'exec') return exec;
      if (prop === 'length') return queued.length;
      if (prop === 'then') return undefined;
      return (...args: unknown[]) => {
        queued.push({ name: String(prop), args });
        return proxy;
      };
    },
  });
  return proxy;
}
