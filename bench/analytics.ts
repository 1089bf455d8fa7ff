/**
 * `npm run bench:analytics`: analytics and exports at scale, in a scratch database of their own.
 *   1. generates ANALYTICS_BENCH_ROWS ledger rows (default 10,000,000) over the last 365 days for
 *      ANALYTICS_BENCH_MEMBERS members (default 100,000, signing up over the year), and
 *      ANALYTICS_BENCH_REDEMPTIONS redemptions (default 1,000,000), with generate_series in
 *      Postgres (the secondary indexes are dropped for the load and built after it);
 *   2. runs the rollup from nothing, as the analytics role's first run would, and times it;
 *   3. starts the API on that database and times GET /v1/admin/analytics/overview over the year
 *      (first call and the median of 10);
 *   4. downloads every redemption as CSV and as XLSX through GET /v1/admin/exports/redemptions,
 *      sampling the API process's resident memory every 50 ms (and a tenth of them first, to
 *      compare: flat memory shows the same peak);
 * and writes bench/results/analytics.md. The rows are shaped for volume, not for consistent
 * balances: the figures are timings, not business results. ANALYTICS_BENCH_REUSE=1 keeps the last
 * run's database (same sizes) and starts at the rollup.
 */
import { bundleApi } from '../src/cli/bundle.ts';
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import postgres from 'postgres';
import cliProgress from 'cli-progress';
import { createSigner } from 'fast-jwt';
import { loadEnv } from '../src/config/env.ts';
import { createDb, type Sql } from '../src/db/client.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { createRedis } from '../src/redis/client.ts';
import { deleteKeys } from '../src/redis/delete-prefix.ts';
import { runRollup } from '../src/analytics/rollup.ts';
import { dayNumber, dayString } from '../src/engagement/business-day.ts';
import { childEnv } from './config.ts';
import { Child, freePort, waitForHttp } from './processes.ts';
import { statusMb } from './procfs.ts';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ExportService } from '../src/exports/service.ts';

const count = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
};

const ROWS = count('ANALYTICS_BENCH_ROWS', 10_000_000);
const MEMBERS = count('ANALYTICS_BENCH_MEMBERS', 100_000);
const REDEMPTIONS = count('ANALYTICS_BENCH_REDEMPTIONS', 1_000_000);
const DAYS = 365;
const GOODS = 200;
const CHUNK = 500_000;
const DB_NAME = 'points_mall_bench_analytics';
/** ANALYTICS_BENCH_REUSE=1: keep the scratch database of the last run (same sizes) instead of generating it again. */
const REUSE = process.env.ANALYTICS_BENCH_REUSE === '1';
const PREFIX = 'pmbenchan';

const log = (msg: string) => console.log(`[bench:analytics] ${msg}`);

async function timed<T>(what: string, fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  log(`${what}: ${(ms / 1000).toFixed(2)} s`);
  return { value, ms };
}

