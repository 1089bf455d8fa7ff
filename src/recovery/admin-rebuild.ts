/**
 * Rebuild as an admin job, with the API up: the maintenance flag makes every API process refuse
 * writes (they see it within LAG_CHECK_MS), in-flight ops drain into Postgres, then Redis is
 * rebuilt from Postgres and the flag is cleared. Runs under the reconcile task's lock so the two
 * never overlap.
 */
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { inflightOps, movingOps } from './inflight.ts';
import { rebuildFromPostgres, type RebuildResult } from './rebuild.ts';

export async function rebuildWithApiUp(
  d: { sql: Sql; redis: Redis; keys: Keys; queue: Queue },
  o: { idempotencyTtlSeconds: number; apiNoticeMs: number; drainTimeoutMs?: number },
): Promise<RebuildResult> {
  const flag = d.keys.maintenance();
  await d.redis.set(flag, String(Date.now()), 'EX', 3600);
  try {
    // writes already inside a script finish; after this every API process has seen the flag
    await new Promise((r) => setTimeout(r, o.apiNoticeMs));
    const deadline = Date.now() + (o.drainTimeoutMs ?? 120_000);
    // parked batches are not waited for: they move only when an operator retries them
    while ((await movingOps(d.redis, d.keys, d.queue)) > 0) {
      if (Date.now() > deadline) throw new Error('rebuild: in-flight ops did not drain; are the relay and persist workers running?');
      await new Promise((r) => setTimeout(r, 100));
    }
    const { parkedJobs } = await inflightOps(d.redis, d.keys, d.queue);
    if (parkedJobs.length > 0) {
      // a rebuild from Postgres would drop their acknowledged ops from Redis
      throw new Error(
        `rebuild refused: ${parkedJobs.length} parked persist batch(es) hold ops Postgres does not have ` +
          `(${parkedJobs.slice(0, 5).join(', ')}); retry them first (POST /v1/admin/persist/parked/retry)`,
      );
    }
    return await rebuildFromPostgres(d.sql, d.redis, d.keys, { idempotencyTtlSeconds: o.idempotencyTtlSeconds });
  } finally {
    await d.redis.del(flag);
  }
}
