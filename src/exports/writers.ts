/**
 * Streaming writers: batches of rows in, CSV or XLSX bytes out, holding one batch at a time, so
 * memory stays flat whatever the row count. CSV follows RFC 4180 (CRLF, fields with a comma,
 * quote or line break quoted, quotes doubled) behind a UTF-8 BOM so spreadsheet programs read
 * UTF-8; text that a spreadsheet would take for a formula (=, +, -, @, tab, CR first) gets a
 * leading apostrophe. XLSX goes through exceljs's streaming WorkbookWriter (rows committed as
 * they come, inline strings: no shared-string table growing with the file).
 */
import { PassThrough, Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type ExcelJS from 'exceljs';

// exceljs (~30 MB resident) is loaded at the first XLSX export, not by every API process at start
const requireCjs = createRequire(import.meta.url);
let excel: typeof ExcelJS | undefined;
const loadExcel = (): typeof ExcelJS => (excel ??= requireCjs('exceljs') as typeof ExcelJS);

export type Cell = string | number | Date | null;

export interface Column {
  header: string;
  /** Free text from users or admins: guarded against formula injection in CSV. */
  text?: boolean;
  width?: number;
}

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(value: Cell, text = false): string {
  if (value === null) return '';
  let s = value instanceof Date ? value.toISOString() : String(value);
  if (text && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvStream(columns: Column[], batches: AsyncIterable<Cell[][]>): Readable {
  return Readable.from(
    (async function* () {
      yield `\uFEFF${columns.map((c) => csvField(c.header)).join(',')}\r\n`;
      for await (const rows of batches) {
        let chunk = '';
        for (const row of rows) chunk += `${row.map((v, i) => csvField(v, columns[i].text)).join(',')}\r\n`;
        yield chunk;
      }
    })(),
  );
}

export function xlsxStream(columns: Column[], batches: AsyncIterable<Cell[][]>, sheet: string): Readable {
  const out = new PassThrough();
  const workbook = new (loadExcel().stream.xlsx.WorkbookWriter)({ stream: out, useStyles: true, useSharedStrings: false });
  const ws = workbook.addWorksheet(sheet);
  ws.columns = columns.map((c, i) => ({ header: c.header, key: String(i), width: c.width ?? 16 }));
  const dateColumns = columns.flatMap((c, i) => (c.header.toLowerCase().includes('time') ? [i + 1] : []));
  for (const i of dateColumns) ws.getColumn(i).numFmt = 'yyyy-mm-dd hh:mm:ss';
  void (async () => {
    for await (const rows of batches) {
      // the client went away: leaving the loop closes the database cursor
      if (out.destroyed) return;
      for (const row of rows) ws.addRow(row).commit();
      // neither exceljs nor the zip writer waits for its reader: hold the next batch while the
      // compressor is behind (see sheetBacklog) or the client is
      while (sheetBacklog(ws) > MAX_SHEET_BACKLOG && !out.destroyed) await new Promise((r) => setTimeout(r, 2));
      if (out.writableNeedDrain) await drainedOrClosed(out);
    }
    ws.commit();
    await workbook.commit();
  })().catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
  return out;
}

/** Bytes of sheet XML written and not yet compressed past which the next batch waits. */
const MAX_SHEET_BACKLOG = 4 * 1024 * 1024;

/**
 * exceljs's worksheet stream writes into a pass-through that the zip writer (archiver) reads,
 * ignoring its backpressure: left alone, a sheet produced faster than it is compressed piles up
 * there (tens of MB per 100,000 rows). Its buffered length is the only measure of that lag; it is
 * internal (exceljs 4.4), so a missing field reads as no lag, and the export test of flat memory
 * would catch the change.
 */
function sheetBacklog(ws: ExcelJS.Worksheet): number {
  const pipe = (ws as unknown as { stream?: { pipes?: Array<{ writableLength?: number; _writableState?: { length?: number } }> } }).stream?.pipes?.[0];
  return pipe?.writableLength ?? pipe?._writableState?.length ?? 0;
}

function drainedOrClosed(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
