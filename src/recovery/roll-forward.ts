/**
 * Roll forward: brings a Redis that came back behind Postgres up to the durable record.
 *   1. persist what the restored Redis still holds in flight (outbox entries and persist jobs):
 *      those ops were acknowledged before the snapshot and are real; Postgres's unique op_id drops
 *      the ones it already has. Done here, not by waiting for the relay and persist workers, which
 *      are closed to writes themselves until Redis is verified;
 *   2. rebuild members, goods, idempotency records and boards from Postgres, which now holds every
 *      op, move each outbox stream's id up to the persisted watermark, and record the rebuilt
 *      Redis as a verified epoch, which reopens the write gates.
 * Writes stay refused everywhere from detection until then.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Queue } from 'bullmq';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { persistBatch } from '../persistence/persist-batch.ts';
import { inflightOps } from './inflight.ts';
import { rebuildFromPostgres, type RebuildResult } from './rebuild.ts';
import { latestEpoch } from './redis-epoch.ts';

export interface RollForwardResult {
  inflightPersisted: number;
  rebuild: RebuildResult;
  epoch: number;
  ms: number;
}

const CHUNK = 1000;

/** `redis` must be a connection outside the write gate: it is the gate that is closed. */
export async function rollForward(
  d: { sql: Sql; redis: RedisClient; keys: Keys; queue: Queue },
  o: { idempotencyTtlSeconds: number; timeZone?: string },
): Promise<RollForwardResult> {
  const started = Date.now();
  // parked batches included: their ops are owed to Postgres as much as any; if one cannot be
  // persisted now either, the roll-forward fails (writes stay closed) rather than rebuild without it
  const inflight = [...(await inflightOps(d.redis, d.keys, d.queue)).ops.values()];
  let inflightPersisted = 0;
  for (let i = 0; i < inflight.length; i += CHUNK) {
    inflightPersisted += (await persistBatch(d.sql, inflight.slice(i, i + CHUNK))).inserted;
  }
  // the rebuild ends by recording the rebuilt Redis as the verified epoch
  const rebuild = await rebuildFromPostgres(d.sql, d.redis, d.keys, { idempotencyTtlSeconds: o.idempotencyTtlSeconds, timeZone: o.timeZone });
  const epoch = (await latestEpoch(d.sql))!.epoch;
  return { inflightPersisted, rebuild, epoch, ms: Date.now() - started };
}
