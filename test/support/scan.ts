/**
 * Every key matching a pattern, on a single Redis or on every master of a cluster (SCAN walks
 * one node): for tests that look at or clean up their prefix.
 */
import { readyMasters, type RedisClient } from '../../src/redis/client.ts';

export async function scanAll(redis: RedisClient, pattern: string): Promise<string[]> {
  const out: string[] = [];
  for (const node of await readyMasters(redis)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      out.push(...found);
    } while (cursor !== '0');
  }
  return out;
}

/** Sale-pulse counters (src/ops/sale-pulse.ts): statistics a timer flushes late, not state. */
export function isStatisticsKey(key: string): boolean {
  return /:\{g\d+\}:pulse:\d+$/.test(key);
}
