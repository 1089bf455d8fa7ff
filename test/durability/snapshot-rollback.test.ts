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
import { reconcileOnce, type ReconcileTaskDeps } from '../../src/recovery/reconcile-task.ts';
import { redisLag } from '../../src/recovery/watermark.ts';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';
import { redisServer, type RedisServer } from '../support/redis-server.ts';

let server: RedisServer;
let ctx: TestContext;
/** Each scenario gets its own Redis server and database: a restore is the whole server's. */
function freshServer(redeemPath: 'auto' | 'saga' = 'saga') {
  beforeAll(async () => {
    server = await redisServer(['--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction']);
    ctx = await createTestContext({ REDIS_URL: server.url, LAG_CHECK_MS: 100, REDEEM_PATH: redeemPath });
  });
  afterAll(async () => {
    await ctx?.close().catch(() => {});
    await server?.destroy();
  });
}

const redeem = (token: string, goodsId: number, key: string) => redeemAs(ctx, token, goodsId, key);
const silentLog = { warn: () => {}, info: () => {} };

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Redis restored from an older snapshot', () => {
  freshServer();
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
    await waitFor('the API to notice', async () => ctx.app.redisGate.state === 'behind');

    const ready = await ctx.app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().redisCurrent.ok).toBe(false);
    const refused = await redeem(members[0].token, goods.id, 'during-lag');
    expect(refused.statusCode).toBe(503);
    expect(refused.json().code).toBe('SERVICE_UNAVAILABLE');
    expect(refused.headers['retry-after']).toBeDefined();
    // the restored Redis shows the pre-snapshot balance: serving it would let points be spent twice
    expect((await ctx.app.points.balance(members[0].id)).available).toBe(900);

    const queue = new Queue(PERSIST_QUEUE, { connection: createRedis(server.url, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
    try {
      const role = await ctx.roleConnections();
      const deps: ReconcileTaskDeps = { sql: ctx.sql, keys: ctx.keys, queue, ...role, log: silentLog };
      const outcome = await reconcileOnce(deps, { idempotencyTtlSeconds: 3600 });
      expect(outcome).toHaveProperty('rolledForward');
      await waitFor('the API to serve writes again', async () => ctx.app.redisGate.writable);
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

// both redemption paths: the saga (reserve, charge) and the single script (REDEEM_PATH=auto),
// whose one write moves the outbox stream and so must never reach an unchecked Redis
describe.each(['saga', 'auto'] as const)('Redis restored from an older snapshot while clients keep writing (REDEEM_PATH=%s)', (redeemPath) => {
  freshServer(redeemPath);
  it('accepts no write before the roll-forward: nothing spent twice, every 201 persisted once, no adjust', async () => {
    // the reproduction: 1,100 points, a snapshot, 8 redemptions of 100 persisted, then
    // Redis killed -9 and restarted from the snapshot with redemptions racing the restart
    const pipeline = await ctx.startPipeline(4, { lockMs: 1000 });
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1100);
    const goods = await ctx.createGoods({ pointsPrice: 100, stock: 1000 });
    await pipeline.drain();
    await ctx.redis.save();
    copyFileSync(join(server.dir, 'dump.rdb'), join(server.dir, 'snapshot.rdb'));
    for (let i = 0; i < 8; i++) expect((await redeem(m.token, goods.id, `before-${i}`)).statusCode).toBe(201);
    await pipeline.drain();
    const [acct] = await ctx.sql`SELECT available FROM point_accounts WHERE user_id = ${m.id}`;
    expect(acct.available).toBe(300);

    // the reconcile role, as a worker process runs it
    const queue = new Queue(PERSIST_QUEUE, { connection: createRedis(server.url, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
    queue.on('error', () => {});
    const role = await ctx.roleConnections();
    const deps: ReconcileTaskDeps = { sql: ctx.sql, keys: ctx.keys, queue, ...role, log: silentLog };
    let reconciling = true;
    const outcomes: string[] = [];
    const reconcileLoop = (async () => {
      while (reconciling) {
        try {
          const o = await reconcileOnce(deps, { idempotencyTtlSeconds: 3600, confirmDelayMs: 50 });
          outcomes.push('rolledForward' in o ? 'rolledForward' : 'skipped' in o ? 'skipped' : 'reconciled');
        } catch {
          outcomes.push('error');
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    // Redis dies; clients write continuously while it is down and from its first moment back
    await server.kill9();
    const answers: Array<{ status: number; at: number; body: string }> = [];
    let n = 0;
    let sending = true;
    const clients = Array.from({ length: 4 }, async () => {
      while (sending) {
        const key = `race-${n++}`;
        const res = await redeem(m.token, goods.id, key).catch(() => null);
        if (res) answers.push({ status: res.statusCode, at: Date.now(), body: res.body });
        await new Promise((r) => setImmediate(r));
      }
    });
    const ready: number[] = [];
    const probe = (async () => {
      while (sending) {
        ready.push((await ctx.app.inject({ url: '/health/ready' })).statusCode);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    copyFileSync(join(server.dir, 'snapshot.rdb'), join(server.dir, 'dump.rdb'));
    await server.start();
    const restartedAt = Date.now();
    await waitFor('a roll-forward', async () => outcomes.includes('rolledForward'), 30_000);
    await waitFor('writes served again', async () => ctx.app.redisGate.writable, 30_000).catch((err) => {
      throw new Error(`${err.message}: gate ${ctx.app.redisGate.state} (${ctx.app.redisGate.reason}); outcomes ${outcomes.join(',')}`);
    });
    await waitFor('the member to spend what is left', async () => (await ctx.app.points.balance(m.id)).available < 100, 30_000);
    sending = false;
    await Promise.all([...clients, probe]);
    reconciling = false;
    await reconcileLoop;
    await pipeline.drain(60_000);

    const accepted = answers.filter((a) => a.status === 201);
    // 300 points were left: exactly 3 more redemptions once rolled forward, never the 11 the
    // restored snapshot's 1,100 points allowed
    expect(accepted.length, 'redemptions accepted during the race').toBe(3);
    expect(accepted.every((a) => a.at >= restartedAt)).toBe(true);
    expect(answers.filter((a) => a.at >= restartedAt).length, 'requests raced the restart').toBeGreaterThan(3);
    expect(answers.filter((a) => a.status !== 201 && a.status !== 503 && a.status !== 409).map((a) => a.body)).toEqual([]);
    expect(ready, 'readiness reported the recovery').toContain(503);

    const spends = await ctx.sql<Array<{ n: number; total: number }>>`
      SELECT count(*)::int AS n, COALESCE(-SUM(delta), 0)::bigint AS total FROM ledger_entries
      WHERE user_id = ${m.id} AND kind = 'spend'`;
    expect(spends[0].n, 'every 201 persisted exactly once').toBe(8 + accepted.length);
    expect(spends[0].total).toBeLessThanOrEqual(1100);
    const adjusts = await ctx.sql`SELECT op_id FROM ledger_entries WHERE kind = 'adjust'`;
    expect(adjusts, 'no adjust legitimising a double spend').toEqual([]);
    const live = (await ctx.app.points.balance(m.id)).available;
    const [after] = await ctx.sql`SELECT available FROM point_accounts WHERE user_id = ${m.id}`;
    expect(live).toBe(1100 - 100 * (8 + accepted.length));
    expect(after.available).toBe(live);
    const report = await new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }).run({ confirmDelayMs: 50 });
    expect(report.drifting).toEqual([]);
    await queue.close();
    await pipeline.stop();
  }, 120_000);
});
