/**
 * Is Redis behind Postgres? Every outbox stream id only grows, and the persist workers record the
 * highest one they wrote per partition (outbox_watermarks). A Redis whose stream has not reached
 * that id lost ops Postgres already holds — it was restored from an older snapshot or failed
 * over to a lagging replica — and must be rolled forward before it takes writes again.
 */
import type { Redis } from 'ioredis';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { RELAY_GROUP } from '../queues.ts';

export interface Lag {
  partition: number;
  redisId: string;
  persistedId: string;
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

async function lastGeneratedId(redis: Redis, key: string): Promise<string> {
  try {
    const info = (await redis.xinfo('STREAM', key)) as unknown[];
    const i = info.indexOf('last-generated-id');
    return String(info[i + 1]);
  } catch (err) {
    if ((err as Error).message.includes('no such key')) return '0-0';
    throw err;
  }
}

/** Partitions whose Redis stream is behind what Postgres has persisted. */
export async function redisLag(redis: Redis, keys: Keys, sql: Sql): Promise<Lag[]> {
  const marks = await sql<Array<{ partition: number; ms: number; seq: number }>>`
    SELECT partition, ms, seq FROM outbox_watermarks WHERE partition < ${keys.partitions}`;
  const lag: Lag[] = [];
  for (const m of marks) {
    const persistedId = `${m.ms}-${m.seq}`;
    const redisId = await lastGeneratedId(redis, keys.outbox(m.partition));
    if (compareIds(redisId, persistedId) < 0) lag.push({ partition: m.partition, redisId, persistedId });
  }
  return lag;
}

/** Moves each lagging stream's id up to the persisted watermark (after Redis was rolled forward). */
export async function advanceStreams(redis: Redis, keys: Keys, sql: Sql): Promise<number> {
  const lag = await redisLag(redis, keys, sql);
  for (const l of lag) {
    const key = keys.outbox(l.partition);
    await redis.xgroup('CREATE', key, RELAY_GROUP, '0', 'MKSTREAM').catch((err: Error) => {
      if (!err.message.includes('BUSYGROUP')) throw err;
    });
    await redis.xsetid(key, l.persistedId);
  }
  return lag.length;
}
