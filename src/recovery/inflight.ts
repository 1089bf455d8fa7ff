/**
 * Ops on their way to Postgres: still in an outbox stream, or inside a persist job that has not
 * completed (waiting, active, delayed, failed). Read outbox first, then the queue: ops only move
 * outbox → queue → ledger, so nothing acknowledged slips between the two reads unseen.
 */
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Keys } from '../redis/keys.ts';
import { parseOp, type Op } from '../points/op.ts';

export async function inflightOps(redis: Redis, keys: Keys, queue: Queue): Promise<Map<string, Op>> {
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
  const jobs = await queue.getJobs(['wait', 'active', 'delayed', 'prioritized', 'failed', 'waiting-children']);
  for (const job of jobs) {
    for (const op of (job?.data as { ops?: Op[] } | undefined)?.ops ?? []) ops.set(op.opId, op);
  }
  return ops;
}
