/**
 * Admin exports: redemptions and ledger rows of a window of business days as CSV (RFC 4180,
 * BOM, formula guard) and XLSX (read back with exceljs), with a dated attachment filename;
 * bad parameters are 400, members are refused, and a process runs at most
 * EXPORT_MAX_CONCURRENT exports at once.
 */
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { csvField, xlsxStream, type Cell } from '../../src/exports/writers.ts';
import { childEnv } from '../crash/procs.ts';

const TZ = 'Asia/Shanghai';
let ctx: TestContext;
let admin: { id: number; token: string };
let member: { id: number; token: string };
let plain: { id: number };
let goodsId: number;

const at = (local: string) => new Date(`${local}+08:00`);

async function redemption(userId: number, exchangeNo: string, quantity: number, points: number, local: string, status = 'confirmed') {
  const id = randomUUID();
  await ctx.sql`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, status, created_at)
    VALUES (${id}, ${id}, ${exchangeNo}, ${userId}, ${goodsId}, ${quantity}, ${points}, ${status}, ${at(local)})`;
  await ctx.sql`
    INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, created_at)
    VALUES (${id}, ${userId}, ${-points}, 100, 'spend', 'redemption', ${exchangeNo}, ${at(local)})`;
}

const get = (url: string, token = admin.token) => ctx.app.inject({ url, headers: { authorization: `Bearer ${token}` } });

