/**
 * Keyset paging of a member's history: GET /v1/me/ledger and GET /v1/me/redemptions, newest
 * first by (created_at, id). Many rows share a created_at (ops in the same millisecond; here
 * forced in groups that straddle page boundaries): following nextCursor must return every item
 * exactly once, in order, with full pages until the last, whose nextCursor is null — for page
 * sizes that divide the item count and sizes that do not. Another member's rows never show up.
 * A cursor altered by the client is refused with 400.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';
import { expectError } from './helpers.ts';

const REDEMPTIONS = 22;
const SHARES = 5; // the seeded 'share' rule allows 5 a day
const TIE_GROUP = 4; // rows per shared created_at
const BASE_MS = Date.UTC(2026, 0, 1);

let ctx: TestContext;
let member: { id: number; token: string };
let other: { id: number; token: string };
/** Expected order of each list, straight from Postgres. */
let ledgerOrder: string[];
let redemptionOrder: string[];

const list = (url: string, token = member.token) =>
  ctx.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  ctx = await createTestContext();
  const pipeline = await ctx.startPipeline();
  [member, other] = await ctx.createMembers(2);
  const goods = await ctx.createGoods({ pointsPrice: 10, stock: 1000 });
  for (const m of [member, other]) {
    await ctx.grant(m.id, 10_000);
    for (let i = 0; i < REDEMPTIONS; i++) expect((await redeemAs(ctx, m.token, goods.id, `r-${i}`)).statusCode).toBe(201);
    for (let i = 0; i < SHARES; i++) await ctx.app.points.earn(m.id, 'share', `s-${i}`);
  }
  await pipeline.drain();
  await pipeline.stop();

  // ties: consecutive rows in groups of TIE_GROUP get one created_at (millisecond precision, as
  // ops are stamped), for both members, so groups cross page boundaries and members interleave
  for (const table of ['ledger_entries', 'redemptions'] as const) {
    await ctx.sql.unsafe(`
      UPDATE ${table} t SET created_at = to_timestamp((${BASE_MS} + r.g) / 1000.0)
      FROM (SELECT id, (row_number() OVER (PARTITION BY user_id ORDER BY id) - 1) / ${TIE_GROUP} AS g FROM ${table}) r
      WHERE r.id = t.id`);
  }
  ledgerOrder = (
    await ctx.sql<Array<{ opId: string }>>`
      SELECT op_id AS "opId" FROM ledger_entries WHERE user_id = ${member.id} ORDER BY created_at DESC, id DESC`
  ).map((r) => r.opId);
  redemptionOrder = (
    await ctx.sql<Array<{ id: string }>>`SELECT id FROM redemptions WHERE user_id = ${member.id} ORDER BY created_at DESC, id DESC`
  ).map((r) => r.id);
});

afterAll(async () => {
  await ctx?.close();
});

