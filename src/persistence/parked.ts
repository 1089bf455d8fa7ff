/**
 * Parked persist batches: jobs that used up their attempts (PERSIST_JOB_OPTIONS). A batch is never
 * dropped — its ops were acknowledged and the outbox entries are gone — so it stays in BullMQ's
 * failed set until an operator retries it (POST /v1/admin/persist/parked/retry, or
 * `npm run persist:retry-parked`). Counted on /metrics (pm_persist_parked_batches) and logged when
 * it parks; reconcile leaves the members it holds alone (src/recovery/reconcile.ts).
 */
import type { Job, Queue } from 'bullmq';
import type { Op } from '../points/op.ts';

export interface ParkedBatch {
  jobId: string;
  ops: number;
  members: number;
  attemptsMade: number;
  failedReason: string;
  firstOpAt: string | null;
  parkedAt: string | null;
}

type PersistJob = Job<{ ops: Op[] }>;

function describe(job: PersistJob): ParkedBatch {
  const ops = job.data.ops ?? [];
  return {
    jobId: String(job.id),
    ops: ops.length,
    members: new Set(ops.map((o) => o.userId)).size,
    attemptsMade: job.attemptsMade,
    failedReason: job.failedReason ?? '',
    firstOpAt: ops.length > 0 ? new Date(Math.min(...ops.map((o) => o.at))).toISOString() : null,
    parkedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
  };
}

export async function countParked(queue: Queue): Promise<number> {
  return queue.getFailedCount();
}

export async function listParked(queue: Queue, limit = 100): Promise<ParkedBatch[]> {
  const jobs = (await queue.getFailed(0, limit - 1)) as PersistJob[];
  return jobs.filter(Boolean).map(describe);
}

/**
 * Gives parked batches a fresh set of attempts (job.retry(): re-adding an id BullMQ still holds
 * would be ignored). `jobIds` limits it to those; unknown or no-longer-parked ids are skipped.
 */
export async function retryParked(queue: Queue, jobIds?: string[]): Promise<{ retried: string[]; skipped: string[] }> {
  const jobs = jobIds
    ? await Promise.all(jobIds.map((id) => queue.getJob(id)))
    : ((await queue.getFailed(0, -1)) as Array<Job | undefined>);
  const retried: string[] = [];
  const skipped: string[] = [];
  for (const [i, job] of jobs.entries()) {
    const id = job ? String(job.id) : String(jobIds?.[i]);
    if (!job || !(await job.isFailed())) {
      skipped.push(id);
      continue;
    }
    await job.retry('failed', { resetAttemptsMade: true });
    retried.push(id);
  }
  return { retried, skipped };
}
