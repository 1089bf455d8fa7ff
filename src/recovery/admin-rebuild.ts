/**
 * Rebuild as an admin job, with the API up: the maintenance flag makes every API process refuse
 * writes (they see it within LAG_CHECK_MS), in-flight ops drain into Postgres, then Redis is
 * rebuilt from Postgres and the flag is cleared. Runs under the reconcile task's lock so the two
 * never overlap.
 *
 * The flag lives `flagTtlMs` (TASK_LOCK_MS) and a heartbeat renews it every third of that while
 * the rebuild runs, so a rebuild whose process dies blocks writes for at most that long, not for
 * an hour. A flag that lapsed anyway (the process stalled past its TTL) may have let writes in
 * after the drain, which the rebuild would overwrite: it is set again at once and the job fails,
 * saying to run it again.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/client.ts';
import type { Queue } from 'bullmq';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { inflightOps, movingOps } from './inflight.ts';
import { rebuildFromPostgres, type RebuildResult } from './rebuild.ts';

export async function rebuildWithApiUp(
  d: { sql: Sql; redis: RedisClient; keys: Keys; queue: Queue },
  o: { idempotencyTtlSeconds: number; apiNoticeMs: number; flagTtlMs: number; drainTimeoutMs?: number; timeZone?: string },
): Promise<RebuildResult> {
  // refused before writes are stopped when it could not go through anyway
  await refuseIfParked(d);
  const flag = d.keys.maintenance();
  const token = randomBytes(12).toString('hex');
  await d.redis.set(flag, token, 'PX', o.flagTtlMs);
  let lapsed = false;
  const renew = async () => {
    if ((await d.redis.pmLockExtend(flag, token, o.flagTtlMs)) === 1) return;
    lapsed = true;
    await d.redis.set(flag, token, 'PX', o.flagTtlMs);
  };
  // a failed renewal (Redis unreachable) is retried by the next beat; the rebuild's own commands fail meanwhile
  let beat: Promise<void> = Promise.resolve();
  const heartbeat = setInterval(() => {
    beat = renew().catch(() => {});
  }, Math.floor(o.flagTtlMs / 3));
  try {
    // writes already inside a script finish; after this every API process has seen the flag
    await new Promise((r) => setTimeout(r, o.apiNoticeMs));
    const deadline = Date.now() + (o.drainTimeoutMs ?? 120_000);
    // parked batches are not waited for: they move only when an operator retries them
    while ((await movingOps(d.redis, d.keys, d.queue)) > 0) {
      if (Date.now() > deadline) throw new Error('rebuild: in-flight ops did not drain; are the relay and persist workers running?');
      await new Promise((r) => setTimeout(r, 100));
    }
    await refuseIfParked(d);
    const result = await rebuildFromPostgres(d.sql, d.redis, d.keys, { idempotencyTtlSeconds: o.idempotencyTtlSeconds, timeZone: o.timeZone });
    if (lapsed) {
      throw new Error(
        `rebuild: the maintenance flag lapsed while it ran (stalled past ${o.flagTtlMs} ms, TASK_LOCK_MS), so writes may ` +
          'have slipped in and been overwritten; run the rebuild again',
      );
    }
    return result;
  } finally {
    clearInterval(heartbeat);
    await beat; // a renewal in flight must not set the flag again after it is cleared
    await d.redis.pmLockRelease(flag, token).catch(() => {});
  }
}

/** A rebuild from Postgres would drop the acknowledged ops of parked batches from Redis. */
async function refuseIfParked(d: { redis: RedisClient; keys: Keys; queue: Queue }): Promise<void> {
  const { parkedJobs } = await inflightOps(d.redis, d.keys, d.queue);
  if (parkedJobs.length > 0) {
    throw new Error(
      `rebuild refused: ${parkedJobs.length} parked persist batch(es) hold ops Postgres does not have ` +
        `(${parkedJobs.slice(0, 5).join(', ')}); retry them first (POST /v1/admin/persist/parked/retry)`,
    );
  }
}
