/**
 * Reconcile: injected drift is detected, reported with the member ids and op ids, and repaired
 * by the documented rule; ops still in flight are never mistaken for drift.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { Reconciler } from '../../src/recovery/reconcile.ts';
import { createLogger } from '../../workers/logger.ts';
import { startReconciler } from '../../workers/reconcile.ts';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let queue: Queue;
let reconciler: Reconciler;
beforeAll(async () => {
  ctx = await createTestContext();
  queue = new Queue(PERSIST_QUEUE, { connection: createRedis(ctx.env.REDIS_URL, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
  reconciler = new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue });
});
afterAll(async () => {
  await queue?.close();
  await ctx?.close();
});

const redeem = (token: string, goodsId: number, key: string) => redeemAs(ctx, token, goodsId, key);

async function settledPopulation(n: number) {
  const pipeline = await ctx.startPipeline();
  const members = await ctx.createMembers(n);
  await Promise.all(members.map((m) => ctx.grant(m.id, 1000)));
  const goods = await ctx.createGoods({ pointsPrice: 100, stock: 1000 });
  await Promise.all(members.map((m) => redeem(m.token, goods.id, `seed-${m.id}`)));
  await pipeline.drain();
  return { pipeline, members, goods };
}

describe('reconcile', () => {
  it('finds nothing on a consistent system', async () => {
    const { pipeline } = await settledPopulation(20);
    const r = await reconciler.run({ confirmDelayMs: 50 });
    expect(r.drifting).toEqual([]);
    expect(r.mirrorDrift).toEqual([]);
    expect(r.stockDrift).toEqual([]);
    expect(r.negative).toEqual([]);
    expect(r.lotMismatch).toEqual([]);
    await pipeline.stop();
  });

  it('detects a balance changed behind the system’s back and sets it back', async () => {
    const { pipeline, members } = await settledPopulation(10);
    const victim = members[3];
    await ctx.redis.hincrby(ctx.keys.account(victim.id), 'avail', 250);
    const r = await reconciler.run({ confirmDelayMs: 50 });
    expect(r.lotMismatch).toContain(victim.id);
    expect(r.drifting).toHaveLength(1);
    expect(r.drifting[0]).toMatchObject({ userId: victim.id, drift: 250, repaired: 'corrected' });
    expect(r.drifting[0].recentOpIds.length).toBeGreaterThan(0);
    expect(Number(await ctx.redis.hget(ctx.keys.account(victim.id), 'avail'))).toBe(900);
    expect((await reconciler.run({ confirmDelayMs: 50 })).drifting).toEqual([]);
    await pipeline.stop();
  });

  it('detects a deleted ledger row and restores the record with an adjust entry', async () => {
    const { pipeline, members } = await settledPopulation(10);
    const victim = members[5];
    const [row] = await ctx.sql`DELETE FROM ledger_entries WHERE user_id = ${victim.id} AND kind = 'spend' RETURNING op_id`;
    const r = await reconciler.run({ confirmDelayMs: 50 });
    expect(r.mirrorDrift.map((m) => m.userId)).toContain(victim.id);
    expect(r.drifting).toHaveLength(1);
    // Redis still holds the spend the member was answered for: the record is brought back to it
    expect(r.drifting[0]).toMatchObject({ userId: victim.id, drift: -100, repaired: 'adjusted' });
    expect(row.op_id).toBeTruthy();
    const [adjust] = await ctx.sql`SELECT delta, kind, biz_type FROM ledger_entries WHERE user_id = ${victim.id} AND kind = 'adjust'`;
    expect(adjust).toEqual({ delta: -100, kind: 'adjust', biz_type: 'reconcile' });
    const [acct] = await ctx.sql`SELECT available FROM point_accounts WHERE user_id = ${victim.id}`;
    expect(acct.available).toBe(900);
    const again = await reconciler.run({ confirmDelayMs: 50 });
    expect(again.drifting).toEqual([]);
    expect(again.mirrorDrift).toEqual([]);
    await pipeline.stop();
  });

  it('does not count ops held up in a stalled persist worker as drift', async () => {
    const { pipeline, members, goods } = await settledPopulation(10);
    await pipeline.stop(); // nothing persists from here on
    const relayOnly = await ctx.startPipeline(1);
    await relayOnly.stop();
    for (const m of members) expect((await redeem(m.token, goods.id, `stalled-${m.id}`)).statusCode).toBe(201);
    const r = await reconciler.run({ confirmDelayMs: 50 });
    expect(r.inflight).toBe(members.length);
    expect(r.drifting).toEqual([]);
    expect(r.stockDrift).toEqual([]);
    const resumed = await ctx.startPipeline();
    await resumed.drain();
    expect((await reconciler.run({ confirmDelayMs: 50 })).drifting).toEqual([]);
    await resumed.stop();
  });

  it('raises no false alarm while a 2,000-op load is in flight', async () => {
    const pipeline = await ctx.startPipeline(2);
    const members = await ctx.createMembers(200);
    await Promise.all(members.map((m) => ctx.grant(m.id, 100_000)));
    const goods = await ctx.createGoods({ pointsPrice: 10, stock: 100_000 });
    let done = false;
    const load = (async () => {
      let sent = 0;
      while (sent < 2000) {
        await Promise.all(members.slice(0, 50).map((m, i) => redeem(m.token, goods.id, `load-${sent + i}-${m.id}`)));
        sent += 50;
      }
      done = true;
      return sent;
    })();
    const reports = [];
    while (!done) reports.push(await reconciler.run({ repair: false, confirmDelayMs: 100 }));
    expect(await load).toBe(2000);
    await pipeline.drain();
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.some((r) => r.inflight > 0)).toBe(true);
    for (const r of reports) {
      expect(r.drifting).toEqual([]);
      expect(r.stockDrift).toEqual([]);
      expect(r.mirrorDrift).toEqual([]);
    }
    const final = await reconciler.run({ confirmDelayMs: 50 });
    expect(final.drifting).toEqual([]);
    await pipeline.stop();
  });

  it('runs on its schedule as a worker role and exports its counts on /metrics', async () => {
    const { pipeline, members } = await settledPopulation(5);
    await ctx.redis.hincrby(ctx.keys.account(members[0].id), 'avail', 7);
    const role = await startReconciler({
      ...(await ctx.roleConnections()),
      keys: ctx.keys,
      sql: ctx.sql,
      everyMs: 200,
      idempotencyTtlSeconds: 3600,
      apiNoticeMs: 300,
      log: createLogger('silent', 'test'),
    });
    try {
      const deadline = Date.now() + 20_000;
      while (Number(await ctx.redis.hget(ctx.keys.reconcileTotals(), 'drifting')) < 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const metrics = await ctx.app.inject({ url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toMatch(/^pm_reconcile_drift_found_total 1$/m);
      expect(metrics.body).toMatch(/^pm_reconcile_runs_total [1-9]\d*$/m);
      expect(metrics.body).toMatch(/^pm_reconcile_drifting_members [01]$/m);
      expect(metrics.body).toMatch(/^pm_redis_behind_postgres 0$/m);
      expect(metrics.body).toMatch(/^pm_outbox_entries \d+$/m);
      expect(Number(await ctx.redis.hget(ctx.keys.account(members[0].id), 'avail'))).toBe(900);
    } finally {
      await role.close();
      await pipeline.stop();
    }
  });
});
