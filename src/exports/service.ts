/**
 * Exports of redemptions and ledger rows between two business days, as CSV or XLSX streams
 * read through a Postgres cursor (EXPORT_BATCH rows at a time), for the admin endpoints and the
 * `npm run export` CLI alike. At most EXPORT_MAX_CONCURRENT run at once per process: each holds
 * a database connection for as long as its client reads.
 */
import type { Readable } from 'node:stream';
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { Window } from '../analytics/window.ts';
import { csvStream, xlsxStream, type Cell, type Column } from './writers.ts';

export const EXPORT_KINDS = ['redemptions', 'ledger'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];
export const EXPORT_FORMATS = ['csv', 'xlsx'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

export const COLUMNS: Record<ExportKind, Column[]> = {
  redemptions: [
    { header: 'Exchange no', width: 26 },
    { header: 'Member', text: true, width: 20 },
    { header: 'Goods', text: true, width: 30 },
    { header: 'Quantity', width: 10 },
    { header: 'Points', width: 10 },
    { header: 'Time', width: 22 },
    { header: 'Status', width: 12 },
  ],
  ledger: [
    { header: 'Entry', width: 12 },
    { header: 'Op id', width: 36 },
    { header: 'Member', text: true, width: 20 },
    { header: 'Kind', width: 10 },
    { header: 'Biz type', text: true, width: 16 },
    { header: 'Biz id', text: true, width: 36 },
    { header: 'Delta', width: 10 },
    { header: 'Balance after', width: 14 },
    { header: 'Time', width: 22 },
  ],
};

export interface ExportFile {
  filename: string;
  contentType: string;
  stream: Readable;
}

export class ExportService {
  private running = 0;

  constructor(
    private readonly sql: Sql,
    private readonly o: { timeZone: string; batch: number; maxConcurrent: number },
  ) {}

  /** The file for a window of business days; throws EXPORT_BUSY when too many exports are running. */
  open(kind: ExportKind, format: ExportFormat, w: Window, onRows?: (n: number) => void): ExportFile {
    if (this.running >= this.o.maxConcurrent) throw new DomainError('EXPORT_BUSY', `${this.running} exports are running; try again shortly`);
    this.running++;
    let released = false;
    const release = () => {
      if (!released) this.running--;
      released = true;
    };
    const batches = this.rows(kind, w, onRows);
    const stream = format === 'csv' ? csvStream(COLUMNS[kind], batches) : xlsxStream(COLUMNS[kind], batches, kind);
    stream.once('close', release);
    stream.once('end', release);
    stream.once('error', release);
    return { filename: `${kind}_${w.from}_${w.to}.${format}`, contentType: CONTENT_TYPES[format], stream };
  }

  /** Rows of the window (for a progress bar: how many there are). */
  async count(kind: ExportKind, w: Window): Promise<number> {
    const { lo, hi } = this.bounds(w);
    const table = kind === 'redemptions' ? this.sql`redemptions` : this.sql`ledger_entries`;
    const [{ n }] = await this.sql<Array<{ n: number }>>`SELECT count(*)::bigint AS n FROM ${table} WHERE created_at >= ${lo} AND created_at < ${hi}`;
    return n;
  }

  private bounds(w: Window, sql: Sql = this.sql) {
    return {
      lo: sql`(${w.from}::date::timestamp AT TIME ZONE ${this.o.timeZone})`,
      hi: sql`((${w.to}::date + 1)::timestamp AT TIME ZONE ${this.o.timeZone})`,
    };
  }

  private async *rows(kind: ExportKind, w: Window, onRows?: (n: number) => void): AsyncGenerator<Cell[][]> {
    // One connection for the whole export, without the statement timeout: a cursor's statement
    // lasts as long as the client takes to read (a million XLSX rows: about a minute).
    const sql = await this.sql.reserve();
    try {
      await sql`SET statement_timeout = 0`;
      const { lo, hi } = this.bounds(w, sql);
      const query =
        kind === 'redemptions'
          ? sql<Record<string, Cell>[]>`
              SELECT r.exchange_no, coalesce(u.username, r.user_id::text) AS member, coalesce(g.name, r.goods_id::text) AS goods,
                     r.quantity, r.points_spent, r.created_at, r.status
              FROM redemptions r LEFT JOIN users u ON u.id = r.user_id LEFT JOIN goods g ON g.id = r.goods_id
              WHERE r.created_at >= ${lo} AND r.created_at < ${hi}
              ORDER BY r.created_at, r.id`.values()
          : sql<Record<string, Cell>[]>`
              SELECT l.id, l.op_id, coalesce(u.username, l.user_id::text) AS member, l.kind, l.biz_type, l.biz_id,
                     l.delta, l.balance_after, l.created_at
              FROM ledger_entries l LEFT JOIN users u ON u.id = l.user_id
              WHERE l.created_at >= ${lo} AND l.created_at < ${hi}
              ORDER BY l.created_at, l.id`.values();
      for await (const rows of query.cursor(this.o.batch)) {
        yield rows as unknown as Cell[][];
        onRows?.(rows.length);
      }
    } finally {
      await sql`RESET statement_timeout`.catch(() => {});
      sql.release();
    }
  }
}