/** RFC 4180 records of a body (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  expect(field).toBe('');
  expect(row).toEqual([]);
  return rows;
}

beforeAll(async () => {
  ctx = await createTestContext({ BUSINESS_TIMEZONE: TZ });
  admin = await ctx.admin();
  const [m, p] = await ctx.createMembers(2);
  member = m;
  plain = p;
  await ctx.sql`UPDATE users SET username = ${'=HYPERLINK("x")'} WHERE id = ${member.id}`;
  await ctx.sql`UPDATE users SET username = ${'li, "the" one'} WHERE id = ${plain.id}`;
  goodsId = (await ctx.createGoods({ name: 'Tea\nset' })).id;
  await redemption(plain.id, 'EX-1', 2, 200, '2026-03-01 00:10'); // 2026-02-28 UTC: in by the business day
  await redemption(member.id, 'EX-2', 1, 100, '2026-03-02 23:50', 'fulfilled');
  await redemption(plain.id, 'EX-0', 1, 100, '2026-02-28 23:50'); // the day before the window
  await redemption(plain.id, 'EX-3', 1, 100, '2026-03-03 00:00'); // the day after
});
afterAll(async () => ctx?.close());

const URL_CSV = '/v1/admin/exports/redemptions?from=2026-03-01&to=2026-03-02&format=csv';

describe('redemption exports', () => {
  it('streams CSV with the columns, escaping and a dated attachment name', async () => {
    const res = await get(URL_CSV);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('attachment; filename="redemptions_2026-03-01_2026-03-02.csv"');
    expect(res.body.startsWith('\uFEFF')).toBe(true);
    const rows = parseCsv(res.body.slice(1));
    expect(rows).toEqual([
      ['Exchange no', 'Member', 'Goods', 'Quantity', 'Points', 'Time', 'Status'],
      ['EX-1', 'li, "the" one', 'Tea\nset', '2', '200', '2026-02-28T16:10:00.000Z', 'confirmed'],
      ['EX-2', `'=HYPERLINK("x")`, 'Tea\nset', '1', '100', '2026-03-02T15:50:00.000Z', 'fulfilled'],
    ]);
    // the raw text: quotes doubled, fields with a comma, quote or line break quoted
    expect(res.body).toContain('"li, ""the"" one","Tea\nset"');
  });

  it('streams XLSX that exceljs reads back', async () => {
    const res = await get(URL_CSV.replace('format=csv', 'format=xlsx'));
    expect(res.statusCode, res.body.slice(0, 200)).toBe(200);
    expect(res.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    expect(res.headers['content-disposition']).toBe('attachment; filename="redemptions_2026-03-01_2026-03-02.xlsx"');
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(res.rawPayload as unknown as ArrayBuffer);
    const ws = wb.getWorksheet('redemptions');
    expect(ws).toBeDefined();
    const values = ws!.getSheetValues().slice(1).map((r) => (r as ExcelJS.CellValue[]).slice(1));
    expect(values).toEqual([
      ['Exchange no', 'Member', 'Goods', 'Quantity', 'Points', 'Time', 'Status'],
      ['EX-1', 'li, "the" one', 'Tea\nset', 2, 200, new Date('2026-02-28T16:10:00.000Z'), 'confirmed'],
      ['EX-2', '=HYPERLINK("x")', 'Tea\nset', 1, 100, new Date('2026-03-02T15:50:00.000Z'), 'fulfilled'],
    ]);
  });

  it('writes the header alone for an empty window', async () => {
    const res = await get('/v1/admin/exports/redemptions?from=2025-01-01&to=2025-01-31');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toBe('attachment; filename="redemptions_2025-01-01_2025-01-31.csv"');
    expect(parseCsv(res.body.slice(1))).toEqual([['Exchange no', 'Member', 'Goods', 'Quantity', 'Points', 'Time', 'Status']]);
  });
});

describe('ledger exports', () => {
  it('streams the entries of the window in time order', async () => {
    const res = await get('/v1/admin/exports/ledger?from=2026-03-01&to=2026-03-03&format=csv');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toBe('attachment; filename="ledger_2026-03-01_2026-03-03.csv"');
    const rows = parseCsv(res.body.slice(1));
    expect(rows[0]).toEqual(['Entry', 'Op id', 'Member', 'Kind', 'Biz type', 'Biz id', 'Delta', 'Balance after', 'Time']);
    expect(rows.slice(1).map((r) => [r[2], r[3], r[5], r[6]])).toEqual([
      ['li, "the" one', 'spend', 'EX-1', '-200'],
      [`'=HYPERLINK("x")`, 'spend', 'EX-2', '-100'],
      ['li, "the" one', 'spend', 'EX-3', '-100'],
    ]);
  });
});

describe('export requests', () => {
  it('are refused with 400 for bad parameters', async () => {
    for (const q of ['format=pdf', 'from=2026-03-02&to=2026-03-01', 'from=2026-13-01', 'to=tomorrow', 'from=2000-01-01&to=2020-01-01', 'page=2']) {
      expectError(await get(`/v1/admin/exports/redemptions?${q}`), 400, 'VALIDATION_FAILED');
      expectError(await get(`/v1/admin/exports/ledger?${q}`), 400, 'VALIDATION_FAILED');
    }
  });

  it('are for admins only', async () => {
    expectError(await get(URL_CSV, member.token), 403, 'FORBIDDEN');
    expectError(await ctx.app.inject({ url: URL_CSV }), 401, 'UNAUTHORIZED');
  });

  it('run at most EXPORT_MAX_CONCURRENT at once, then answer 429 EXPORT_BUSY', async () => {
    const window = { from: '2026-03-01', to: '2026-03-02' };
    const held = Array.from({ length: ctx.env.EXPORT_MAX_CONCURRENT }, () => ctx.app.exports.open('redemptions', 'csv', window));
    expectError(await get(URL_CSV), 429, 'EXPORT_BUSY');
    for (const f of held) {
      f.stream.destroy();
      await new Promise((r) => f.stream.once('close', r));
    }
    expect((await get(URL_CSV)).statusCode).toBe(200);
  });
});

describe('npm run export', () => {
  it('writes the same CSV as the endpoint to --out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pm-export-'));
    try {
      const out = join(dir, 'r.csv');
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'src/cli/export.ts', 'redemptions', '--from', '2026-03-01', '--to', '2026-03-02', '--format', 'csv', '--out', out],
        { env: childEnv(ctx.env), cwd: new URL('../..', import.meta.url).pathname },
      );
      expect(stdout).toContain(`wrote ${out}: 2 rows from 2026-03-01 to 2026-03-02`);
      expect(await readFile(out, 'utf8')).toBe((await get(URL_CSV)).body);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('xlsx streaming', () => {
  it('holds the rows back while the compressor is behind, so buffers stay flat', async () => {
    const BATCHES = 150;
    let peak = 0;
    async function* batches(): AsyncGenerator<Cell[][]> {
      for (let b = 0; b < BATCHES; b++) {
        if (b % 10 === 0) {
          gc();
          peak = Math.max(peak, process.memoryUsage().arrayBuffers);
        }
        yield Array.from({ length: 1000 }, (_, i) => [`EX${b}-${i}`, 'member name', 'goods name', 1, 100, new Date(), 'confirmed']);
      }
    }
    // buffers still referenced: collect garbage before each sample
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const base = process.memoryUsage().arrayBuffers;
    let bytes = 0;
    for await (const chunk of xlsxStream([{ header: 'a' }, { header: 'b' }, { header: 'c' }, { header: 'd' }, { header: 'e' }, { header: 'Time' }, { header: 'g' }], batches(), 's')) {
      bytes += (chunk as Buffer).length;
    }
    expect(bytes).toBeGreaterThan(1_000_000);
    // unthrottled, exceljs piles ~45 MB of sheet XML per 150,000 rows in front of the compressor
    expect(peak - base).toBeLessThan(12 * 1024 * 1024);
  }, 60_000);
});

describe('csv fields', () => {
  it('quote what needs quoting and guard formulas in text only', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\r\nlines')).toBe('"two\r\nlines"');
    expect(csvField('-5', true)).toBe("'-5");
    expect(csvField('@SUM(A1)', true)).toBe("'@SUM(A1)");
    expect(csvField(-5)).toBe('-5');
    expect(csvField(null)).toBe('');
    expect(csvField(new Date('2026-03-01T00:00:00Z'))).toBe('2026-03-01T00:00:00.000Z');
  });
});
