/**
 * Reconcile role: on its schedule, rolls Redis forward if it came back behind Postgres, otherwise
 * measures drift and repairs it (src/recovery/reconcile-task.ts); also runs operator-requested
 * rebuilds. The last report is kept in Redis (<prefix>:reconcile:last) for /metrics and operators.
 */
import { Queue, Worker } from 'bullmq';
import type { RedisClient } from '../src/redis/client.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { ADMIN_JOBS_QUEUE, PERSIST_QUEUE } from '../src/queues.ts';
import { rebuildWithApiUp } from '../src/recovery/admin-rebuild.ts';
import { reconcileOnce } from '../src/recovery/reconcile-task.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import type { Logger } from './logger.ts';
import { startScheduledTask, withTaskLock } from './scheduled-task.ts';

export async function startReconciler(o: {
  /** BullMQ's connection */
  connection: RedisClient;
  /** the process's gated script connection */
  writer: RedisClient;
  /** a connection outside the gate, for roll-forward and admin rebuilds */
  raw: RedisClient;
  gate: RedisGate;
  keys: Keys;
  sql: Sql;
  everyMs: number;
  idempotencyTtlSeconds: number;
  /** BUSINESS_TIMEZONE, for the boards a rebuild or roll-forward writes */
  timeZone?: string;
  lockMs?: number;
  /** How long API processes take to see the maintenance flag (their LAG_CHECK_MS, plus margin). */
  apiNoticeMs: number;
  log: Logger;
}) {
  const queue = new Queue(PERSIST_QUEUE, { connection: o.connection, prefix: o.keys.queuePrefix(PERSIST_QUEUE) });
  queue.on('error', (err) => o.log.warn({ err }, 'persist queue error'));
  const deps = { sql: o.sql, writer: o.writer, raw: o.raw, keys: o.keys, queue, gate: o.gate, log: o.log };
  const task = await startScheduledTask({
    name: 'reconcile',
    everyMs: o.everyMs,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: () => reconcileOnce(deps, { idempotencyTtlSeconds: o.idempotencyTtlSeconds, timeZone: o.timeZone }),
  });
  // operator-requested rebuilds, under the reconcile lock so the two never overlap
  const adminJobs = new Worker(
    ADMIN_JOBS_QUEUE,
    async (job) => {
      if (job.name !== 'rebuild') return null;
      for (;;) {
        const outcome = await withTaskLock(o.connection, o.keys, 'reconcile', o.lockMs ?? 10_000, () =>
          rebuildWithApiUp({ sql: o.sql, redis: o.raw, keys: o.keys, queue }, {
            idempotencyTtlSeconds: o.idempotencyTtlSeconds,
            apiNoticeMs: o.apiNoticeMs,
            timeZone: o.timeZone,
            flagTtlMs: o.lockMs ?? 10_000,
          }),
        );
        if (outcome.ran) {
          o.log.warn(outcome.result, 'admin rebuild finished');
          return outcome.result;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    { connection: o.connection, prefix: o.keys.queuePrefix(ADMIN_JOBS_QUEUE), concurrency: 1, lockDuration: 120_000 },
  );
  adminJobs.on('error', (err) => o.log.error({ err }, 'admin job worker error'));
  return {
    close: async () => {
      await adminJobs.close();
      await task.close();
      await queue.close();
    },
  };
}
