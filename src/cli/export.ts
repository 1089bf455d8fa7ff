/**
 * npm run export -- <redemptions|ledger> [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--format csv|xlsx] [--out FILE]
 * The same files as GET /v1/admin/exports/…, written straight from Postgres with a progress bar
 * (on stderr). Without --out the file is named like the endpoint's attachment.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { loadEnv } from '../config/env.ts';
import { createDb } from '../db/client.ts';
import { parseWindow } from '../analytics/window.ts';
import { EXPORT_FORMATS, EXPORT_KINDS, ExportService, type ExportFormat, type ExportKind } from '../exports/service.ts';
import { checkPostgres, oneLineErrors } from './preflight.ts';

await oneLineErrors(async () => {
  const { values, positionals } = parseArgs({
    options: { from: { type: 'string' }, to: { type: 'string' }, format: { type: 'string', default: 'csv' }, out: { type: 'string' } },
    allowPositionals: true,
  });
  const [kind] = positionals;
  if (positionals.length !== 1 || !(EXPORT_KINDS as readonly string[]).includes(kind)) throw new Error(`say what to export: ${EXPORT_KINDS.join(' or ')}`);
  if (!(EXPORT_FORMATS as readonly string[]).includes(values.format)) throw new Error(`--format is ${EXPORT_FORMATS.join(' or ')}`);
  const env = loadEnv();
  await checkPostgres(env);
  const window = parseWindow(env.BUSINESS_TIMEZONE, values.from, values.to);
  // an export reads for as long as it takes: no statement timeout
  const db = createDb(env.DATABASE_URL, 2, { DATABASE_STATEMENT_TIMEOUT_MS: 0, DATABASE_LOCK_TIMEOUT_MS: env.DATABASE_LOCK_TIMEOUT_MS });
  try {
    const exports = new ExportService(db.sql, { timeZone: env.BUSINESS_TIMEZONE, batch: env.EXPORT_BATCH, maxConcurrent: 1 });
    const total = await exports.count(kind as ExportKind, window);
    const bar = new cliProgress.SingleBar({ format: `${kind} {bar} {percentage}% | {value}/{total} rows | {eta_formatted} left`, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
    bar.start(total, 0);
    const file = exports.open(kind as ExportKind, values.format as ExportFormat, window, (n) => bar.increment(n));
    const out = values.out ?? file.filename;
    try {
      await pipeline(file.stream, createWriteStream(out));
    } finally {
      bar.stop();
    }
    console.log(`wrote ${out}: ${total} rows from ${window.from} to ${window.to}`);
  } finally {
    await db.close();
  }
});
