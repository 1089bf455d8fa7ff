/**
 * Reconcile role: on its schedule, first rolls Redis forward if it came back behind Postgres,
 * otherwise measures drift and repairs it (src/recovery/reconcile.ts). The last report is kept
 * in Redis (<prefix>:reconcile:last) for /metrics and operators.
 */
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { ADMIN_JOBS_QUEUE, PERSIST_QUEUE } from '../src/queues.ts';
import { rebuildWithApiUp } from '../src/recovery/admin-rebuild.ts';
import { withTaskLock } from './scheduled-task.ts';
import { Reconciler } from '../src/recovery/reconcile.ts';
import { rollForward } from '../src/recovery/roll-forward.ts';
import type { Logger } from './logger.ts';
import { startScheduledTask } from './scheduled-task.ts';

export async function startReconciler(o: {
  connection: Redis;
  keys: Keys;
  sql: Sql;
  everyMs: number;
  idempotencyTtlSeconds: number;
  lockMs?: number;
  /** How long API processes take to see the maintenance flag (their LAG_CHECK_MS, plus margin). */
  apiNoticeMs: number;
  log: Logger;
}) {
  const queue = new Queue(PERSIST_QUEUE, { connection: o.connection, prefix: o.keys.queuePrefix() });
  const reconciler = new Reconciler({
    sql: o.sql,
    redis: o.connection,
    keys: o.keys,
    queue,
    log: (msg, data) => o.log.warn(data, msg),
  });
  const task = await startScheduledTask({
    name: 'reconcile',
    everyMs: o.everyMs,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: async () => {
      const rolled = await rollForward({ sql: o.sql, redis: o.connection, keys: o.keys, queue }, {
        idempotencyTtlSeconds: o.idempotencyTtlSeconds,
      });
      if (rolled.lagging > 0) {
        o.log.warn(rolled, 'Redis was behind Postgres: rolled forward');
        return { rolledForward: rolled };
      }
      const report = await reconciler.run();
      const summary = {
        at: Date.now(),
        members: report.members,
        drifting: report.drifting.length,
        negative: report.negative.length,
        lotMismatch: report.lotMismatch.length,
        mirrorDrift: report.mirrorDrift.length,
        stockDrift: report.stockDrift.length,
        inflight: report.inflight,
        ms: report.ms,
      };
      await o.connection
        .multi()
        .set(o.keys.reconcileReport(), JSON.stringify(summary))
        .hincrby(o.keys.reconcileTotals(), 'runs', 1)
        .hincrby(o.keys.reconcileTotals(), 'drifting', summary.drifting)
        .hincrby(o.keys.reconcileTotals(), 'stockDrift', summary.stockDrift)
        .hincrby(o.keys.reconcileTotals(), 'negative', summary.negative)
        .exec();
      const level = summary.drifting + summary.negative + summary.stockDrift + summary.mirrorDrift > 0 ? 'warn' : 'info';
      o.log[level](summary, 'reconcile finished');
      return summary;
    },
  });
  // operator-requested rebuilds, under the reconcile lock so the two never overlap
  const adminJobs = new Worker(
    ADMIN_JOBS_QUEUE,
    async (job) => {
      if (job.name !== 'rebuild') return null;
      for (;;) {
        const outcome = await withTaskLock(o.connection, o.keys, 'reconcile', o.lockMs ?? 10_000, () =>
          rebuildWithApiUp({ sql: o.sql, redis: o.connection, keys: o.keys, queue }, {
            idempotencyTtlSeconds: o.idempotencyTtlSeconds,
            apiNoticeMs: o.apiNoticeMs,
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
    { connection: o.connection, prefix: o.keys.queuePrefix(), concurrency: 1, lockDuration: 120_000 },
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