/** Follows nextCursor from the first page to the last; returns the pages' item keys. */
async function pageThrough(path: string, limit: number, key: (item: Record<string, unknown>) => string) {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const res = await list(`${path}?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { items: Array<Record<string, unknown>>; nextCursor: string | null };
    pages.push(body.items.map(key));
    cursor = body.nextCursor;
    if (cursor !== null) expect(body.items, 'a page followed by another is full').toHaveLength(limit);
    expect(pages.length, 'pages').toBeLessThanOrEqual(100);
  } while (cursor !== null);
  return pages;
}

describe('history paging', () => {
  it('has rows sharing a created_at across page boundaries', async () => {
    expect(ledgerOrder).toHaveLength(1 + REDEMPTIONS + SHARES);
    expect(redemptionOrder).toHaveLength(REDEMPTIONS);
    const [{ tied }] = await ctx.sql<Array<{ tied: number }>>`
      SELECT count(*)::int AS tied FROM (
        SELECT created_at FROM ledger_entries WHERE user_id = ${member.id} GROUP BY created_at HAVING count(*) > 1) t`;
    expect(tied).toBeGreaterThan(3);
  });

  for (const [path, key] of [
    ['/v1/me/ledger', (i: Record<string, unknown>) => String(i.opId)],
    ['/v1/me/redemptions', (i: Record<string, unknown>) => String(i.id)],
  ] as const) {
    it(`${path}: every item exactly once, in order, for page sizes that do and do not divide the count`, async () => {
      const expected = path === '/v1/me/ledger' ? ledgerOrder : redemptionOrder;
      for (const limit of [1, 3, TIE_GROUP, expected.length / 2, expected.length - 1, expected.length, 100]) {
        const pages = await pageThrough(path, limit, key);
        const items = pages.flat();
        expect({ limit, items }).toEqual({ limit, items: expected });
        expect(pages.length, `pages of ${limit}`).toBe(Math.max(1, Math.ceil(expected.length / limit)));
      }
    });
  }

  it('shows another member only their own history', async () => {
    const ledger = (await list('/v1/me/ledger?limit=100', other.token)).json() as { items: Array<{ opId: string }> };
    const redemptions = (await list('/v1/me/redemptions?limit=100', other.token)).json() as { items: Array<{ id: string }> };
    expect(ledger.items).toHaveLength(ledgerOrder.length);
    expect(ledger.items.filter((i) => ledgerOrder.includes(i.opId))).toEqual([]);
    expect(redemptions.items).toHaveLength(redemptionOrder.length);
    expect(redemptions.items.filter((i) => redemptionOrder.includes(i.id))).toEqual([]);
  });

  it('refuses a malformed or altered cursor with 400 on both lists', async () => {
    const real = (await list('/v1/me/ledger?limit=3')).json().nextCursor as string;
    const enc = (text: string) => Buffer.from(text).toString('base64url');
    const tampered = {
      'not base64': '!!not-a-cursor!!',
      'truncated': real.slice(0, 8),
      'no separator': enc('1767225600000'),
      'time not a number': enc('soon:12'),
      'time too long': enc(`${'9'.repeat(16)}:12`),
      'id with foreign characters': enc('1767225600000:12;drop'),
      'id too long': enc(`1767225600000:${'a'.repeat(65)}`),
      'empty id': enc('1767225600000:'),
      'trailing text': enc(`${Buffer.from(real, 'base64url').toString()} and more`),
    };
    const wrong: string[] = [];
    for (const path of ['/v1/me/ledger', '/v1/me/redemptions']) {
      for (const [what, cursor] of Object.entries(tampered)) {
        const res = await list(`${path}?limit=3&cursor=${encodeURIComponent(cursor)}`);
        if (res.statusCode !== 400 || res.json().code !== 'VALIDATION_FAILED') wrong.push(`${path} ${what}: ${res.statusCode} ${res.body.slice(0, 120)}`);
        else expectError(res, 400, 'VALIDATION_FAILED');
      }
    }
    expect(wrong).toEqual([]);
  });

  it('refuses a ledger cursor whose id is beyond any ledger id with 400', async () => {
    const res = await list(`/v1/me/ledger?limit=3&cursor=${Buffer.from('1767225600000:99999999999999999999').toString('base64url')}`);
    expectError(res, 400, 'VALIDATION_FAILED');
  });

  // Known product defect, reported and left to the ledger's owner: src/points/ledger.ts answers a
  // well-formed cursor with a non-numeric id (ledger cursors always carry the numeric row id) with
  // 200 and an empty last page, so a client cannot tell a corrupted cursor from the end of the
  // list. it.fails flips to a failure once the listing refuses it.
  it.fails('refuses a ledger cursor whose id is not a ledger id (letters) with 400, rather than an empty last page', async () => {
    const res = await list(`/v1/me/ledger?limit=3&cursor=${Buffer.from('1767225600000:abc').toString('base64url')}`);
    expectError(res, 400, 'VALIDATION_FAILED');
  });
});
