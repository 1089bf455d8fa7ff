/**
 * One run of the reconcile role: if the write gate finds Redis behind Postgres, roll it forward
 * (the only repair for that); otherwise, through an open gate, fold the persisted outbox marks and
 * measure and repair drift (src/recovery/reconcile.ts). The run's summary is kept in Redis for
 * /metrics and operators.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Queue } from 'bullmq';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { Reconciler } from './reconcile.ts';
import type { RedisGate } from './redis-gate.ts';
import { rollForward, type RollForwardResult } from './roll-forward.ts';
import { compactMarks } from './watermark.ts';

export interface ReconcileSummary {
  at: number;
  members: number;
  drifting: number;
  negative: number;
  lotMismatch: number;
  mirrorDrift: number;
  stockDrift: number;
  parked: number;
  inflight: number;
  ms: number;
}

export type ReconcileOutcome =
  | { rolledForward: RollForwardResult }
  | { skipped: string }
  | ReconcileSummary;

export interface ReconcileTaskDeps {
  sql: Sql;
  /** gated: repairs go through the write gate */
  writer: RedisClient;
  /** ungated: the roll-forward writes while the gate is closed */
  raw: RedisClient;
  keys: Keys;
  queue: Queue;
  gate: RedisGate;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export async function reconcileOnce(
  d: ReconcileTaskDeps,
  o: { idempotencyTtlSeconds: number; confirmDelayMs?: number; timeZone?: string },
): Promise<ReconcileOutcome> {
  const state = await d.gate.check();
  if (state === 'behind') {
    const rolled = await rollForward({ sql: d.sql, redis: d.raw, keys: d.keys, queue: d.queue }, o);
    d.log.warn({ ...rolled, reason: d.gate.reason }, 'Redis was behind Postgres: rolled forward');
    await d.gate.check();
    return { rolledForward: rolled };
  }
  if (state !== 'verified') return { skipped: `Redis writes closed: ${d.gate.reason}` };
  await compactMarks(d.sql);
  const reconciler = new Reconciler({ sql: d.sql, redis: d.writer, keys: d.keys, queue: d.queue, log: (msg, data) => d.log.warn(data, msg) });
  const report = await reconciler.run({ confirmDelayMs: o.confirmDelayMs });
  const summary: ReconcileSummary = {
    at: Date.now(),
    members: report.members,
    drifting: report.drifting.length,
    negative: report.negative.length,
    lotMismatch: report.lotMismatch.length,
    mirrorDrift: report.mirrorDrift.length,
    stockDrift: report.stockDrift.length,
    parked: report.parked.length,
    inflight: report.inflight,
    ms: report.ms,
  };
  // two keys, two slots on a cluster: the report, then the totals in one transaction
  await d.writer.set(d.keys.reconcileReport(), JSON.stringify(summary));
  await d.writer
    .multi()
    .hincrby(d.keys.reconcileTotals(), 'runs', 1)
    .hincrby(d.keys.reconcileTotals(), 'drifting', summary.drifting)
    .hincrby(d.keys.reconcileTotals(), 'stockDrift', summary.stockDrift)
    .hincrby(d.keys.reconcileTotals(), 'negative', summary.negative)
    .exec();
  const level = summary.drifting + summary.negative + summary.stockDrift + summary.mirrorDrift + summary.parked > 0 ? 'warn' : 'info';
  d.log[level](summary, 'reconcile finished');
  return summary;
}
