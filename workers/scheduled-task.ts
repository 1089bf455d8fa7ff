/**
 * A scheduled maintenance task: a BullMQ job scheduler (not an in-process timer) fires it every
 * `everyMs`; each task has its own queue so a process runs only the tasks it was started with.
 * A Redis lock (renewed every third of its lifetime while the run lasts) makes it one run at a
 * time per task however many worker processes are up — BullMQ alone would start the next run
 * elsewhere if one overran. A holder killed mid-run blocks the task for at most the lock lifetime.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import type { RedisClient } from '../src/redis/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { taskQueueName } from '../src/queues.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import type { Logger } from './logger.ts';

export interface ScheduledTaskOptions<R> {
  name: string;
  everyMs: number;
  connection: RedisClient;
  keys: Keys;
  log: Logger;
  run: () => Promise<R>;
  lockMs?: number;
}

export interface ScheduledTask {
  close(): Promise<void>;
}

export type RunOutcome<R> = { ran: true; result: R } | { ran: false };

/** Runs fn under the task's lock; returns { ran: false } when another holder has it. */
export async function withTaskLock<R>(redis: RedisClient, keys: Keys, task: string, lockMs: number, fn: () => Promise<R>): Promise<RunOutcome<R>> {
  const key = keys.taskLock(task);
  const token = randomBytes(12).toString('hex');
  if ((await redis.set(key, token, 'PX', lockMs, 'NX')) === null) return { ran: false };
  const renew = setInterval(() => void redis.pmLockExtend(key, token, lockMs).catch(() => {}), Math.floor(lockMs / 3));
  try {
    return { ran: true, result: await fn() };
  } finally {
    clearInterval(renew);
    await redis.pmLockRelease(key, token).catch(() => {});
  }
}

/**
 * A run that writes to Redis goes ahead only through an open write gate (checked afresh if it is
 * closed): a task must not write to a Redis not yet verified after a restart.
 */
export function gatedRun<R>(gate: RedisGate, run: () => Promise<R>): () => Promise<R | { skipped: string }> {
  return async () => {
    if (!gate.writable && (await gate.check()) !== 'verified') return { skipped: `Redis writes closed: ${gate.reason}` };
    return run();
  };
}

export async function startScheduledTask<R>(o: ScheduledTaskOptions<R>): Promise<ScheduledTask> {
  const queueName = taskQueueName(o.name);
  const prefix = o.keys.queuePrefix(queueName);
  const lockMs = o.lockMs ?? 10_000;
  const queue = new Queue(queueName, { connection: o.connection, prefix });
  queue.on('error', (err) => o.log.warn({ err, task: o.name }, 'scheduled task queue error'));
  await queue.upsertJobScheduler(o.name, { every: o.everyMs }, { name: o.name, opts: { removeOnComplete: 50, removeOnFail: 200 } });
  const worker = new Worker(
    queueName,
    async () => {
      const outcome = await withTaskLock(o.connection, o.keys, o.name, lockMs, o.run);
      if (!outcome.ran) o.log.debug({ task: o.name }, 'previous run still going; skipped');
      return outcome;
    },
    {
      connection: o.connection,
      prefix,
      concurrency: 1,
      // The next run is scheduled when a run starts; a worker killed at that moment leaves the
      // chain waiting for the stalled-job check, so that check runs on the task lock's scale.
      // A run is safe to repeat, so a stalled run is always redelivered.
      lockDuration: lockMs,
      stalledInterval: lockMs,
      maxStalledCount: Number.MAX_SAFE_INTEGER,
    },
  );
  worker.on('error', (err) => o.log.error({ err, task: o.name }, 'scheduled task error'));
  worker.on('failed', (_job, err) => o.log.warn({ err, task: o.name }, 'scheduled task run failed'));
  return {
    close: async () => {
      await worker.close();
      await queue.close();
    },
  };
}
