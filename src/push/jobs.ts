/**
 * Push queues, their job ids, payloads and options — shared by the API (producer) and the push
 * worker role. Two queues so a large broadcast's fan-out never sits in front of single sends:
 *   push       one job per push record: jobId push-<recordId> (admin retries: push-<id>-r<n>)
 *   broadcast  plan (one per broadcast: pages the segment) and batch (one per page of members)
 */
import type { JobsOptions } from 'bullmq';
import type { Env } from '../config/env.ts';

export const PUSH_QUEUE = 'push';
export const BROADCAST_QUEUE = 'broadcast';

export interface SendJob {
  recordId: number;
}

export const sendJobId = (recordId: number) => `push-${recordId}`;

export function sendJobOptions(env: Pick<Env, 'PUSH_ATTEMPTS' | 'PUSH_BACKOFF_MS'>): JobsOptions {
  return {
    attempts: env.PUSH_ATTEMPTS,
    backoff: { type: 'exponential', delay: env.PUSH_BACKOFF_MS },
    // the push record is the lasting history; failed jobs stay a week so an admin retry can
    // reuse them (job.retry) instead of adding a new one
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  };
}

export const BROADCAST_JOB_OPTIONS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000 },
  // kept a day: a plan that runs twice re-adds the same batch ids, which BullMQ ignores meanwhile
  removeOnComplete: { age: 86_400 },
  removeOnFail: { age: 7 * 86_400 },
};
