/**
 * The persistence pipeline seen from outside: backlog (outbox entries + persist jobs not yet
 * done), drain, and how many ledger rows per second the workers wrote while a load ran and
 * drained — to compare what the workers persist with what the API accepts.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { RedisClient } from '../src/redis/client.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { PERSIST_QUEUE } from '../src/queues.ts';

/** Ledger rows written after a mark, timed by Postgres (persisted_at = the batch's transaction start). */
export interface PersistRates {
  rows: number;
  /** Rows over the span from the first to the last batch written. */
  busyRowsPerSec: number;
  /** Most rows stamped within one wall-clock second. */
  peakRowsPerSec: number;
}

export interface PersistStats extends PersistRates {
  /** From the start of the load until drained. */
  seconds: number;
  rowsPerSec: number;
  /** How long persistence trailed after the load stopped. */
  lagAfterLoadS: number;
}

export class Pipeline {
  private readonly queue: Queue;

  constructor(
    private readonly redis: RedisClient,
    queueConnection: RedisClient,
    private readonly keys: Keys,
    private readonly sql: Sql,
  ) {
    this.queue = new Queue(PERSIST_QUEUE, { connection: queueConnection, prefix: keys.queuePrefix(PERSIST_QUEUE) });
  }

  async backlog(): Promise<number> {
    const lens = await Promise.all(Array.from({ length: this.keys.partitions }, (_, p) => this.redis.xlen(this.keys.outbox(p))));
    const counts = await this.queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
    return lens.reduce((a, b) => a + b, 0) + Object.values(counts).reduce((a, b) => a + b, 0);
  }

  /** Resolves once a persist worker is connected to the queue. */
  async waitForWorkers(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.queue.getWorkersCount()) === 0) {
      if (Date.now() > deadline) throw new Error(`no persist worker connected after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  async failedJobs(): Promise<number> {
    return (await this.queue.getJobCounts('failed')).failed ?? 0;
  }

  async drain(timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = await this.backlog();
      if (left === 0) return;
      if (Date.now() > deadline) throw new Error(`persistence did not drain in ${timeoutMs} ms: ${left} left`);
      await sleep(50);
    }
  }

  /** The newest ledger row id: rows after it are the ones a phase persisted. */
  async mark(): Promise<number> {
    const [{ id }] = await this.sql<Array<{ id: number }>>`SELECT COALESCE(max(id), 0)::bigint AS id FROM ledger_entries`;
    return id;
  }

  async persistedSince(mark: number): Promise<PersistRates> {
    const [r] = await this.sql<Array<{ rows: number; span: number; peak: number }>>`
      SELECT count(*)::bigint AS rows,
             COALESCE(EXTRACT(EPOCH FROM max(persisted_at) - min(persisted_at)), 0)::float8 AS span,
             COALESCE((SELECT max(n) FROM (SELECT count(*) AS n FROM ledger_entries WHERE id > ${mark}
                                           GROUP BY date_trunc('second', persisted_at)) b), 0)::bigint AS peak
      FROM ledger_entries WHERE id > ${mark}`;
    return { rows: r.rows, busyRowsPerSec: r.span > 0 ? r.rows / r.span : r.rows, peakRowsPerSec: r.peak };
  }

  /** Runs load() from a drained pipeline, then drains, and says how persistence kept up. */
  async meter<T>(load: () => Promise<T>): Promise<{ result: T; persist: PersistStats }> {
    const mark = await this.mark();
    const t0 = performance.now();
    const result = await load();
    const loadEnd = performance.now();
    await this.drain();
    const seconds = (performance.now() - t0) / 1000;
    const rates = await this.persistedSince(mark);
    return {
      result,
      persist: { ...rates, seconds, rowsPerSec: rates.rows / seconds, lagAfterLoadS: seconds - (loadEnd - t0) / 1000 },
    };
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
