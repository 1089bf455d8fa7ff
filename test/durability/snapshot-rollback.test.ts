/**
 * Redis comes back *behind* Postgres — what restoring an older snapshot, an OS crash under
 * `appendfsync everysec`, or a failover to a lagging replica does. The API must refuse writes
 * (not ready) until reconcile has rolled Redis forward; then drift is 0 and no persisted op is
 * applied twice.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { Reconciler } from '../../src/recovery/reconcile.ts';
import { rollForward } from '../../src/recovery/roll-forward.ts';
import { redisLag } from '../../src/recovery/watermark.ts';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';
import { redisServer, type RedisServer } from '../support/redis-server.ts';

let server: RedisServer;
let ctx: TestContext;
beforeAll(async () => {
  server = await redisServer(['--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction']);
  ctx = await createTestContext({ REDIS_URL: server.url, LAG_CHECK_MS: 100 });
});
afterAll(async () => {
  await ctx?.close().catch(() => {});
  await server?.destroy();
});

const redeem = (token: string, goodsId: number, key: string) => redeemAs(ctx, token, goodsId, key);

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Redis restored from an older snapshot', () => {
  it('refuses writes until rolled forward, then matches Postgres with every op applied once', async () => {
    // a short job lock: jobs the snapshot shows as active are redelivered quickly after the restore
    const pipeline = await ctx.startPipeline(4, { lockMs: 1000 });
    const members = await ctx.createMembers(60);
    await Promise.all(members.map((m) => ctx.grant(m.id, 1000)));
    const goods = await ctx.createGoods({ pointsPrice: 100, stock: 500, perUserLimit: 5 });

    // phase 1, then a snapshot taken mid-load
    const phase1 = await Promise.all(members.map((m) => redeem(m.token, goods.id, `p1-${m.id}`)));
    expect(phase1.every((r) => r.statusCode === 201)).toBe(true);
    await ctx.redis.save();
    copyFileSync(join(server.dir, 'dump.rdb'), join(server.dir, 'snapshot.rdb'));

    // phase 2: acknowledged and persisted after the snapshot
    const phase2 = await Promise.all(members.map((m) => redeem(m.token, goods.id, `p2-${m.id}`)));
    expect(phase2.every((r) => r.statusCode === 201)).toBe(true);
    await pipeline.drain();
    const [{ n: persisted }] = await ctx.sql`SELECT count(*)::int AS n FROM redemptions`;
    expect(persisted).toBe(120);

    // the crash: Redis comes back with the older snapshot
    await server.kill9();
    copyFileSync(join(server.dir, 'snapshot.rdb'), join(server.dir, 'dump.rdb'));
    await server.start();
    await waitFor('Redis to be seen as behind', async () => (await redisLag(ctx.redis, ctx.keys, ctx.sql)).length > 0);
    await waitFor('the API to notice', async () => ctx.app.redisLag.behind);

    const ready = await ctx.app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().redisCurrent.ok).toBe(false);
    const refused = await redeem(members[0].token, goods.id, 'during-lag');
    expect(refused.statusCode).toBe(503);
    expect(refused.json().code).toBe('SERVICE_UNAVAILABLE');
    expect(refused.headers['retry-after']).toBeDefined();
    // the restored Redis shows the pre-snapshot balance: serving it would let points be spent twice
    expect((await ctx.app.points.balance(members[0].id)).available).toBe(900);

    const queue = new Queue(PERSIST_QUEUE, { connection: createRedis(server.url, 'worker'), prefix: ctx.keys.queuePrefix() });
    try {
      const rolled = await rollForward({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }, { idempotencyTtlSeconds: 3600 });
      expect(rolled.lagging).toBeGreaterThan(0);
      await waitFor('the API to serve writes again', async () => !ctx.app.redisLag.behind);
      expect((await ctx.app.inject({ url: '/health/ready' })).statusCode).toBe(200);

      for (const m of members) expect((await ctx.app.points.balance(m.id)).available).toBe(800);
      expect(Number(await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock'))).toBe(500 - 120);
      // a phase-2 retry replays; it is not charged again
      const retry = await redeem(members[1].token, goods.id, `p2-${members[1].id}`);
      expect(retry.statusCode).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.json().id).toBe(phase2[1].json().id);
      // new business works and persists once
      expect((await redeem(members[2].token, goods.id, 'after-roll-forward')).statusCode).toBe(201);
      await pipeline.drain();
      const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM redemptions`;
      expect(n).toBe(121);
      const dupes = await ctx.sql`SELECT op_id FROM ledger_entries GROUP BY op_id HAVING count(*) > 1`;
      expect(dupes).toHaveLength(0);
      const report = await new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }).run({ confirmDelayMs: 50 });
      expect(report.drifting).toEqual([]);
      expect(report.stockDrift).toEqual([]);
      expect(report.mirrorDrift).toEqual([]);
    } finally {
      await queue.close();
    }
  }, 120_000);
});
