/**
 * Ops on their way to Postgres: still in an outbox stream, or inside a persist job that has not
 * completed. Read outbox first, then the queue: ops only move outbox → queue → ledger, so nothing
 * acknowledged slips between the two reads unseen.
 *
 * A persist job that used up its attempts is **parked** (BullMQ's failed state, kept until an
 * operator retries it: src/persistence/parked.ts). Its ops were acknowledged and are still owed to
 * Postgres, so they count as in flight; they are reported apart so that reconcile leaves their
 * members alone and drains do not wait for them.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Queue } from 'bullmq';
import type { Keys } from '../redis/keys.ts';
import { parseOp, type Op } from '../points/op.ts';

export interface Inflight {
  /** every acknowledged op not yet persisted, parked ones included */
  ops: Map<string, Op>;
  /** the ops inside parked persist batches */
  parked: Map<string, Op>;
  /** the parked batches' job ids */
  parkedJobs: string[];
}

export async function inflightOps(redis: RedisClient, keys: Keys, queue: Queue): Promise<Inflight> {
  const ops = new Map<string, Op>();
  for (let p = 0; p < keys.partitions; p++) {
    let start = '-';
    for (;;) {
      const page = await redis.xrange(keys.outbox(p), start, '+', 'COUNT', 1000);
      for (const [, fields] of page) {
        const op = parseOp(fields[1]);
        ops.set(op.opId, op);
      }
      if (page.length < 1000) break;
      start = `(${page[page.length - 1][0]}`;
    }
  }
  const jobs = await queue.getJobs(['wait', 'active', 'delayed', 'prioritized', 'waiting-children']);
  for (const job of jobs) {
    for (const op of (job?.data as { ops?: Op[] } | undefined)?.ops ?? []) ops.set(op.opId, op);
  }
  const parked = new Map<string, Op>();
  const parkedJobs: string[] = [];
  for (const job of await queue.getJobs(['failed'])) {
    if (!job) continue;
    parkedJobs.push(String(job.id));
    for (const op of (job.data as { ops?: Op[] }).ops ?? []) {
      parked.set(op.opId, op);
      ops.set(op.opId, op);
    }
  }
  return { ops, parked, parkedJobs };
}

/** Ops still moving toward Postgres on their own (parked batches excluded): what a drain waits for. */
export async function movingOps(redis: RedisClient, keys: Keys, queue: Queue): Promise<number> {
  const { ops, parked } = await inflightOps(redis, keys, queue);
  return ops.size - parked.size;
}
