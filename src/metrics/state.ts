/**
 * Metrics of the shared state, read once per scrape by the answering API process: persistence
 * backlog, queue depths and the age of each queue's oldest waiting job, parked batches, the last
 * reconcile, the business snapshot (src/metrics/business.ts) and this process's Redis write gate.
 * Kept in a registry of their own, apart from the per-process one, so cluster aggregation never
 * sums a global figure N times. A source that cannot be read is left out of the scrape, not zeroed.
 */
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.ts';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { RedisGate } from '../recovery/redis-gate.ts';
import { countOpConflicts } from '../recovery/op-conflicts.ts';
import { countParked } from '../persistence/parked.ts';
import { PERSIST_QUEUE } from '../queues.ts';
import { driftOf, lastTransactionAt, readBusiness, readReconcile } from './business.ts';
import { slotPipeline } from '../redis/slot-pipeline.ts';

export interface StateSources {
  redis: RedisClient;
  keys: Keys;
  sql: Sql;
  gate: RedisGate;
  /** Every queue by name; the persist queue among them. */
  queues: Record<string, Queue>;
}

const QUEUE_STATES = ['wait', 'active', 'delayed', 'prioritized', 'failed'] as const;

/** Metrics read from one source: shown or left out together. */
type Group = 'backlog' | 'queues' | 'parked' | 'reconcile' | 'reconcile-totals' | 'conflicts' | 'business' | 'business-live' | 'none';

export class StateMetrics {
  readonly registry = new Registry();
  /** Metric name → the source it is read from. */
  private readonly groups = new Map<string, Group>();
  private readonly g = (group: Group, name: string, help: string, labelNames: string[] = []) => {
    this.groups.set(name, group);
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  };
  private readonly c = (group: Group, name: string, help: string) => {
    this.groups.set(name, group);
    return new Counter({ name, help, registers: [this.registry] });
  };

  private readonly outbox = this.g('backlog', 'pm_outbox_entries', 'Ops in the outbox streams, not yet handed to a persist job');
  private readonly persistJobs = this.g('queues', 'pm_persist_jobs', 'Persist jobs (batches of ops) by state', ['state']);
  private readonly backlogAge = this.g(
    'backlog',
    'pm_persist_backlog_age_seconds',
    'Age of the oldest acknowledged op not yet persisted (oldest outbox entry or waiting persist job); 0 when none',
  );
  private readonly queueJobs = this.g('queues', 'pm_queue_jobs', 'Jobs per queue and state', ['queue', 'state']);
  private readonly oldestWaiting = this.g('queues', 'pm_queue_oldest_waiting_age_seconds', 'Age of the oldest waiting job per queue; 0 when none wait', ['queue']);
  private readonly behind = this.g('none', 'pm_redis_behind_postgres', '1 while Redis is behind the persisted record (writes refused)');
  private readonly gateOpen = this.g('none', 'pm_redis_write_gate_open', '1 while this process may write to Redis (verified against Postgres)');
  private readonly parked = this.g('parked', 'pm_persist_parked_batches', 'Persist batches that used up their attempts, kept until retried');
  private readonly reconcile = {
    at: this.g('reconcile', 'pm_reconcile_last_run_timestamp_seconds', 'When the last reconcile finished'),
    members: this.g('reconcile', 'pm_reconcile_members', 'Accounts checked by the last reconcile'),
    drifting: this.g('reconcile', 'pm_reconcile_drifting_members', 'Accounts whose Redis balance drifted from the record'),
    negative: this.g('reconcile', 'pm_reconcile_negative_balances', 'Accounts with a negative balance'),
    lotMismatch: this.g('reconcile', 'pm_reconcile_lot_mismatches', 'Accounts whose lots do not add up to the balance'),
    mirrorDrift: this.g('reconcile', 'pm_reconcile_mirror_drift', 'point_accounts rows that differ from their ledger'),
    stockDrift: this.g('reconcile', 'pm_reconcile_stock_drift', 'Goods whose Redis stock differs from the record'),
    ms: this.g('reconcile', 'pm_reconcile_duration_ms', 'Duration of the last reconcile'),
  };
  private readonly totals = {
    runs: this.c('reconcile-totals', 'pm_reconcile_runs_total', 'Reconcile runs'),
    drifting: this.c('reconcile-totals', 'pm_reconcile_drift_found_total', 'Drifting accounts found (and repaired) by reconcile'),
    stockDrift: this.c('reconcile-totals', 'pm_reconcile_stock_drift_found_total', 'Drifting goods stock found (and repaired) by reconcile'),
    negative: this.c('reconcile-totals', 'pm_reconcile_negative_found_total', 'Negative balances seen by reconcile'),
  };
  private readonly conflicts = this.c('conflicts', 'pm_persist_op_conflicts_total', 'Op ids that reached Postgres again carrying another op (alarm: see op_conflicts)');
  private readonly business = {
    redemptionRate: this.g('business', 'pm_business_redemption_rate_1h', 'Members who spent ÷ members who earned, last hour (NaN: no earners)'),
    expiryRate: this.g('business', 'pm_business_expiry_rate_30d', 'Points expired ÷ points issued, last 30 days (NaN: nothing issued)'),
    active: this.g('business', 'pm_business_active_members_24h', 'Members with any ledger op in the last 24 hours'),
    expiring: this.g('business', 'pm_business_points_expiring_7d', 'Points in lots expiring within 7 days'),
    negative: this.g('business', 'pm_business_negative_balances', 'point_accounts rows below zero (Redis balances: pm_reconcile_negative_balances)'),
    burst: this.g('business', 'pm_business_max_member_redemptions_300s', 'Most redemptions (spend ops) by a single member in the last 300 s'),
    drift: this.g('reconcile-totals', 'pm_business_drift', 'Drifting balances, mirror rows and stock found by the last reconcile'),
    snapshotAge: this.g('business', 'pm_business_snapshot_age_seconds', 'Age of the business snapshot (the metrics worker role computes it)'),
    quiet: this.g('business-live', 'pm_business_seconds_since_last_transaction', 'Seconds since the newest persisted op (NaN: ledger empty)'),
  };

