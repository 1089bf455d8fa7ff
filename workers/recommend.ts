/**
 * Recommend role: keeps the recommendation model in Redis (src/recommendations/model.ts). A job
 * scheduler ticks every `checkMs` (at most every 10 s); a tick rebuilds the model from Postgres
 * when none exists, when the last build is RECOMMEND_EVERY_MS old, or when RECOMMEND_AFTER_REDEMPTIONS
 * catalog redemptions were persisted since it began (the persist worker counts them in Redis, so a
 * tick that finds nothing to do reads two Redis keys and no Postgres). One build at a time across
 * processes (the scheduled task's lock); writes only through the open write gate.
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import { buildModel, builtAt, freshRedemptions, type BuildReport } from '../src/recommendations/model.ts';
import type { Logger } from './logger.ts';
import { gatedRun, startScheduledTask } from './scheduled-task.ts';

export const MAX_CHECK_MS = 10_000;

export type RebuildCause = 'none' | 'schedule' | 'redemptions';

/** Why the model should be rebuilt now, if at all. */
export async function rebuildCause(redis: RedisClient, keys: Keys, everyMs: number, afterRedemptions: number, now = Date.now()): Promise<RebuildCause> {
  const at = await builtAt(redis, keys);
  if (at === null || now - at >= everyMs) return 'schedule';
  if ((await freshRedemptions(redis, keys)) >= afterRedemptions) return 'redemptions';
  return 'none';
}

/** One tick: rebuilds when rebuildCause says so. */
export async function recommendTick(o: {
  writer: RedisClient;
  keys: Keys;
  sql: Sql;
  everyMs: number;
  afterRedemptions: number;
  log: Logger;
}): Promise<{ cause: RebuildCause; report?: BuildReport }> {
  const cause = await rebuildCause(o.writer, o.keys, o.everyMs, o.afterRedemptions);
  if (cause === 'none') return { cause };
  const report = await buildModel(o.sql, o.writer, o.keys);
  o.log.info({ cause, ...report }, 'recommendation model built');
  return { cause, report };
}

export async function startRecommend(o: {
  connection: RedisClient;
  writer: RedisClient;
  gate: RedisGate;
  keys: Keys;
  sql: Sql;
  everyMs: number;
  afterRedemptions: number;
  lockMs: number;
  log: Logger;
  /** how often a tick looks (default: RECOMMEND_EVERY_MS, at most MAX_CHECK_MS) */
  checkMs?: number;
}) {
  return startScheduledTask({
    name: 'recommend',
    everyMs: o.checkMs ?? Math.min(o.everyMs, MAX_CHECK_MS),
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: gatedRun(o.gate, () => recommendTick(o)),
  });
}
