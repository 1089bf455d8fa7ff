/**
 * GET /metrics in Prometheus text format: persistence backlog, Redis lag, and the counts from
 * the last reconcile run (drift, negative balances, lot and stock mismatches).
 */
import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import { countOpConflicts } from '../recovery/op-conflicts.ts';
import { countParked } from '../persistence/parked.ts';

interface ReconcileSummary {
  at: number;
  members: number;
  drifting: number;
  negative: number;
  lotMismatch: number;
  mirrorDrift: number;
  stockDrift: number;
  inflight: number;
  ms: number;
}

export function registerMetrics(app: FastifyInstance, queue: Queue): void {
  app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true } }, async (_request, reply) => {
    const lines: string[] = [];
    const gauge = (name: string, help: string, value: number, labels = '') => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}${labels} ${value}`);
    };
    const lens = await Promise.all(
      Array.from({ length: app.keys.partitions }, (_, p) => app.redis.xlen(app.keys.outbox(p)).catch(() => 0)),
    );
    gauge('pm_outbox_entries', 'Ops in the outbox streams, not yet handed to a persist job', lens.reduce((a, b) => a + b, 0));
    const counts = (await queue.getJobCounts('wait', 'active', 'delayed', 'failed').catch(() => ({}))) as Record<string, number>;
    lines.push('# HELP pm_persist_jobs Persist jobs (batches of ops) by state', '# TYPE pm_persist_jobs gauge');
    for (const [state, n] of Object.entries(counts)) {
      lines.push(`pm_persist_jobs{state="${state}"} ${n}`);
    }
    gauge('pm_redis_behind_postgres', '1 while Redis is behind the persisted record (writes refused)', app.redisGate.state === 'behind' ? 1 : 0);
    gauge('pm_redis_write_gate_open', '1 while this process may write to Redis (verified against Postgres)', app.redisGate.writable ? 1 : 0);
    const parked = await countParked(queue).catch(() => null);
    if (parked !== null) gauge('pm_persist_parked_batches', 'Persist batches that used up their attempts, kept until retried', parked);
    const raw = await app.redis.get(app.keys.reconcileReport()).catch(() => null);
    if (raw) {
      const r = JSON.parse(raw) as ReconcileSummary;
      gauge('pm_reconcile_last_run_timestamp_seconds', 'When the last reconcile finished', Math.floor(r.at / 1000));
      gauge('pm_reconcile_members', 'Accounts checked by the last reconcile', r.members);
      gauge('pm_reconcile_drifting_members', 'Accounts whose Redis balance drifted from the record', r.drifting);
      gauge('pm_reconcile_negative_balances', 'Accounts with a negative balance', r.negative);
      gauge('pm_reconcile_lot_mismatches', 'Accounts whose lots do not add up to the balance', r.lotMismatch);
      gauge('pm_reconcile_mirror_drift', 'point_accounts rows that differ from their ledger', r.mirrorDrift);
      gauge('pm_reconcile_stock_drift', 'Goods whose Redis stock differs from the record', r.stockDrift);
      gauge('pm_reconcile_duration_ms', 'Duration of the last reconcile', r.ms);
    }
    const totals = await app.redis.hgetall(app.keys.reconcileTotals()).catch(() => ({}) as Record<string, string>);
    const counter = (name: string, help: string, value: string | undefined) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${Number(value ?? 0)}`);
    };
    counter('pm_reconcile_runs_total', 'Reconcile runs', totals.runs);
    counter('pm_reconcile_drift_found_total', 'Drifting accounts found (and repaired) by reconcile', totals.drifting);
    counter('pm_reconcile_stock_drift_found_total', 'Drifting goods stock found (and repaired) by reconcile', totals.stockDrift);
    counter('pm_reconcile_negative_found_total', 'Negative balances seen by reconcile', totals.negative);
    const conflicts = await countOpConflicts(app.sql).catch(() => null);
    if (conflicts !== null) {
      counter('pm_persist_op_conflicts_total', 'Op ids that reached Postgres again carrying another op (alarm: see op_conflicts)', String(conflicts));
    }
    return reply.type('text/plain; version=0.0.4').send(`${lines.join('\n')}\n`);
  });
}
