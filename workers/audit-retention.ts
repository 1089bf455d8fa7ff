/**
 * Audit retention, a task of the sweeper role: once an hour deletes audit rows older than
 * AUDIT_RETENTION_DAYS, in bounded batches (src/audit/service.ts). Postgres only, so it runs
 * whatever the state of Redis's write gate.
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import type { AuditService } from '../src/audit/service.ts';
import type { Logger } from './logger.ts';
import { startScheduledTask } from './scheduled-task.ts';

export const AUDIT_RETENTION_EVERY_MS = 3_600_000;

export function startAuditRetention(o: { connection: RedisClient; keys: Keys; audit: AuditService; days: number; lockMs?: number; log: Logger }) {
  return startScheduledTask({
    name: 'audit-retention',
    everyMs: AUDIT_RETENTION_EVERY_MS,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: async () => {
      const deleted = await o.audit.purgeOlderThan(o.days);
      if (deleted > 0) o.log.info({ deleted, days: o.days }, 'deleted audit rows past retention');
      return { deleted };
    },
  });
}
