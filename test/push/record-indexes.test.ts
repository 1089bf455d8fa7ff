/**
 * push_records carries one row per redemption (its in-app exchange confirmation), so each index on
 * it is paid by every redemption. A record sent at once (no device) enters four: the primary key,
 * its dedupe key, the anchors by member and the analytics index of anchors. The admin's lists of
 * undelivered records read a partial index such records skip, a member's notifications the
 * anchors by member: both are checked against Postgres's own index counters, with generic plans
 * (a generic plan cannot use a partial index for a bound status, nor an index whose order is not
 * the query's). A push recorded again queues its still-pending records again, found by its key and
 * its anchor.
 */
import postgres from 'postgres';
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue as BullQueue } from 'bullmq';
import { PUSH_QUEUE, sendJobId } from '../../src/push/jobs.ts';
import { PushService } from '../../src/push/service.ts';
import type { Sql } from '../../src/db/client.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
/**
 * One connection whose prepared statements always run their generic plan: what Postgres may settle
 * on after five executions in the API's pool, where a bound value is not known to the planner.
 */
let one: postgres.Sql;
let pushes: PushService;
const MEMBERS = 200;
let firstMember = 0;

beforeAll(async () => {
  ctx = await createTestContext();
  one = postgres(ctx.env.DATABASE_URL, { max: 1, onnotice: () => {}, connection: { plan_cache_mode: 'force_generic_plan' } });
  pushes = new PushService(one as unknown as Sql, undefined as unknown as Queue, {});
  const all = await ctx.createMembers(MEMBERS + 60);
  const members = all.slice(0, MEMBERS);
  firstMember = members[0].id;
  // each of MEMBERS members: 40 in-app notices (sent at once), plus 2 pushes to 2 devices each (an
  // anchor and a device record apiece, pending); 60 other members: 60 dead and 60 failed records
  await ctx.sql`
    INSERT INTO push_records (user_id, device_id, type, title, body, status, sent_at, dedupe_key, created_at)
    SELECT m.id, NULL, 'exchange_confirmation', 'Redemption confirmed', 'b', 'sent', now(), 'ix:' || m.id || ':' || n,
           now() - (n || ' minutes')::interval
    FROM unnest(${members.map((m) => m.id)}::bigint[]) AS m(id), generate_series(1, 40) n`;
  await ctx.sql`
    WITH a AS (
      INSERT INTO push_records (user_id, device_id, type, title, body, status, created_at)
      SELECT m.id, 1, 'broadcast', 'Hello', 'b', 'pending', now() - (n || ' seconds')::interval
      FROM unnest(${members.map((m) => m.id)}::bigint[]) AS m(id), generate_series(1, 2) n
      RETURNING id, user_id, created_at)
    INSERT INTO push_records (user_id, device_id, type, title, body, status, push_id, created_at)
    SELECT a.user_id, 2, 'broadcast', 'Hello', 'b', 'pending', a.id, a.created_at FROM a`;
  await ctx.sql`
    INSERT INTO push_records (user_id, device_id, type, title, body, status, error, created_at)
    SELECT ${all[MEMBERS].id}::bigint + n % 60, 3, 'broadcast', 'Hello', 'b', CASE WHEN n % 2 = 0 THEN 'dead' ELSE 'failed' END,
           'gone', now() - (n || ' hours')::interval
    FROM generate_series(1, 120) n`;
  await ctx.sql`ANALYZE push_records`;
});

afterAll(async () => {
  await one?.end();
  await ctx?.close();
});

/** Index scans Postgres has counted for `index`, this connection's pending counts flushed first. */
async function scans(index: string): Promise<number> {
  await one`SELECT pg_stat_force_next_flush()`;
  await one`SELECT 1`;
  const [row] = await one<Array<{ n: string }>>`SELECT idx_scan::text AS n FROM pg_stat_user_indexes WHERE indexrelname = ${index}`;
  return Number(row.n);
}

const newestFirst = (rows: Array<{ createdAt: string; id: number }>) =>
  rows.every((r, i) => i === 0 || rows[i - 1].createdAt > r.createdAt || (rows[i - 1].createdAt === r.createdAt && rows[i - 1].id > r.id));

