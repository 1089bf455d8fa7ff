/**
 * Is Redis behind Postgres? Every outbox stream id only grows, and the persist workers record the
 * highest one they wrote per partition (outbox_watermarks). A Redis whose stream has not reached
 * that id lost ops Postgres already holds — it was restored from an older snapshot or failed
 * over to a lagging replica — and must be rolled forward before it takes writes again.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql, Tx } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { RELAY_GROUP } from '../queues.ts';

export interface Lag {
  partition: number;
  redisId: string;
  persistedId: string;
}

export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

export async function lastGeneratedId(redis: RedisClient, key: string): Promise<string> {
  try {
    const info = (await redis.xinfo('STREAM', key)) as unknown[];
    const i = info.indexOf('last-generated-id');
    return String(info[i + 1]);
  } catch (err) {
    if ((err as Error).message.includes('no such key')) return '0-0';
    throw err;
  }
}

/**
 * The highest stream id persisted per partition: the folded outbox_watermarks and the marks the
 * persist batches appended since (outbox_marks).
 */
export async function persistedWatermarks(sql: Sql | Tx, partitions: number): Promise<Map<number, string>> {
  const rows = await sql<Array<{ partition: number; ms: number; seq: number }>>`
    SELECT partition, ms, seq FROM outbox_watermarks WHERE partition < ${partitions}
    UNION ALL
    SELECT m.partition, m.ms, m.seq FROM generate_series(0, ${partitions - 1}) AS p(n)
    CROSS JOIN LATERAL (SELECT partition, ms, seq FROM outbox_marks WHERE partition = p.n
                        ORDER BY ms DESC, seq DESC LIMIT 1) m`;
  const out = new Map<number, string>();
  for (const r of rows) {
    const id = `${r.ms}-${r.seq}`;
    const cur = out.get(r.partition);
    if (cur === undefined || compareIds(id, cur) > 0) out.set(r.partition, id);
  }
  return out;
}

/** Partitions whose Redis stream is behind what Postgres has persisted. */
export async function redisLag(redis: RedisClient, keys: Keys, sql: Sql | Tx): Promise<Lag[]> {
  const marks = await persistedWatermarks(sql, keys.partitions);
  const lag: Lag[] = [];
  for (const [partition, persistedId] of marks) {
    const redisId = await lastGeneratedId(redis, keys.outbox(partition));
    if (compareIds(redisId, persistedId) < 0) lag.push({ partition, redisId, persistedId });
  }
  return lag.sort((a, b) => a.partition - b.partition);
}

/** Every partition's stream last-generated id, as Redis has it now. */
export async function streamIds(redis: RedisClient, keys: Keys): Promise<Record<number, string>> {
  const out: Record<number, string> = {};
  for (let p = 0; p < keys.partitions; p++) out[p] = await lastGeneratedId(redis, keys.outbox(p));
  return out;
}

/**
 * Folds the appended marks into outbox_watermarks (one row per partition) and deletes them. Run
 * by the reconcile role; the only writer of outbox_watermarks, so it waits on no persist batch.
 */
export async function compactMarks(sql: Sql): Promise<number> {
  return sql.begin(async (tx) => {
    const [{ upto }] = await tx<Array<{ upto: number | null }>>`SELECT max(id)::bigint AS upto FROM outbox_marks`;
    if (upto === null) return 0;
    await tx`
      INSERT INTO outbox_watermarks (partition, ms, seq)
      SELECT DISTINCT ON (partition) partition, ms, seq FROM outbox_marks WHERE id <= ${upto}
      ORDER BY partition, ms DESC, seq DESC
      ON CONFLICT (partition) DO UPDATE SET ms = EXCLUDED.ms, seq = EXCLUDED.seq, updated_at = now()
      WHERE (EXCLUDED.ms, EXCLUDED.seq) > (outbox_watermarks.ms, outbox_watermarks.seq)`;
    const deleted = await tx`DELETE FROM outbox_marks WHERE id <= ${upto}`;
    return deleted.count;
  });
}

/** Moves each lagging stream's id up to the persisted watermark (after Redis was rolled forward). */
export async function advanceStreams(redis: RedisClient, keys: Keys, sql: Sql): Promise<number> {
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