  constructor(private readonly s: StateSources) {}

  /**
   * Reads every source and returns the exposition text. A group whose source failed (or does not
   * exist yet: no reconcile run, no business snapshot) is left out rather than shown as zero.
   */
  metrics(): Promise<string> {
    // one read at a time (the gauges are shared): concurrent scrapes get the read in flight
    this.inFlight ??= this.read().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private inFlight: Promise<string> | undefined;

  private async read(): Promise<string> {
    this.registry.resetMetrics();
    const missing = new Set<Group>();
    const skip = (g: Group) => () => void missing.add(g);
    const now = Date.now();
    await Promise.all([
      this.readBacklog(now).catch(skip('backlog')),
      this.readQueues(now).catch(skip('queues')),
      countParked(this.s.queues[PERSIST_QUEUE]).then((n) => this.parked.set(n), skip('parked')),
      this.readReconcile(skip('reconcile')).catch(() => missing.add('reconcile').add('reconcile-totals')),
      countOpConflicts(this.s.sql).then((n) => this.conflicts.inc(n), skip('conflicts')),
      this.readBusiness(now, skip('business')).catch(skip('business-live')),
    ]);
    this.behind.set(this.s.gate.state === 'behind' ? 1 : 0);
    this.gateOpen.set(this.s.gate.writable ? 1 : 0);
    const shown = this.registry.getMetricsAsArray().filter((m) => !missing.has(this.groups.get(m.name) ?? 'none'));
    const parts = await Promise.all(shown.map((m) => this.registry.getSingleMetricAsString(m.name)));
    return `${parts.join('\n\n')}\n`;
  }

  private async readBacklog(now: number): Promise<void> {
    const { redis, keys } = this.s;
    const streams = Array.from({ length: keys.partitions }, (_, p) => keys.outbox(p));
    const tx = slotPipeline(redis);
    for (const k of streams) tx.xlen(k).xrange(k, '-', '+', 'COUNT', 1);
    const replies = (await tx.exec()) ?? [];
    let entries = 0;
    let oldest = Infinity;
    for (let i = 0; i < streams.length; i++) {
      const [lenErr, len] = replies[2 * i] ?? [];
      const [firstErr, first] = replies[2 * i + 1] ?? [];
      if (lenErr || firstErr) throw lenErr ?? firstErr;
      entries += Number(len);
      const id = (first as Array<[string, string[]]>)[0]?.[0];
      if (id) oldest = Math.min(oldest, Number(id.split('-')[0]));
    }
    const [job] = await this.s.queues[PERSIST_QUEUE].getJobs(['wait', 'delayed', 'prioritized'], 0, 0, true);
    if (job) oldest = Math.min(oldest, job.timestamp);
    this.outbox.set(entries);
    this.backlogAge.set(Number.isFinite(oldest) ? Math.max(0, (now - oldest) / 1000) : 0);
  }

  private async readQueues(now: number): Promise<void> {
    await Promise.all(
      Object.entries(this.s.queues).map(async ([name, queue]) => {
        const counts = await queue.getJobCounts(...QUEUE_STATES);
        for (const state of QUEUE_STATES) this.queueJobs.set({ queue: name, state }, counts[state] ?? 0);
        if (name === PERSIST_QUEUE) {
          for (const state of ['wait', 'active', 'delayed', 'failed']) this.persistJobs.set({ state }, counts[state] ?? 0);
        }
        const [oldest] = await queue.getJobs(['wait'], 0, 0, true);
        this.oldestWaiting.set({ queue: name }, oldest ? Math.max(0, (now - oldest.timestamp) / 1000) : 0);
      }),
    );
  }

  private async readReconcile(noReport: () => void): Promise<void> {
    const { redis, keys } = this.s;
    const [r, totals] = await Promise.all([readReconcile(redis, keys), redis.hgetall(keys.reconcileTotals())]);
    if (r) {
      this.reconcile.at.set(Math.floor(r.at / 1000));
      for (const k of ['members', 'drifting', 'negative', 'lotMismatch', 'mirrorDrift', 'stockDrift', 'ms'] as const) this.reconcile[k].set(r[k]);
    } else {
      noReport();
    }
    for (const k of ['runs', 'drifting', 'stockDrift', 'negative'] as const) this.totals[k].inc(Number(totals[k] ?? 0));
    this.business.drift.set(driftOf(r));
  }

  private async readBusiness(now: number, noSnapshot: () => void): Promise<void> {
    const { redis, keys, sql } = this.s;
    const [snap, last] = await Promise.all([readBusiness(redis, keys), lastTransactionAt(sql)]);
    this.business.quiet.set(last === null ? NaN : Math.max(0, (now - last) / 1000));
    if (!snap) {
      noSnapshot();
      return;
    }
    this.business.redemptionRate.set(snap.redemptionRate1h ?? NaN);
    this.business.expiryRate.set(snap.expiryRate30d ?? NaN);
    this.business.active.set(snap.activeMembers24h);
    this.business.expiring.set(snap.pointsExpiring7d);
    this.business.negative.set(snap.negativeBalances);
    this.business.burst.set(snap.maxMemberRedemptions300s);
    this.business.snapshotAge.set(Math.max(0, (now - snap.at) / 1000));
  }
}
