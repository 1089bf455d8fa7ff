/**
 * A reconcile run (no repairs) over a test context: the parts of its report that must be empty
 * when Redis and Postgres agree.
 */
import { Queue } from 'bullmq';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { Reconciler } from '../../src/recovery/reconcile.ts';
import { createRedis } from '../../src/redis/client.ts';
import type { TestContext } from './context.ts';

export async function reconcileFindings(ctx: TestContext, confirmDelayMs = 100) {
  const connection = createRedis(ctx.env.REDIS_URL, 'worker');
  const queue = new Queue(PERSIST_QUEUE, { connection, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
  try {
    const r = await new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }).run({ repair: false, confirmDelayMs });
    return { drifting: r.drifting, negative: r.negative, lotMismatch: r.lotMismatch, mirrorDrift: r.mirrorDrift, stockDrift: r.stockDrift };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

export const CLEAN = { drifting: [], negative: [], lotMismatch: [], mirrorDrift: [], stockDrift: [] };
