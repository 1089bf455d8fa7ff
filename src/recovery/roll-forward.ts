/**
 * Roll forward: brings a Redis that came back behind Postgres up to the durable record.
 *   1. let the relay and persist workers drain what the restored Redis still had in flight
 *      (those ops are real: they were acknowledged before the snapshot);
 *   2. rebuild members, goods, op records and boards from Postgres, which now holds every op;
 *   3. move each outbox stream's id up to the persisted watermark, which ends the lag.
 * Writes are refused (API not ready) from detection until step 3.
 */
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { inflightOps } from './inflight.ts';
import { rebuildFromPostgres, type RebuildResult } from './rebuild.ts';
import { redisLag } from './watermark.ts';

export interface RollForwardResult {
  lagging: number;
  drainedMs: number;
  rebuild?: RebuildResult;
}

export async function rollForward(
  d: { sql: Sql; redis: Redis; keys: Keys; queue: Queue },
  o: { idempotencyTtlSeconds: number; drainTimeoutMs?: number },
): Promise<RollForwardResult> {
  const lag = await redisLag(d.redis, d.keys, d.sql);
  if (lag.length === 0) return { lagging: 0, drainedMs: 0 };
  const started = Date.now();
  const deadline = started + (o.drainTimeoutMs ?? 120_000);
  while ((await inflightOps(d.redis, d.keys, d.queue)).size > 0) {
    if (Date.now() > deadline) throw new Error('roll-forward: in-flight ops did not drain; are the relay and persist workers running?');
    await new Promise((r) => setTimeout(r, 100));
  }
  const drainedMs = Date.now() - started;
  const rebuild = await rebuildFromPostgres(d.sql, d.redis, d.keys, { idempotencyTtlSeconds: o.idempotencyTtlSeconds });
  return { lagging: lag.length, drainedMs, rebuild };
}
