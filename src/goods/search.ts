/**
 * Catalog search (GET /v1/goods): text search over name, description and tags in Postgres, filters
 * on category, tag, list price and live stock, four sorts, keyset cursors.
 *
 * Text: a goods item matches `q` when its full-text document matches (websearch syntax: words,
 * "a phrase", -excluded, or), or when every word of `q` appears inside its search text — the
 * partial-word path ("headph" finds "headphones"), answered by a trigram index (pg_trgm).
 *
 * Cursors name the last row of the page in the sort's own key — (list price, id), id, or
 * (redemptions in the window, id) — so inserts, price changes of other rows and deletes never
 * shift a page. `popular` counts redemptions in the 7 days before an instant fixed by the first
 * page and carried in the cursor, so later redemptions do not reorder the pages still to come.
 * `inStock` filters on the live stock in Redis after the rows are read: such a page can hold
 * fewer than `limit` items while `nextCursor` still says there is more to look at.
 */
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { inPopularWindow } from './popularity.ts';
import { GOODS_COLUMNS, normalizeTags, type Goods, type GoodsRow, type GoodsService } from './service.ts';

export const SORTS = ['new', 'price', '-price', 'popular'] as const;
export type Sort = (typeof SORTS)[number];

export interface SearchQuery {
  q?: string;
  category?: number;
  tag?: string;
  minPoints?: number;
  maxPoints?: number;
  inStock?: boolean;
  sort: Sort;
  limit: number;
  cursor?: string;
}

interface Cursor {
  /** the sort it pages */
  s: Sort;
  /** the last row's id, and its sort value (list price; redemptions for popular) */
  i: number;
  v?: number;
  /** popular: the end of the counting window */
  t?: number;
}

type Row = GoodsRow & { pop: number };

/** How many rows one round reads when inStock filters, and how many rounds a page may take. */
const IN_STOCK_ROUNDS = 5;

export class GoodsSearch {
  constructor(
    private readonly sql: Sql,
    private readonly goods: GoodsService,
  ) {}

  async search(o: SearchQuery): Promise<{ items: Goods[]; nextCursor: string | null }> {
    if (o.minPoints !== undefined && o.maxPoints !== undefined && o.minPoints > o.maxPoints) {
      throw new DomainError('VALIDATION_FAILED', 'minPoints must not exceed maxPoints');
    }
    let after = o.cursor ? decodeCursor(o.cursor, o.sort) : null;
    const asOf = after?.t ?? Date.now();
    const batch = o.inStock ? o.limit * 2 : o.limit + 1;
    const items: Goods[] = [];
    let more = false;
    for (let round = 0; round < (o.inStock ? IN_STOCK_ROUNDS : 1); round++) {
      const rows = await this.page(o, after, asOf, batch);
      const listed = await this.goods.withStock(rows);
      let full = false;
      for (let i = 0; i < rows.length && !full; i++) {
        after = cursorOf(o.sort, rows[i], asOf);
        if (!o.inStock || listed[i].stock > 0) items.push(listed[i]);
        full = items.length === o.limit;
        // a full page says there is more if it left rows unread, or read a whole batch
        if (full) more = i < rows.length - 1 || rows.length === batch;
      }
      if (full) break;
      more = rows.length === batch;
      if (!more) break;
    }
    return { items, nextCursor: more && after ? encodeCursor(after) : null };
  }

  private page(o: SearchQuery, after: Cursor | null, asOf: number, batch: number): Promise<Row[]> {
    const { sql } = this;
    const where = [sql`true`];
    if (o.q !== undefined) where.push(textMatch(sql, o.q));
    if (o.category !== undefined) where.push(sql`category_id = ${o.category}`);
    if (o.tag !== undefined) where.push(sql`tags @> ARRAY[${normalizeTags([o.tag])[0]}]::text[]`);
    if (o.minPoints !== undefined) where.push(sql`points_price >= ${o.minPoints}`);
    if (o.maxPoints !== undefined) where.push(sql`points_price <= ${o.maxPoints}`);
    const pop =
      o.sort === 'popular'
        ? sql`(SELECT count(*) FROM redemptions r WHERE r.goods_id = g.id AND ${inPopularWindow(sql, asOf)})`
        : sql`0`;
    return sql<Row[]>`
      SELECT * FROM (
        SELECT ${sql.unsafe(GOODS_COLUMNS)}, ${pop}::bigint AS pop FROM goods g
        WHERE ${where.reduce((a, b) => sql`${a} AND ${b}`)}
      ) x
      WHERE ${after ? keyset(sql, o.sort, after) : sql`true`}
      ${order(sql, o.sort)}
      LIMIT ${batch}`;
  }
}

function textMatch(sql: Sql, q: string) {
  const words = q.toLowerCase().split(/\s+/).filter((w) => w !== '').slice(0, 8);
  const partial = words.map((w) => sql`search_text LIKE ${`%${w.replace(/[\\%_]/g, (c) => `\\${c}`)}%`}`);
  const allWords = partial.length > 0 ? partial.reduce((a, b) => sql`${a} AND ${b}`) : sql`false`;
  return sql`(search @@ websearch_to_tsquery('simple', ${q}) OR (${allWords}))`;
}

function keyset(sql: Sql, sort: Sort, c: Cursor) {
  switch (sort) {
    case 'price':
      return sql`(x."pointsPrice", x.id) > (${c.v ?? 0}, ${c.i})`;
    case '-price':
      return sql`(x."pointsPrice", x.id) < (${c.v ?? 0}, ${c.i})`;
    case 'popular':
      return sql`(x.pop, x.id) < (${c.v ?? 0}, ${c.i})`;
    case 'new':
      return sql`x.id < ${c.i}`;
  }
}

function order(sql: Sql, sort: Sort) {
  switch (sort) {
    case 'price':
      return sql`ORDER BY x."pointsPrice" ASC, x.id ASC`;
    case '-price':
      return sql`ORDER BY x."pointsPrice" DESC, x.id DESC`;
    case 'popular':
      return sql`ORDER BY x.pop DESC, x.id DESC`;
    case 'new':
      return sql`ORDER BY x.id DESC`;
  }
}

function cursorOf(sort: Sort, r: Row, asOf: number): Cursor {
  if (sort === 'new') return { s: sort, i: r.id };
  if (sort === 'popular') return { s: sort, i: r.id, v: r.pop, t: asOf };
  return { s: sort, i: r.id, v: r.pointsPrice };
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function decodeCursor(text: string, sort: Sort): Cursor {
  let c: Partial<Cursor> | null = null;
  try {
    c = JSON.parse(Buffer.from(text, 'base64url').toString()) as Partial<Cursor>;
  } catch {
    c = null;
  }
  const valid =
    c !== null &&
    typeof c === 'object' &&
    c.s === sort &&
    isInt(c.i) &&
    (sort === 'new' || isInt(c.v)) &&
    (sort !== 'popular' || isInt(c.t));
  if (!valid) throw new DomainError('VALIDATION_FAILED', `cursor is not valid for sort=${sort}`);
  return c as Cursor;
}
