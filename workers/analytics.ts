/**
 * Analytics role: on its schedule (ANALYTICS_EVERY_MS) brings the daily rollups up to date
 * (src/analytics/rollup.ts): days not yet rolled up, and the last ANALYTICS_RECOMPUTE_DAYS again.
 * Reads and writes Postgres only, so it needs no Redis write gate.
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { runRollup } from '../src/analytics/rollup.ts';
import type { Logger } from './logger.ts';
import { startScheduledTask } from './scheduled-task.ts';

export async function startAnalytics(o: {
  connection: RedisClient;
  keys: Keys;
  sql: Sql;
  everyMs: number;
  recomputeDays: number;
  timeZone: string;
  lockMs: number;
  log: Logger;
}) {
  return startScheduledTask({
    name: 'analytics',
    everyMs: o.everyMs,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: async () => {
      const started = Date.now();
      const report = await runRollup(o.sql, { timeZone: o.timeZone, recomputeDays: o.recomputeDays });
      o.log.info({ ...report, ms: Date.now() - started }, 'analytics rolled up');
      return report;
    },
  });
}