/** Inserts `total` rows `CHUNK` at a time (insert(from, to) covers [from, to]) under a progress bar. */
async function inChunks(label: string, total: number, insert: (from: number, to: number) => Promise<unknown>) {
  const bar = new cliProgress.SingleBar({ format: `${label.padEnd(12)} {bar} {percentage}% | {value}/{total} | {eta_formatted} left` }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  for (let from = 1; from <= total; from += CHUNK) {
    const to = Math.min(total, from + CHUNK - 1);
    await insert(from, to);
    bar.update(to);
  }
  bar.stop();
}

/** Drops a table's secondary indexes for a bulk load; returns what rebuilds them. */
async function withoutIndexes(sql: Sql, table: string, load: () => Promise<void>) {
  const defs = await sql<Array<{ name: string; def: string }>>`
    SELECT i.indexname AS name, i.indexdef AS def FROM pg_indexes i
    WHERE i.tablename = ${table} AND i.indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype = 'p')`;
  for (const d of defs) await sql.unsafe(`DROP INDEX ${d.name}`);
  await load();
  for (const d of defs) await timed(`index ${d.name}`, () => sql.unsafe(d.def));
}

async function generate(sql: Sql, start: string) {
  const t0 = sql`${start}::timestamptz`;
  await timed(`${MEMBERS} members`, () =>
    sql`INSERT INTO users (username, email, password_hash, role, created_at)
        SELECT 'an_' || g, 'an_' || g || '@bench.local', 'x', 'member', ${t0} + (g::float8 / ${MEMBERS} * ${DAYS}) * interval '1 day'
        FROM generate_series(1, ${MEMBERS}) g`,
  );
  await sql`INSERT INTO users (username, email, password_hash, role) VALUES ('an_admin', 'an_admin@bench.local', 'x', 'admin')`;
  await sql`
    INSERT INTO goods (name, type, points_price, total_stock)
    SELECT 'Goods ' || g, 'physical', 100 + g, 1000000 FROM generate_series(1, ${GOODS}) g`;
  const [{ minId }] = await sql<Array<{ minId: number }>>`SELECT min(id) AS "minId" FROM users WHERE role = 'member'`;
  // members join over the year; a row at fraction f of the year goes to one of the members who
  // joined by then (a multiplicative hash spreads them); kinds: 12/20 earn, 6 spend, 1 expire, 1 refund
  const ledger = await timed(`${ROWS} ledger rows`, () =>
    withoutIndexes(sql, 'ledger_entries', () =>
      inChunks('ledger', ROWS, (from, to) => sql`
        INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, created_at)
        SELECT 'bench-' || g, ${minId}::bigint + ((g * 2654435761) % greatest(1, (g::float8 / ${ROWS} * ${MEMBERS})::bigint)),
               CASE WHEN g % 20 < 12 THEN 10 + g % 50 WHEN g % 20 < 18 THEN -(5 + g % 30) WHEN g % 20 = 18 THEN -(1 + g % 10) ELSE 5 END,
               0,
               CASE WHEN g % 20 < 12 THEN 'earn' WHEN g % 20 < 18 THEN 'spend' WHEN g % 20 = 18 THEN 'expire' ELSE 'refund' END,
               'bench', NULL,
               ${t0} + (g::float8 / ${ROWS} * ${DAYS}) * interval '1 day'
        FROM generate_series(${from}::bigint, ${to}::bigint) g`),
    ),
  );
  const redemptions = await timed(`${REDEMPTIONS} redemptions`, () =>
    withoutIndexes(sql, 'redemptions', () =>
      inChunks('redemptions', REDEMPTIONS, (from, to) => sql`
        INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, status, created_at)
        SELECT 'r' || g, 'r' || g, 'EX' || lpad(g::text, 12, '0'),
               ${minId}::bigint + ((g * 40503) % greatest(1, (g::float8 / ${REDEMPTIONS} * ${MEMBERS})::bigint)),
               (SELECT min(id) FROM goods) + g % ${GOODS}, 1 + g % 3, 100 + g % 500,
               (ARRAY['confirmed', 'fulfilled', 'cancelled'])[1 + g % 3],
               ${t0} + (g::float8 / ${REDEMPTIONS} * ${DAYS}) * interval '1 day'
        FROM generate_series(${from}::bigint, ${to}::bigint) g`),
    ),
  );
  await timed('analyze', () => sql`ANALYZE`);
  return { ledgerMs: ledger.ms, redemptionsMs: redemptions.ms };
}

/** Peak resident memory of a process while fn runs (sampled every 50 ms), and its baseline. */
async function rssDuring<T>(pid: number, fn: () => Promise<T>) {
  const before = statusMb(pid, 'VmRSS');
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, statusMb(pid, 'VmRSS'))), 50);
  try {
    const value = await fn();
    return { value, beforeMb: before, peakMb: Math.max(peak, statusMb(pid, 'VmRSS')) };
  } finally {
    clearInterval(timer);
  }
}

async function download(url: string, auth: string) {
  const t0 = performance.now();
  const res = await fetch(url, { headers: { authorization: auth } });
  if (res.status !== 200 || !res.body) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  let bytes = 0;
  let lines = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (const b of chunk) if (b === 10) lines++;
  }
  return { bytes, lines, ms: performance.now() - t0, filename: res.headers.get('content-disposition') };
}

/**
 * The same export in this process, collecting garbage every 100,000 rows: the heap and buffers
 * still referenced then are what the export holds (RSS also counts garbage not yet collected).
 */
