/**
 * Queue names and job options shared by the relay (producer), the workers and the health check.
 */
import type { JobsOptions } from 'bullmq';

export const PERSIST_QUEUE = 'persist';
/** Consumer group the relays read the outbox streams with. */
export const RELAY_GROUP = 'relay';

export function persistJobOptions(attempts: number, backoffMs: number): JobsOptions {
  return { ...PERSIST_JOB_OPTIONS, attempts, backoff: { type: 'exponential', delay: backoffMs } };
}

export const PERSIST_JOB_OPTIONS: JobsOptions = {
  attempts: 20,
  backoff: { type: 'exponential', delay: 500 },
  // Completed jobs are kept five minutes so a relay re-adding the same batch (a relay that died
  // between the add and the ack: its entries are re-read on restart or claimed after
  // RELAY_CLAIM_IDLE_MS) is ignored; after that Postgres's unique op_id is the duplicate guard. The
  // worker drops a completed job's ops (workers/persist.ts): kept whole, a 1,000-redemption job
  // held 551 KB of their JSON (MEMORY USAGE), ~0.7 GB for five minutes at 4,000 ops/s.
  removeOnComplete: { age: 300, count: 1_000 },
  // A batch that used up its attempts is parked, never removed: its ops exist nowhere else
  // (src/persistence/parked.ts).
  removeOnFail: false,
};

/** Operator-triggered jobs (rebuild), run by the reconcile role. */
export const ADMIN_JOBS_QUEUE = 'admin-jobs';

/**
 * The scheduled maintenance tasks (workers/scheduled-task.ts): each runs on its own queue,
 * `task-<name>`. Listed here so the queue dashboard shows them (test/console/queue-board.test.ts
 * checks the list against the workers).
 */
export const SCHEDULED_TASKS = [
  'expire-lots',
  'reconcile',
  'reminders',
  'sweep-reservations',
  'hot-goods',
  'orders-pump',
  'recommend',
  'audit-retention',
  'business-metrics',
  'analytics',
] as const;

export const taskQueueName = (task: string) => `task-${task}`;
