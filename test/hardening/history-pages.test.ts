/**
 * A page of a member's history reads about a page of index entries, however long the history.
 * The (user, created_at DESC, id DESC) indexes are built NULLS LAST; a query ordered by plain
 * `DESC` (NULLS FIRST) cannot take its order from them, so Postgres read every entry of the member
 * and sorted them for each page. Checked with Postgres's own counters (index entries read), for a
 * member with 3,000 entries of each kind, each list and its next page asked eight times through the
 * API's pool (custom plans, mostly: test/push/record-indexes.test.ts checks generic plans too).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../api/helpers.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let heavy: { id: number; token: string };
const N = 3000;
const LIMIT = 20;
const CALLS = 8;

beforeAll(async () => {
  ctx = await createTestContext();
  const [m, other] = await ctx.createMembers(2);
  heavy = m;
  const at = (n: string) => `now() - (${n} || ' minutes')::interval`;
  await ctx.sql.unsafe(`
    INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, created_at)
    SELECT 'hpl' || n, ${m.id}, 1, n, 'earn', 'share', '1', ${at('n')} FROM generate_series(1, ${N}) n`);
  await ctx.sql.unsafe(`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, created_at)
    SELECT 'hpr' || n, 'hpr' || n, 'HPR' || n, ${m.id}, 7, 1, 10, ${at('n')} FROM generate_series(1, ${N}) n`);
  await ctx.sql.unsafe(`
    INSERT INTO transfers (id, from_user_id, to_user_id, amount, note, parts, day, created_at, completed_at)
    SELECT 'hpt' || n, CASE WHEN n % 2 = 0 THEN ${m.id} ELSE ${other.id} END, CASE WHEN n % 2 = 0 THEN ${other.id} ELSE ${m.id} END,
           5, NULL, '[]'::jsonb, 1, ${at('n')}, ${at('n')}
    FROM generate_series(1, ${N}) n`);
  await ctx.sql.unsafe(`
    INSERT INTO lottery_draws (draw_id, lottery_id, user_id, cost, prize_id, prize_name, prize_kind, day, created_at)
    SELECT 'hpd' || n, 1, ${m.id}, 10, 1, 'Nothing', 'none', 1, ${at('n')} FROM generate_series(1, ${N}) n`);
  await ctx.sql`ANALYZE ledger_entries, redemptions, transfers, lottery_draws`;
});

afterAll(async () => ctx?.close());

type Counts = Record<string, { scans: number; read: number }>;

async function counts(indexes: string[]): Promise<Counts> {
  const rows = await ctx.sql<Array<{ name: string; scans: string; read: string }>>`
    SELECT indexrelname AS name, idx_scan::text AS scans, idx_tup_read::text AS read
    FROM pg_stat_user_indexes WHERE indexrelname = ANY(${indexes}::text[])`;
  return Object.fromEntries(rows.map((r) => [r.name, { scans: Number(r.scans), read: Number(r.read) }]));
}

const LISTS = [
  { url: '/v1/me/ledger', indexes: ['ledger_entries_user_time'] },
  { url: '/v1/me/redemptions', indexes: ['redemptions_user_time'] },
  { url: '/v1/me/transfers', indexes: ['transfers_from_time', 'transfers_to_time'] },
  { url: '/v1/me/lottery-draws', indexes: ['lottery_draws_user_time'] },
];

describe("a member's history pages", () => {
  it('read about a page of index entries each, not the whole history', { timeout: 60_000 }, async () => {
    const indexes = LISTS.flatMap((l) => l.indexes);
    const before = await counts(indexes);
    for (const list of LISTS) {
      let last: string[] = [];
      for (let i = 0; i < CALLS; i++) {
        const res = await ctx.app.inject({ url: `${list.url}?limit=${LIMIT}`, headers: bearer(heavy.token) });
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json() as { items: Array<{ createdAt: string }>; nextCursor: string | null };
        expect(body.items).toHaveLength(LIMIT);
        expect(body.nextCursor).not.toBeNull();
        const times = body.items.map((r) => r.createdAt);
        expect([...times].sort().reverse()).toEqual(times);
        if (i > 0) expect(times).toEqual(last);
        last = times;
        // and the next page follows on
        const next = await ctx.app.inject({ url: `${list.url}?limit=${LIMIT}&cursor=${encodeURIComponent(body.nextCursor!)}`, headers: bearer(heavy.token) });
        expect(next.statusCode, next.body).toBe(200);
        const more = (next.json() as { items: Array<{ createdAt: string }> }).items;
        expect(more).toHaveLength(LIMIT);
        expect(more[0].createdAt < times[LIMIT - 1]).toBe(true);
      }
    }
    // the API's connections report their counts when idle (at most ~10 s later)
    const expectedScans = CALLS * 2;
    let after = await counts(indexes);
    const deadline = Date.now() + 30_000;
    while (indexes.some((i) => (after[i]?.scans ?? 0) - (before[i]?.scans ?? 0) < expectedScans) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      after = await counts(indexes);
    }
    for (const i of indexes) {
      const scans = after[i].scans - (before[i]?.scans ?? 0);
      const read = after[i].read - (before[i]?.read ?? 0);
      expect(scans, i).toBeGreaterThanOrEqual(expectedScans);
      // a page is LIMIT + 1 rows (the +1 tells whether another page follows); the whole history is N
      expect(read / scans, `${i}: index entries read per page`).toBeLessThanOrEqual(LIMIT + 2);
    }
  });
});
