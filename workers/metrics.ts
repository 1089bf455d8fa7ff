/**
 * The metrics role: computes the business snapshot (src/metrics/business.ts) on a schedule and
 * keeps it in Redis, where the API's /metrics and /health/business read it. One run at a time
 * across processes; it only reads Postgres and writes one key, so it needs no write gate.
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { computeBusiness, storeBusiness } from '../src/metrics/business.ts';
import type { Logger } from './logger.ts';
import { startScheduledTask } from './scheduled-task.ts';

export async function startBusinessMetrics(o: { connection: RedisClient; keys: Keys; sql: Sql; everyMs: number; lockMs?: number; log: Logger }) {
  return startScheduledTask({
    name: 'business-metrics',
    everyMs: o.everyMs,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: async () => {
      const snapshot = await computeBusiness(o.sql);
      await storeBusiness(o.connection, o.keys, snapshot);
      return snapshot;
    },
  });
}
