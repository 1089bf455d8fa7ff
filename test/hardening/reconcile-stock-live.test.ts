/**
 * Issue 6, item 4: reconcile measures stock as of one Redis instant. A flash sale keeps running
 * while reconcile (with repair on) runs every second: units charged between two reads must never
 * look like drift, so nothing is "repaired" back on sale and nothing is oversold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { Reconciler, type ReconcileReport } from '../../src/recovery/reconcile.ts';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

describe('reconcile during a flash sale', () => {
  it('repairs no stock and oversells nothing while the sale runs', async () => {
    const pipeline = await ctx.startPipeline(2);
    const members = await ctx.createMembers(60);
    await Promise.all(members.map((m) => ctx.grant(m.id, 100_000)));
    const STOCK = 50_000;
    const goods = await ctx.createGoods({ pointsPrice: 1, stock: STOCK });
    const queue = new Queue(PERSIST_QUEUE, { connection: createRedis(ctx.env.REDIS_URL, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
    const reconciler = new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue });

    let selling = true;
    const accepted: string[] = [];
    const clients = members.map(async (m) => {
      for (let k = 0; selling; k++) {
        const res = await redeemAs(ctx, m.token, goods.id, `sale-${m.id}-${k}`, 1 + (k % 3));
        if (res.statusCode === 201) accepted.push(res.json().id);
      }
    });
    const reports: ReconcileReport[] = [];
    const started = Date.now();
    while (Date.now() - started < 8000) {
      const runStarted = Date.now();
      reports.push(await reconciler.run({ repair: true, confirmDelayMs: 150 }));
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - runStarted))));
    }
    selling = false;
    await Promise.all(clients);
    await pipeline.drain(60_000);

    expect(reports.length).toBeGreaterThanOrEqual(4);
    expect(reports.flatMap((r) => r.stockDrift), 'stock drift reported (and repaired) during the sale').toEqual([]);
    const [{ sold }] = await ctx.sql<Array<{ sold: number }>>`
      SELECT COALESCE(SUM(quantity), 0)::int AS sold FROM redemptions WHERE goods_id = ${goods.id}`;
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM redemptions WHERE goods_id = ${goods.id}`;
    expect(n).toBe(accepted.length);
    expect(sold).toBeLessThanOrEqual(STOCK);
    expect(Number(await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock'))).toBe(STOCK - sold);
    await queue.close();
  }, 60_000);
});
