/**
 * Results: ratios between scenarios, the console lines, and bench/results/latest.{json,md,svg}
 * (overwritten each run, so the repository holds only the last one; the SVG is bench/chart.ts's).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Check } from './books.ts';
import type { MemoryReport } from './memory.ts';
import type { PersistRates, PersistStats } from './pipeline.ts';
import { ROOT } from './processes.ts';
import type { ScenarioResult } from './scenarios.ts';
import { CHART_LINK, chartSvg } from './chart.ts';
import { PERSIST_JOB_OPTIONS } from '../src/queues.ts';

export interface SeedStats {
  members: number;
  insertSeconds: number;
  grantSeconds: number;
  grantsPerSec: number;
  /** The grants' ops, queued before the workers started, persisted from a full backlog. */
  persist: PersistRates;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  settings: Record<string, string | number>;
  seed: SeedStats;
  scenarios: ScenarioResult[];
  ratios: Record<string, number>;
  rssPeakMb: { api: number; workers: number };
  memory: MemoryReport;
  final: Check[];
}

const RATIOS: Array<[string, string]> = [
  ['flash', 'baseline-flash'],
  ['redeem', 'baseline-redeem'],
  ['flash', 'hello'],
  ['redeem', 'hello'],
  ['earn', 'hello'],
  ['checkin', 'hello'],
  ['draw', 'hello'],
  ['transfer', 'hello'],
];

/** The bare route's second run (bench/scenarios.ts helloAfter). */
export const HELLO_AFTER = 'hello-after';

/**
 * The bare route as the reference: hello, or the mean of hello and hello-after (the bare route
 * measured again after the scenarios the targets compare with it), with the drift between the two.
 */
export interface BareRoute {
  reqPerSec: number;
  /** The API's CPU µs per bare-route request. */
  apiUs: number;
  /** Each run of the bare route, hello first. */
  measured: Array<{ name: string; reqPerSec: number; apiUs: number }>;
  /** hello-after against hello (0.05 = the host ran 5% faster by API CPU per request); undefined with one run. */
  drift?: { reqPerSec: number; apiUs: number };
}

export function bareRoute(scenarios: ScenarioResult[]): BareRoute | undefined {
  const measured = ['hello', HELLO_AFTER].flatMap((name) => {
    const s = scenarios.find((x) => x.name === name);
    return s ? [{ name, reqPerSec: s.stats.reqPerSec, apiUs: s.cpuUntilPersisted.usedUs.api / Math.max(1, s.stats.responses) }] : [];
  });
  if (measured[0]?.name !== 'hello') return undefined;
  const mean = (f: (m: BareRoute['measured'][number]) => number) => measured.reduce((n, m) => n + f(m), 0) / measured.length;
  const [first, after] = measured;
  return {
    reqPerSec: mean((m) => m.reqPerSec),
    apiUs: mean((m) => m.apiUs),
    measured,
    // fewer µs per request after = a faster host
    drift: after && { reqPerSec: after.reqPerSec / first.reqPerSec - 1, apiUs: first.apiUs / after.apiUs - 1 },
  };
}

