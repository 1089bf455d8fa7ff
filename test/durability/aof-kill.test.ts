/**
 * Redis with `appendonly yes` + `appendfsync always`, killed -9 in the middle of a redemption
 * load and restarted from its AOF: every acknowledged redemption is still in Redis and reaches
 * Postgres exactly once, and Redis and Postgres agree on every balance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { redisServer, type RedisServer } from '../support/redis-server.ts';

let server: RedisServer;
let ctx: TestContext;
beforeAll(async () => {
  server = await redisServer(['--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction']);
  ctx = await createTestContext({ REDIS_URL: server.url });
});
afterAll(async () => {
  await ctx?.close().catch(() => {});
  await server?.destroy();
});

describe('Redis killed -9 under load with AOF (appendfsync always)', () => {
  it('keeps every acknowledged redemption and persists it exactly once', async () => {
    const pipeline = await ctx.startPipeline(4, { lockMs: 1000 });
    const members = await ctx.createMembers(100);
    await Promise.all(members.map((m) => ctx.grant(m.id, 10_000)));
    const goods = await ctx.createGoods({ pointsPrice: 100, stock: 100_000 });

    const acked: Array<{ member: number; id: string }> = [];
    let failures = 0;
    let killed = false;
    const wave = async (n: number) =>
      Promise.all(
        members.map(async (m) => {
          const r = await ctx.app.inject({
            method: 'POST',
            url: '/v1/redemptions',
            headers: { authorization: `Bearer ${m.token}`, 'idempotency-key': `w${n}-${m.id}` },
            payload: { goodsId: goods.id, quantity: 1 },
          });
          if (r.statusCode === 201) acked.push({ member: m.id, id: r.json().id });
          else {
            failures++;
            expect(r.statusCode).toBe(503); // never a 500 while Redis is down
          }
        }),
      );
    const load = (async () => {
      for (let n = 0; n < 12; n++) await wave(n);
    })();
    while (acked.length < 300) await new Promise((r) => setTimeout(r, 5));
    await server.kill9();
    killed = true;
    await new Promise((r) => setTimeout(r, 300));
    await server.start();
    await load;
    expect(killed).toBe(true);
    expect(failures).toBeGreaterThan(0);

    // every acknowledged op survived the crash
    for (const a of acked) expect(await ctx.app.points.findOwnOpById(a.member, a.id)).not.toBeNull();
    await pipeline.drain(60_000);
    const rows = await ctx.sql<Array<{ id: string }>>`SELECT id FROM redemptions`;
    const persisted = new Set(rows.map((r) => r.id));
    expect(rows.length).toBe(persisted.size);
    for (const a of acked) expect(persisted.has(a.id)).toBe(true);
    const dupes = await ctx.sql`SELECT op_id FROM ledger_entries GROUP BY op_id HAVING count(*) > 1`;
    expect(dupes).toHaveLength(0);

    // Redis and Postgres agree on every member; each balance accounts for what was persisted
    const byMember = await ctx.sql<Array<{ userId: number; n: number }>>`
      SELECT user_id AS "userId", count(*)::int AS n FROM redemptions GROUP BY user_id`;
    const count = new Map(byMember.map((r) => [r.userId, r.n]));
    const accounts = await ctx.sql<Array<{ userId: number; available: number }>>`
      SELECT user_id AS "userId", available FROM point_accounts WHERE user_id = ANY(${members.map((m) => m.id)}::bigint[])`;
    for (const a of accounts) {
      const live = Number(await ctx.redis.hget(ctx.keys.account(a.userId), 'avail'));
      expect(live).toBe(a.available);
      expect(live).toBe(10_000 - 100 * (count.get(a.userId) ?? 0));
    }
  }, 120_000);
});
