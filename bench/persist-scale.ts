/**
 * Persisted rows per second with 1 and with 2 persist processes (part of `npm run
 * bench:lifecycle`). The same batches — shaped like the relay's: every job carries ops of every
 * partition and their outbox marks — are queued, then drained by `workers/main.ts --only persist`
 * processes; the ledger is emptied between the two runs. Two processes should persist faster than
 * one: no row is taken by every batch (docs/architecture.md, persistence).
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../src/redis/client.ts';
import type { Env } from '../src/config/env.ts';
import type { Sql } from '../src/db/client.ts';
import { newOpId } from '../src/points/idempotency.ts';
import type { Op } from '../src/points/op.ts';
import { PERSIST_JOB_OPTIONS, PERSIST_QUEUE } from '../src/queues.ts';
import type { Keys } from '../src/redis/keys.ts';
import { Child } from './processes.ts';

export interface PersistScale {
  rows: number;
  batch: number;
  rowsPerSecond: Record<'1' | '2', number>;
}

function batches(userIds: number[], keys: Keys, rows: number, batch: number) {
  const out: Array<{ ops: Op[]; marks: Record<number, string> }> = [];
  const at = Date.now();
  for (let b = 0; b * batch < rows; b++) {
    const ops: Op[] = [];
    const marks: Record<number, string> = {};
    for (let i = 0; i < batch && b * batch + i < rows; i++) {
      const userId = userIds[(b * batch + i) % userIds.length];
      const opId = newOpId();
      ops.push({
        opId, kind: 'earn', userId, delta: 10, balanceAfter: 10, available: 10, bizType: 'share', bizId: '1',
        at, h: 'h', k: opId, expiresAt: at + 86_400_000,
      });
      marks[keys.partitionOf(userId)] = `${at + b}-${i}`;
    }
    out.push({ ops, marks });
  }
  return out;
}

export async function measurePersistScale(
  o: { sql: Sql; connection: RedisClient; keys: Keys; env: Env; childEnv: NodeJS.ProcessEnv; rows?: number; batch?: number; concurrency?: number },
): Promise<PersistScale> {
  const rows = o.rows ?? 60_000;
  const batch = o.batch ?? 500;
  const userIds = (await o.sql<Array<{ id: number }>>`SELECT id FROM users ORDER BY id LIMIT 20000`).map((u) => u.id);
  const queue = new Queue(PERSIST_QUEUE, { connection: o.connection, prefix: o.keys.queuePrefix(PERSIST_QUEUE) });
  const result: PersistScale = { rows, batch, rowsPerSecond: { '1': 0, '2': 0 } };
  try {
    for (const processes of [1, 2] as const) {
      await o.sql`TRUNCATE ledger_entries, outbox_marks`;
      await queue.obliterate({ force: true });
      // queued on a paused queue and released once every worker is up: the clock measures persisting only
      await queue.pause();
      for (const [i, data] of batches(userIds, o.keys, rows, batch).entries()) {
        await queue.add('persist', data, { ...PERSIST_JOB_OPTIONS, jobId: `scale-${processes}-${i}` });
      }
      const workers = Array.from(
        { length: processes },
        (_, i) => new Child(`persist-${processes}.${i}`, ['workers/main.ts', '--only', 'persist', '--concurrency', String(o.concurrency ?? 1)], o.childEnv),
      );
      let started = 0;
      try {
        while ((await queue.getWorkersCount()) < processes) await new Promise((r) => setTimeout(r, 50));
        await queue.resume();
        started = Date.now();
        for (;;) {
          const [{ n }] = await o.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM ledger_entries`;
          if (n >= rows) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
      result.rowsPerSecond[String(processes) as '1' | '2'] = Math.round(rows / ((Date.now() - started) / 1000));
      console.log(`persist: ${rows} rows in batches of ${batch} with ${processes} process(es) × ${o.concurrency ?? 1} job(s) at a time: ${result.rowsPerSecond[String(processes) as '1' | '2']} rows/s`);
    }
  } finally {
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
  return result;
}