export function ratios(scenarios: ScenarioResult[]): Record<string, number> {
  const rps = new Map(scenarios.map((s) => [s.name, s.stats.reqPerSec]));
  const bare = bareRoute(scenarios);
  if (bare) rps.set('hello', bare.reqPerSec);
  const out: Record<string, number> = {};
  for (const [a, b] of RATIOS) {
    const x = rps.get(a);
    const y = rps.get(b);
    if (x !== undefined && y) out[`${a}/${b}`] = Math.round((x / y) * 100) / 100;
  }
  return out;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

function rejectedCell(s: ScenarioResult): string {
  const parts = Object.entries(s.stats.statuses)
    .filter(([k]) => !k.startsWith('2'))
    .map(([k, v]) => `${k} ${int(v)}`);
  return parts.length > 0 ? `${int(s.stats.rejected)} (${parts.join(' · ')})` : int(s.stats.rejected);
}

function ratioCell(name: string, r: Record<string, number>): string {
  const parts = Object.entries(r)
    .filter(([k]) => k.startsWith(`${name}/`))
    .map(([k, v]) => `${v}× ${k.split('/')[1]}`);
  return parts.length > 0 ? parts.join(' · ') : '—';
}

const failed = (checks: Check[]) => checks.filter((c) => !c.ok);

export interface CpuPerOp {
  name: string;
  accepted: number;
  /** µs per accepted op, per process group. */
  us: Record<'api' | 'workers' | 'redis' | 'postgres', number>;
  total: number;
  totalPerResponse: number;
  /** total / the API's µs per bare-route request (same run; the mean of hello and hello-after). */
  totalVsHello?: number;
  redisVsHello?: number;
}

/** CPU µs per accepted op per process, from each scenario's until-persisted window. */
export function cpuPerOp(scenarios: ScenarioResult[]): CpuPerOp[] {
  const per = (s: ScenarioResult, n: number) => {
    const u = s.cpuUntilPersisted.usedUs;
    const d = Math.max(1, n);
    return { api: u.api / d, workers: u.workers / d, redis: u.redis / d, postgres: u.postgres / d };
  };
  const helloApi = bareRoute(scenarios)?.apiUs;
  return scenarios.map((s) => {
    const us = per(s, s.stats.accepted);
    const total = us.api + us.workers + us.redis + us.postgres;
    const all = per(s, s.stats.responses);
    return {
      name: s.name,
      accepted: s.stats.accepted,
      us,
      total,
      totalPerResponse: all.api + all.workers + all.redis + all.postgres,
      totalVsHello: helloApi ? total / helloApi : undefined,
      redisVsHello: helloApi ? us.redis / helloApi : undefined,
    };
  });
}

/** The performance targets, judged on one run; a target whose scenarios did not run is left out. */
export function targets(r: BenchResults): Check[] {
  const out: Check[] = [];
  const by = new Map(r.scenarios.map((s) => [s.name, s]));
  const perOp = new Map(cpuPerOp(r.scenarios).map((c) => [c.name, c]));
  // judged on the measured values; only the detail is rounded (r.ratios is rounded for display)
  const ratio = (a: string, b: string, min: number) => {
    const x = by.get(a)?.stats.reqPerSec;
    const y = by.get(b)?.stats.reqPerSec;
    if (x === undefined || !y) return;
    out.push({ name: `${a}/${b} ≥ ${min}×`, ok: x / y >= min, detail: `${(x / y).toFixed(2)}×` });
  };
  ratio('flash', 'baseline-flash', 10);
  ratio('redeem', 'baseline-redeem', 5);
  const redeem = perOp.get('redeem');
  if (redeem?.totalVsHello !== undefined) {
    out.push({ name: 'CPU per accepted redemption ≤ 8× hello API', ok: redeem.totalVsHello <= 8, detail: `${redeem.totalVsHello.toFixed(2)}× (${Math.round(redeem.total)} µs)` });
    out.push({ name: 'Redis CPU per accepted redemption ≤ 1.5× hello API', ok: redeem.redisVsHello! <= 1.5, detail: `${redeem.redisVsHello!.toFixed(2)}× (${Math.round(redeem.us.redis)} µs)` });
  }
  for (const name of ['flash', 'redeem']) {
    const s = by.get(name);
    if (s) out.push({ name: `${name} p99 ≤ 50 ms`, ok: s.stats.latencyMs.p99 <= 50, detail: `${s.stats.latencyMs.p99} ms` });
  }
  for (const s of r.scenarios) {
    if (!s.persist || s.stats.accepted === 0) continue;
    const accepted = s.stats.accepted / Number(r.settings.durationS);
    out.push({
      // keeping up = the rate while writing is at least the accepted rate, or the backlog was gone
      // within a second of the load's end (the rate's span includes that last second)
      name: `${s.name}: persisted ops/s ≥ accepted ops/s`,
      ok: s.persist.busyRowsPerSec >= accepted || s.persist.lagAfterLoadS <= 1,
      detail: `${Math.round(s.persist.busyRowsPerSec)} rows/s while writing, ${Math.round(accepted)} accepted/s, drained ${s.persist.lagAfterLoadS.toFixed(1)} s after the load`,
    });
  }
  out.push({ name: 'API peak RSS ≤ 250 MB', ok: r.rssPeakMb.api <= 250, detail: `${r.rssPeakMb.api.toFixed(0)} MB` });
  return out;
}

export function scenarioLine(s: ScenarioResult): string {
  const st = s.stats;
  const head =
    `${s.name.padEnd(16)} ${int(st.reqPerSec).padStart(7)} req/s  p50 ${ms(st.latencyMs.p50)} ms  ` +
    `p97.5 ${ms(st.latencyMs.p97_5)} ms  p99 ${ms(st.latencyMs.p99)} ms  ` +
    `accepted ${int(st.accepted)}  rejected ${rejectedCell(s)}  invariants ${s.ok ? 'ok' : 'FAILED'}`;
  const bad = failed(s.checks).map((c) => `\n    ✗ ${c.name}: ${c.detail}`);
  return head + bad.join('');
}

/** How the bare-route reference was measured, and how far the host drifted between its runs. */
export function bareRouteLine(b: BareRoute, scenarios: ScenarioResult[]): string {
  if (!b.drift) return `Bare route (the reference for "× hello"): ${int(b.reqPerSec)} req/s, ${b.apiUs.toFixed(1)} µs of API CPU per request (one run).`;
  const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(0)}%`;
  const names = scenarios.map((s) => s.name);
  const between = names.slice(names.indexOf('hello') + 1, names.indexOf(HELLO_AFTER));
  const runs = b.measured.map((m) => `${m.name} ${int(m.reqPerSec)} req/s, ${m.apiUs.toFixed(1)} µs`).join('; ');
  return (
    `Bare route (the reference for "× hello"), measured before and after ${between.join(', ')}: ${runs} ` +
    `of API CPU per request — host speed ${pct(b.drift.apiUs)} by API CPU per request, ${pct(b.drift.reqPerSec)} ` +
    `by req/s between them. Ratios use the mean: ${int(b.reqPerSec)} req/s, ${b.apiUs.toFixed(1)} µs.`
  );
}

export function memoryLine(m: MemoryReport): string {
  const d = m.boardDedupe;
  return (
    `Redis memory: ${int(m.bytesPer1000Writes)} bytes per 1,000 accepted writes (used_memory ` +
    `${int(m.usedBeforeBytes)} → ${int(m.usedAfterBytes)} over ${int(m.acceptedWrites)} writes); ` +
    `leaderboard dedupe after drain: ${int(d.entries)} entries in ${d.keys} sets, ${int(d.bytes)} bytes`
  );
}

export function markdown(r: BenchResults): string {
  const lines: string[] = [];
  const row = (cells: Array<string | number>) => lines.push(`| ${cells.join(' | ')} |`);
  lines.push(`# Benchmark results — ${r.startedAt}`, '');
  lines.push(
    Object.entries(r.settings)
      .map(([k, v]) => `${k}: ${v}`)
      .join(' · '),
    '',
  );
  lines.push(`Overall: **${r.ok ? 'all invariants hold' : 'INVARIANT FAILURES'}**`, '', CHART_LINK, '');
  row(['scenario', 'req/s', 'p50 ms', 'p97.5 ms', 'p99 ms', 'accepted', 'rejected', 'invariant ok', 'ratio']);
  row(Array(9).fill('---'));
  for (const s of r.scenarios) {
    const st = s.stats;
    row([
      s.name,
      int(st.reqPerSec),
      ms(st.latencyMs.p50),
      ms(st.latencyMs.p97_5),
      ms(st.latencyMs.p99),
      int(st.accepted),
      rejectedCell(s),
      s.ok ? 'yes' : '**NO**',
      ratioCell(s.name, r.ratios),
    ]);
  }

  lines.push('', '## Persistence (workers) vs acceptance (API)', '');
  lines.push(
    'Rows are ledger_entries (one per accepted write), timed by Postgres. "until drained": from the start of ' +
      'the measured load until the backlog was empty; "while writing": first to last batch.',
    '',
  );
  row(['phase', 'accepted writes/s', 'rows persisted', 'rows/s until drained', 'rows/s while writing', 'peak rows/s (1 s)', 'drain lag after load s']);
  row(Array(7).fill('---'));
  const rates = (p: PersistRates) => [int(p.rows), int(p.busyRowsPerSec), int(p.peakRowsPerSec)];
  const seed = rates(r.seed.persist);
  row(['seed grants (backlog)', int(r.seed.grantsPerSec), seed[0], '—', seed[1], seed[2], '—']);
  for (const s of r.scenarios) {
    const p: PersistStats | undefined = s.persist;
    if (!p) continue;
    const [rows, busy, peak] = rates(p);
    row([s.name, int(s.stats.accepted / Number(r.settings.durationS)), rows, int(p.rowsPerSec), busy, peak, p.lagAfterLoadS.toFixed(1)]);
  }

  lines.push('', '## CPU during the measured run (% of one core; 2 cores = 200%)', '');
  lines.push(
    'cpu / run-queue wait: time running, and time runnable but waiting for a core (main threads). ' +
      '"other" is everything else on the machine (e.g. concurrent test runs).',
    '',
  );
  row(['scenario', 'API', 'workers', 'Redis', 'Postgres', 'bench (autocannon)', 'other', 'machine']);
  row(Array(8).fill('---'));
  for (const s of r.scenarios) {
    const { cpu: c, runQueueWait: w } = s.cpu;
    const cell = (g: keyof typeof w) => `${c[g]} / ${w[g]}`;
    row([s.name, cell('api'), cell('workers'), cell('redis'), cell('postgres'), cell('bench'), c.other, c.machine]);
  }

  const bare = bareRoute(r.scenarios);
  if (bare) lines.push('', bareRouteLine(bare, r.scenarios));

  lines.push('', '## CPU per accepted op (µs), until persisted', '');
  lines.push(
    'CPU each process group used from the start of the measured run until its writes were persisted ' +
      '(for writes: the workers and Postgres finishing the backlog included), divided by the ops the API ' +
      'accepted (2xx). "per response" divides the total by every answer, refusals included. ' +
      '"× hello API" compares with the API\'s CPU per bare-route request in the same run (the mean of hello and hello-after when both ran).',
    '',
  );
  row(['scenario', 'accepted', 'API', 'workers', 'Redis', 'Postgres', 'total', 'total per response', 'total × hello API', 'Redis × hello API']);
  row(Array(10).fill('---'));
  for (const c of cpuPerOp(r.scenarios)) {
    const x = (v: number | undefined) => (v === undefined ? '—' : `${v.toFixed(1)}×`);
    row([c.name, int(c.accepted), int(c.us.api), int(c.us.workers), int(c.us.redis), int(c.us.postgres), int(c.total), int(c.totalPerResponse), x(c.totalVsHello), x(c.redisVsHello)]);
  }

  const t = targets(r);
  if (t.length > 0) {
    lines.push('', '## Targets (issue 11, this run)', '');
    for (const x of t) lines.push(`- ${x.ok ? '✓' : '✗'} ${x.name}: ${x.detail}`);
  }

  lines.push('', `Peak RSS: API ${r.rssPeakMb.api.toFixed(0)} MB · workers ${r.rssPeakMb.workers.toFixed(0)} MB`, '');
  lines.push(
    `${memoryLine(r.memory)}. The total includes op records (kept IDEMPOTENCY_TTL_SECONDS for replays) ` +
      `and completed persist jobs (${keptJobs()}, their ops dropped once persisted).`,
    '',
  );
  lines.push(
    `Seed: ${int(r.seed.members)} members inserted in ${r.seed.insertSeconds.toFixed(1)} s; ` +
      `grants ${r.seed.grantSeconds.toFixed(1)} s (${int(r.seed.grantsPerSec)}/s).`,
    '',
  );

  lines.push('## Invariant checks', '');
  for (const s of r.scenarios) {
    lines.push(`**${s.name}**${s.stats.resolvedAfterStop ? ` (${s.stats.resolvedAfterStop} writes in flight at stop, resolved by replaying their key)` : ''}`);
    for (const c of s.checks) lines.push(`- ${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
    lines.push('');
  }
  lines.push('**Postgres after drain**');
  for (const c of r.final) lines.push(`- ${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
  lines.push('');
  return lines.join('\n');
}

/**
 * bench/results/latest.{json,md,svg}; with BENCH_RESULTS=<file.json> (the cluster bench's runs)
 * only that JSON file instead.
 */
export async function writeResults(r: BenchResults): Promise<string> {
  const md = markdown(r);
  if (process.env.BENCH_RESULTS) {
    await writeFile(process.env.BENCH_RESULTS, `${JSON.stringify(r, null, 2)}\n`);
    return md;
  }
  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'latest.json'), `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(join(dir, 'latest.md'), md);
  await writeFile(join(dir, 'latest.svg'), chartSvg(r));
  return md;
}

/** How long completed persist jobs stay in Redis, from the job options the relay uses. */
function keptJobs(): string {
  const keep = PERSIST_JOB_OPTIONS.removeOnComplete;
  if (typeof keep !== 'object' || keep === null) return `removeOnComplete: ${String(keep)}`;
  const age = 'age' in keep ? keep.age : undefined;
  const parts = [age !== undefined ? `${age} s` : '', keep.count !== undefined ? `at most ${int(keep.count)} jobs` : ''];
  return `kept ${parts.filter(Boolean).join(', ')}`;
}
