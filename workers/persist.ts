/**
 * Persist worker: each job is one batch of ops, written to Postgres in one transaction.
 * BullMQ may deliver a job twice (lock lapse, crash); persistBatch is idempotent on op_id, so a
 * stalled job is always redelivered (never failed for stalling).
 */
import { Worker } from 'bullmq';
import type { RedisClient } from '../src/redis/client.ts';
import type { Sql } from '../src/db/client.ts';
import type { Op } from '../src/points/op.ts';
import { PERSIST_QUEUE } from '../src/queues.ts';
import { persistBatch } from '../src/persistence/persist-batch.ts';
import { countPersisted } from '../src/metrics/points.ts';
import type { Logger } from './logger.ts';

/** A persist job: a relay pass's ops; once completed only how many there were (`persisted`). */
export interface PersistJobData {
  ops: Op[];
  marks?: Record<number, string>;
  runId?: string;
  persisted?: number;
}

export function startPersistWorker(o: {
  connection: RedisClient;
  prefix: string;
  sql: Sql;
  concurrency: number;
  log: Logger;
  /** Job lock lifetime (and stalled-check interval): how soon a dead worker's batches are redelivered. */
  lockMs?: number;
  /**
   * After a batch is committed: follow-ups keyed so that repeating them is harmless (pushes by
   * dedupe key). Runs for the whole batch, duplicates included, so a worker that died between the
   * commit and the follow-up has it done by the redelivery. A failure retries the job.
   */
  afterCommit?: (ops: Op[]) => Promise<unknown>;
}) {
  const lockMs = o.lockMs ?? 30_000;
  const worker = new Worker<PersistJobData>(
    PERSIST_QUEUE,
    async (job) => {
      const { conflictList, applied, ...result } = await persistBatch(o.sql, job.data.ops, job.data.marks, job.data.runId);
      countPersisted(applied, Date.now());
      if (conflictList) {
        o.log.error({ jobId: job.id, conflicts: conflictList }, 'ALARM: op ids already persisted with other content (op_conflicts)');
      }
      if (result.duplicates > 0) o.log.info({ jobId: job.id, ...result }, 'batch had ops already persisted');
      if (o.afterCommit) await o.afterCommit(job.data.ops);
      return result;
    },
    {
      connection: o.connection,
      prefix: o.prefix,
      concurrency: o.concurrency,
      autorun: true,
      lockDuration: lockMs,
      stalledInterval: lockMs,
      // A batch whose worker died is redelivered, however often that happens: BullMQ's default
      // (1) fails a job on its second stall, ignoring `attempts`, and its ops — already deleted
      // from the outbox — would never reach Postgres. Re-running a batch is harmless (op_id).
      maxStalledCount: Number.MAX_SAFE_INTEGER,
    },
  );
  worker.on('failed', (job, err) => {
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
      // never dropped: kept in the failed set until retried (src/persistence/parked.ts)
      o.log.error({ jobId: job.id, ops: job.data.ops.length, attempts: job.attemptsMade, err }, 'ALARM: persist batch parked after its last attempt');
    } else {
      o.log.warn({ jobId: job?.id, attempts: job?.attemptsMade, err }, 'persist job failed');
    }
  });
  worker.on('error', (err) => o.log.error({ err }, 'persist worker error'));
  // A completed job is kept (PERSIST_JOB_OPTIONS.removeOnComplete) only for its id, which makes a
  // relay re-adding the same batch a no-op. Its ops' JSON, nearly all of its memory, is in Postgres
  // by then: it is replaced by their count. A job the worker dies before stripping keeps its ops
  // until it is removed, as before.
  worker.on('completed', (job) => {
    job.updateData({ ops: [], persisted: job.data.ops.length }).catch(() => {});
  });
  return worker;
}
