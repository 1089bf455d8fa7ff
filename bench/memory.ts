/**
 * Redis memory per accepted write: `used_memory` before and after the scenarios (the workers
 * drained), divided by the writes accepted through Redis; and what the leaderboard dedupe sets
 * hold at the end, which must stay near zero however many earns ran (docs/architecture.md).
 * The total includes state that is bounded by time rather than count: op records (kept
 * IDEMPOTENCY_TTL_SECONDS for replays) and completed persist jobs (PERSIST_JOB_OPTIONS, src/queues.ts).
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import type { ScenarioResult } from './scenarios.ts';

export interface MemoryReport {
  usedBeforeBytes: number;
  usedAfterBytes: number;
  acceptedWrites: number;
  bytesPer1000Writes: number;
  boardDedupe: { keys: number; entries: number; bytes: number };
}

const WRITES = new Set(['flash', 'redeem', 'earn', 'draw', 'transfer']);

export async function usedMemory(redis: RedisClient): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

export async function memoryReport(redis: RedisClient, keys: Keys, usedBefore: number, scenarios: ScenarioResult[]): Promise<MemoryReport> {
  const usedAfter = await usedMemory(redis);
  const acceptedWrites = scenarios
    .filter((s) => WRITES.has(s.name))
    .reduce((n, s) => n + s.stats.accepted + s.warmup.accepted, 0);
  const sets = Array.from({ length: keys.partitions }, (_, p) => keys.boardApplied(p));
  const [entries, bytes] = await Promise.all([
    Promise.all(sets.map((k) => redis.zcard(k))),
    Promise.all(sets.map((k) => redis.memory('USAGE', k))),
  ]);
  return {
    usedBeforeBytes: usedBefore,
    usedAfterBytes: usedAfter,
    acceptedWrites,
    bytesPer1000Writes: acceptedWrites > 0 ? Math.round(((usedAfter - usedBefore) / acceptedWrites) * 1000) : 0,
    boardDedupe: {
      keys: entries.filter((n) => n > 0).length,
      entries: entries.reduce((a, b) => a + b, 0),
      bytes: bytes.reduce<number>((a, b) => a + Number(b ?? 0), 0),
    },
  };
}