describe('push record indexes', () => {
  it('an admin list of undelivered records (dead, failed, pending) reads the undelivered index every time', async () => {
    const before = await scans('push_records_undelivered');
    const runs = 8;
    for (let i = 0; i < runs; i++) {
      for (const status of ['dead', 'failed', 'pending'] as const) {
        const page = await pushes.listByStatus(status, 20);
        expect(page.items).toHaveLength(20);
        expect(page.items.every((r) => r.status === status)).toBe(true);
        expect(newestFirst(page.items)).toBe(true);
        expect(page.nextCursor).not.toBeNull();
      }
    }
    expect((await scans('push_records_undelivered')) - before).toBeGreaterThanOrEqual(runs * 3);
    // the next page carries on where the first stopped
    const first = await pushes.listByStatus('dead', 50);
    const second = await pushes.listByStatus('dead', 50, first.nextCursor!);
    expect(first.items.length + second.items.length).toBe(60);
    expect(new Set([...first.items, ...second.items].map((r) => r.id)).size).toBe(60);
  });

  it("a member's notifications are their pushes (anchors) only, newest first, read through the index of anchors by member", async () => {
    const before = await scans('push_records_member_pushes');
    const runs = 8;
    for (let i = 0; i < runs; i++) {
      const page = await pushes.listForMember(firstMember + i, 10);
      expect(page.items).toHaveLength(10);
      // the two broadcasts (seconds old) before the notices (minutes old); each broadcast once, on 2 devices
      expect(page.items.slice(0, 2).map((p) => [p.type, p.devices])).toEqual([
        ['broadcast', 2],
        ['broadcast', 2],
      ]);
      expect(page.items.slice(2).every((p) => p.type === 'exchange_confirmation' && p.devices === 0 && p.status === 'sent')).toBe(true);
      const rest = await pushes.listForMember(firstMember + i, 10, page.nextCursor!);
      expect(rest.items.every((p) => p.type === 'exchange_confirmation')).toBe(true);
      expect(rest.items[0].createdAt < page.items[9].createdAt).toBe(true);
      expect(rest.nextCursor).not.toBeNull();
      expect(rest.items).toHaveLength(10);
    }
    expect((await scans('push_records_member_pushes')) - before).toBeGreaterThanOrEqual(runs);
  });

  it('a push recorded again queues its still-pending records again, the anchor and other devices alike, not the sent ones', async () => {
    const queue = new BullQueue(PUSH_QUEUE, { connection: ctx.redis, prefix: ctx.keys.queuePrefix(PUSH_QUEUE) });
    try {
      const [a, b] = await ctx.createMembers(2);
      for (const m of [a, b]) {
        await ctx.sql`INSERT INTO devices (user_id, platform, token) SELECT ${m.id}, 'android', 'requeue-' || ${m.id} || '-' || n FROM generate_series(1, 3) n`;
      }
      const push = { type: 'test', title: 'T', body: 'B' };
      const single = await ctx.app.pushes.enqueue(a.id, { ...push, dedupeKey: `requeue:${a.id}` });
      await ctx.app.pushes.enqueueMany([{ ...push, userId: b.id, dedupeKey: `requeue:${b.id}` }]);
      const many = (await ctx.sql<Array<{ id: number }>>`SELECT id FROM push_records WHERE user_id = ${b.id} ORDER BY id`).map((r) => Number(r.id));
      for (const ids of [single.recordIds, many]) {
        expect(ids).toHaveLength(3);
        // the first call died between its commit and its queueing; one device was served meanwhile
        for (const id of ids) await (await queue.getJob(sendJobId(id)))?.remove();
        await ctx.sql`UPDATE push_records SET status = 'sent', sent_at = now() WHERE id = ${ids[1]}`;
      }
      expect(await ctx.app.pushes.enqueue(a.id, { ...push, dedupeKey: `requeue:${a.id}` })).toEqual({ recordIds: [], duplicate: true });
      expect(await ctx.app.pushes.enqueueMany([{ ...push, userId: b.id, dedupeKey: `requeue:${b.id}` }])).toBe(0);
      for (const ids of [single.recordIds, many]) {
        const queued = await Promise.all(ids.map(async (id) => (await queue.getJob(sendJobId(id))) !== undefined));
        expect(queued).toEqual([true, false, true]);
      }
    } finally {
      await queue.close();
    }
  });
});