async function heldDuringExport(sql: Sql, tz: string, format: 'csv' | 'xlsx', window: { from: string; to: string }) {
  setFlagsFromString('--expose_gc');
  const gc = runInNewContext('gc') as () => void;
  const exports = new ExportService(sql, { timeZone: tz, batch: 1000, maxConcurrent: 1 });
  const held: number[] = [];
  let rows = 0;
  const file = exports.open('redemptions', format, window, (n) => {
    rows += n;
    if (rows % 100_000 === 0) {
      gc();
      const m = process.memoryUsage();
      held.push((m.heapUsed + m.arrayBuffers) / 1024 / 1024);
    }
  });
  await pipeline(file.stream, new Writable({ write: (_chunk, _enc, cb) => setImmediate(cb) }));
  return { rows, minMb: Math.min(...held), maxMb: Math.max(...held) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

async function main() {
  const base = loadEnv();
  const url = new URL(base.DATABASE_URL);
  url.pathname = `/${DB_NAME}`;
  const port = await freePort();
  const env = loadEnv(process.env, { DATABASE_URL: url.toString(), REDIS_PREFIX: PREFIX, HOST: '127.0.0.1', PORT: port, LOG_LEVEL: 'warn' });
  const tz = env.BUSINESS_TIMEZONE;
  const today = dayNumber(tz, Date.now());
  const first = dayString(today - DAYS);
  const last = dayString(today - 1);

  const admin = new URL(base.DATABASE_URL);
  admin.pathname = '/postgres';
  if (!REUSE) {
    const pg = postgres(admin.toString(), { max: 1, onnotice: () => {} });
    await pg.unsafe(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
    await pg.end();
    await timed('migrate scratch database', () => migrateDatabase(env.DATABASE_URL));
  }
  const db = createDb(env.DATABASE_URL, 4, { DATABASE_STATEMENT_TIMEOUT_MS: 0, DATABASE_LOCK_TIMEOUT_MS: 0 });
  const redis = createRedis(env, 'api');
  let api: Child | undefined;
  try {
    const gen = REUSE ? { ledgerMs: NaN, redemptionsMs: NaN } : await generate(db.sql, `${first}T00:00:00Z`);
    const [{ size }] = await db.sql<Array<{ size: string }>>`SELECT pg_size_pretty(pg_total_relation_size('ledger_entries')) AS size`;

    if (REUSE) await db.sql`TRUNCATE analytics_days, analytics_goods_days, analytics_members`;
    const rollup = await timed('rollup from nothing', () => runRollup(db.sql, { timeZone: tz, recomputeDays: 2 }));
    const again = await timed('rollup again (a scheduled run)', () => runRollup(db.sql, { timeZone: tz, recomputeDays: 2 }));
    const [{ rollupSize }] = await db.sql<Array<{ rollupSize: string }>>`
      SELECT pg_size_pretty(pg_total_relation_size('analytics_days') + pg_total_relation_size('analytics_goods_days') + pg_total_relation_size('analytics_members')) AS "rollupSize"`;

    api = new Child('api', [await bundleApi()], childEnv(env));
    await waitForHttp(api, `http://127.0.0.1:${port}/health/live`);
    const [adminUser] = await db.sql<Array<{ id: number }>>`SELECT id FROM users WHERE username = 'an_admin'`;
    const sign = createSigner({ key: env.JWT_SECRET, algorithm: 'HS256', expiresIn: '1h' });
    const auth = `Bearer ${sign({ sub: String(adminUser.id), role: 'admin', username: 'an_admin' })}`;

    const overviewUrl = `http://127.0.0.1:${port}/v1/admin/analytics/overview?from=${first}&to=${last}`;
    const overviewTimes: number[] = [];
    let overview: Record<string, unknown> = {};
    for (let i = 0; i < 11; i++) {
      const t0 = performance.now();
      const res = await fetch(overviewUrl, { headers: { authorization: auth } });
      if (res.status !== 200) throw new Error(`overview: ${res.status} ${await res.text()}`);
      overview = (await res.json()) as Record<string, unknown>;
      overviewTimes.push(performance.now() - t0);
    }
    log(`overview over ${DAYS} days: first ${overviewTimes[0].toFixed(0)} ms, median of 10 ${median(overviewTimes.slice(1)).toFixed(0)} ms`);
    const dailyT0 = performance.now();
    await fetch(`http://127.0.0.1:${port}/v1/admin/analytics/daily?metric=dau&from=${first}&to=${last}`, { headers: { authorization: auth } });
    const dailyMs = performance.now() - dailyT0;

    // the last generated redemption falls on today's midnight
    const exportUrl = (format: string) => `http://127.0.0.1:${port}/v1/admin/exports/redemptions?from=${first}&to=${dayString(today)}&format=${format}`;
    // a tenth of the rows first: flat memory means the same peak for ten times the rows
    const tenth = await rssDuring(api.pid, () =>
      download(`http://127.0.0.1:${port}/v1/admin/exports/redemptions?from=${first}&to=${dayString(today - DAYS + DAYS / 10)}&format=csv`, auth),
    );
    log(`CSV, a tenth: ${tenth.value.lines - 1} rows in ${(tenth.value.ms / 1000).toFixed(1)} s; API RSS ${tenth.beforeMb.toFixed(0)} → peak ${tenth.peakMb.toFixed(0)} MB`);
    const csv = await rssDuring(api.pid, () => download(exportUrl('csv'), auth));
    log(`CSV: ${csv.value.lines - 1} rows, ${mb(csv.value.bytes)} MB in ${(csv.value.ms / 1000).toFixed(1)} s; API RSS ${csv.beforeMb.toFixed(0)} → peak ${csv.peakMb.toFixed(0)} MB`);
    const xlsx = await rssDuring(api.pid, () => download(exportUrl('xlsx'), auth));
    log(`XLSX: ${mb(xlsx.value.bytes)} MB in ${(xlsx.value.ms / 1000).toFixed(1)} s; API RSS ${xlsx.beforeMb.toFixed(0)} → peak ${xlsx.peakMb.toFixed(0)} MB`);

    const exportWindow = { from: first, to: dayString(today) };
    const heldCsv = await heldDuringExport(db.sql, tz, 'csv', exportWindow);
    const heldXlsx = await heldDuringExport(db.sql, tz, 'xlsx', exportWindow);
    log(`held by an export after GC, every 100,000 rows: CSV ${heldCsv.minMb.toFixed(0)}–${heldCsv.maxMb.toFixed(0)} MB, XLSX ${heldXlsx.minMb.toFixed(0)}–${heldXlsx.maxMb.toFixed(0)} MB`);

    const o = overview as { members: Record<string, unknown>; points: Record<string, unknown>; redemptionRate: { rate: number }; repurchaseRate: { rate: number } };
    const md = `# Analytics and exports bench

\`npm run bench:analytics\` (bench/analytics.ts), ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'},
Postgres and the API on the same machine, BUSINESS_TIMEZONE ${tz}.

## Data (generate_series in a scratch database)

| | rows | load |
|---|---:|---:|
| ledger_entries (${DAYS} days, ${size} with indexes) | ${ROWS.toLocaleString('en')} | ${REUSE ? 'reused' : `${(gen.ledgerMs / 1000).toFixed(0)} s`} |
| redemptions | ${REDEMPTIONS.toLocaleString('en')} | ${REUSE ? 'reused' : `${(gen.redemptionsMs / 1000).toFixed(0)} s`} |
| members (signing up over the year) | ${MEMBERS.toLocaleString('en')} | |

## Rollup (the analytics role)

| run | days | time |
|---|---:|---:|
| first run, from nothing | ${rollup.value.days} | ${(rollup.ms / 1000).toFixed(1)} s |
| a scheduled run (ANALYTICS_RECOMPUTE_DAYS=2) | ${again.value.days} | ${(again.ms / 1000).toFixed(2)} s |

Rollup tables: ${rollupSize}.

## Reads (HTTP, admin token)

| request | time |
|---|---:|
| overview over ${DAYS} days, first call | ${overviewTimes[0].toFixed(0)} ms |
| overview over ${DAYS} days, median of the next 10 | ${median(overviewTimes.slice(1)).toFixed(0)} ms |
| daily DAU over ${DAYS} days | ${dailyMs.toFixed(0)} ms |

Overview answered: DAU average ${Number(o.members.dauAverage).toFixed(0)}, MAU ${o.members.mau}, active in the year ${o.members.activeInWindow},
issued ${o.points.issued}, spent ${o.points.spent}, redemption rate ${o.redemptionRate.rate?.toFixed(3)}, repurchase rate ${o.repurchaseRate.rate?.toFixed(3)}.

## Exports of every redemption (${REDEMPTIONS.toLocaleString('en')} rows) through GET /v1/admin/exports/redemptions

| format | size | time | API RSS before | API RSS peak |
|---|---:|---:|---:|---:|
| CSV, the first 36 days only | ${(tenth.value.lines - 1).toLocaleString('en')} rows | ${(tenth.value.ms / 1000).toFixed(1)} s | ${tenth.beforeMb.toFixed(0)} MB | ${tenth.peakMb.toFixed(0)} MB |
| CSV | ${mb(csv.value.bytes)} MB (${(csv.value.lines - 1).toLocaleString('en')} rows) | ${(csv.value.ms / 1000).toFixed(1)} s | ${csv.beforeMb.toFixed(0)} MB | ${csv.peakMb.toFixed(0)} MB |
| XLSX | ${mb(xlsx.value.bytes)} MB | ${(xlsx.value.ms / 1000).toFixed(1)} s | ${xlsx.beforeMb.toFixed(0)} MB | ${xlsx.peakMb.toFixed(0)} MB |

Resident memory sampled every 50 ms from /proc; the export reads EXPORT_BATCH (${env.EXPORT_BATCH}) rows at a time through a cursor.
RSS also counts garbage V8 has not collected yet, so it rises with the work done; what an export
holds is measured by running the same export in the bench process and collecting garbage every
100,000 rows: heap in use plus buffers stayed between ${heldCsv.minMb.toFixed(0)} and ${heldCsv.maxMb.toFixed(0)} MB for CSV and between
${heldXlsx.minMb.toFixed(0)} and ${heldXlsx.maxMb.toFixed(0)} MB for XLSX over the ${heldCsv.rows.toLocaleString('en')} rows: flat.
`;
    await writeFile(new URL('./results/analytics.md', import.meta.url), md);
    log('wrote bench/results/analytics.md');
  } finally {
    await api?.stop();
    await deleteKeys(redis, PREFIX).catch(() => {});
    redis.disconnect();
    await db.close();
  }
}

await main();
