/**
 * Redis Cluster wiped entirely (FLUSHALL on every master) → `npm run rebuild` (src/cli/rebuild.ts
 * as a process, REDIS_CLUSTER_NODES set): balances, lots, stock, bought counts, leaderboards,
 * check-in streaks and replays of acknowledged ops come back as Postgres says, spread over the
 * masters again. And the start-up checks: a cluster node given as REDIS_URL, a plain Redis given
 * as REDIS_CLUSTER_NODES, a master that may evict are each refused in one line saying what to do.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { rollForward } from '../../src/recovery/roll-forward.ts';
import { createRedis, readyMasters } from '../../src/redis/client.ts';
import { checkRedis } from '../../src/cli/preflight.ts';
import { childEnv, ROOT } from '../crash/procs.ts';
import { REDIS_URL } from '../support/urls.ts';
import { redeemAs } from '../support/context.ts';
import { scriptBatchSize } from '../../src/metrics/registry.ts';
import { clusterContext, keysPerMaster, type ClusterSetup } from './support.ts';

const run = promisify(execFile);

let s: ClusterSetup;
beforeAll(async () => {
  s = await clusterContext({ basePort: 17120 });
});
afterAll(async () => {
  await s?.ctx.close();
  await s?.cluster.destroy();
});

describe('start-up checks with a Redis Cluster', () => {
  it('accepts the cluster and refuses a cluster node as REDIS_URL, or a plain Redis as REDIS_CLUSTER_NODES, saying which', async () => {
    const { ctx, cluster } = s;
    await expect(checkRedis(ctx.env)).resolves.toBeUndefined();
    const node = `127.0.0.1:${cluster.nodes[0].port}`;
    await expect(checkRedis({ ...ctx.env, REDIS_CLUSTER_NODES: undefined, REDIS_URL: `redis://${node}` })).rejects.toThrow(
      new RegExp(`Redis at ${node} is a Redis Cluster node: set REDIS_CLUSTER_NODES`),
    );
    const plain = new URL(REDIS_URL).host;
    await expect(checkRedis({ ...ctx.env, REDIS_CLUSTER_NODES: plain })).rejects.toThrow(/runs without cluster support/);
    const master = (await readyMasters(ctx.redis))[0];
    await master.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      await expect(checkRedis(ctx.env)).rejects.toThrow(/"allkeys-lru" on the master at 127\.0\.0\.1:\d+; Points Mall needs "noeviction"/);
    } finally {
      await master.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });
});

describe('rebuild on a Redis Cluster', () => {
  it('restores balances, lots, stock, limits, boards and replays after every master is flushed', { timeout: 60_000 }, async () => {
    const { ctx, cluster } = s;
    const redeem = (token: string, goodsId: number, key: string) => redeemAs(ctx, token, goodsId, key);
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(40);
    await Promise.all(members.map((m, i) => ctx.grant(m.id, 1000 + i)));
    const goods = await ctx.createGoods({ pointsPrice: 70, stock: 40, perUserLimit: 2 });
    const other = await ctx.createGoods({ pointsPrice: 10, stock: 100 });
    const first = await Promise.all(members.map((m) => redeem(m.token, goods.id, `k-${m.id}`)));
    expect(first.map((r) => r.statusCode)).toEqual(members.map(() => 201));
    const more = await Promise.all(members.slice(0, 10).map((m) => redeem(m.token, other.id, `o-${m.id}`)));
    expect(more.map((r) => r.statusCode)).toEqual(more.map(() => 201));
    for (const m of members.slice(0, 5)) {
      const r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/points/earn',
        headers: { authorization: `Bearer ${m.token}`, 'idempotency-key': `e-${m.id}` },
        payload: { action: 'review' },
      });
      expect(r.statusCode).toBe(200);
    }
    // check-ins of every member at once: gathered per slot (src/redis/script-batch.ts), all paid
    const checkin = (token: string) => ctx.app.inject({ method: 'POST', url: '/v1/me/checkins', headers: { authorization: `Bearer ${token}` } });
    const calls = async () => (await scriptBatchSize.get()).values.find((v) => v.metricName === 'pm_script_batch_size_count' && v.labels.script === 'checkin')?.value ?? 0;
    const callsBefore = await calls();
    const checkins = await Promise.all(members.map((m) => checkin(m.token)));
    expect(checkins.map((r) => r.statusCode)).toEqual(members.map(() => 201));
    expect((await calls()) - callsBefore, 'script calls: per-slot batches held more than one check-in').toBeLessThan(members.length);
    await pipeline.drain();
    await pipeline.stop();

    const before = await Promise.all(members.map((m) => ctx.app.points.balance(m.id)));
    const boardBefore = (await ctx.app.inject({ url: '/v1/leaderboards/all' })).json();
    expect((await ctx.app.inject({ url: `/v1/goods/${goods.id}` })).json().stock).toBe(0);
    expect((await ctx.app.inject({ url: `/v1/goods/${other.id}` })).json().stock).toBe(90);

    for (const node of await readyMasters(ctx.redis)) await node.flushall();
    expect([...(await keysPerMaster(cluster, ctx.keys.prefix)).values()].flat()).toEqual([]);

    const out = await run(process.execPath, ['--import', 'tsx', 'src/cli/rebuild.ts'], { cwd: ROOT, env: childEnv(ctx.env), timeout: 40_000 });
    expect(out.stdout).toMatch(/rebuilt \d+ members/);
    const spread = await keysPerMaster(cluster, ctx.keys.prefix);
    expect([...spread.values()].every((ks) => ks.length > 0), 'rebuilt state on every master').toBe(true);

    const after = await Promise.all(members.map((m) => ctx.app.points.balance(m.id)));
    expect(after.map((b) => [b.available, b.totalEarned])).toEqual(before.map((b) => [b.available, b.totalEarned]));
    const accounts = new Map(
      (await ctx.sql<Array<{ userId: number; available: number }>>`SELECT user_id AS "userId", available FROM point_accounts`).map((a) => [
        Number(a.userId),
        Number(a.available),
      ]),
    );
    expect(after.map((b) => b.available)).toEqual(members.map((m) => accounts.get(m.id)));
    const lotsSum = await Promise.all(
      members.map(async (m) => (await ctx.redis.hvals(ctx.keys.lotRemaining(m.id))).reduce((a, v) => a + Number(v), 0)),
    );
    expect(lotsSum).toEqual(after.map((b) => b.available));
    expect((await ctx.app.inject({ url: `/v1/goods/${goods.id}` })).json().stock).toBe(0);
    expect((await ctx.app.inject({ url: `/v1/goods/${other.id}` })).json().stock).toBe(90);
    expect((await ctx.app.inject({ url: '/v1/leaderboards/all' })).json()).toEqual(boardBefore);

    // the flush took the epoch with it; the rebuild recorded a new one that the API's gate passes
    expect(await ctx.app.redisGate.untilWritable(10_000)).toBe(true);
    const m0 = members[0];
    const retry = await redeem(m0.token, goods.id, `k-${m0.id}`);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json().id).toBe(first[0].json().id);
    // bought counts came back: a member at the limit stays at the limit after a restock
    await ctx.app.goods.restock(goods.id, 10, 0);
    expect((await redeem(m0.token, goods.id, 'second')).statusCode).toBe(201);
    expect((await redeem(m0.token, goods.id, 'third')).json().code).toBe('LIMIT_EXCEEDED');
    // today's check-ins came back with the streaks: a second one is refused
    const again = await Promise.all(members.slice(0, 8).map((m) => checkin(m.token)));
    expect(again.map((r) => r.json().code)).toEqual(again.map(() => 'ALREADY_CHECKED_IN'));
  });
});

describe('one master flushed, without a restart', () => {
  it('closes writes (its copies of the epoch are gone, its outboxes behind Postgres) until a roll-forward restores it', { timeout: 60_000 }, async () => {
    const { ctx, cluster } = s;
    const { keys, sql } = ctx;
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(30);
    await Promise.all(members.map((m) => ctx.grant(m.id, 500)));
    await pipeline.drain();
    await pipeline.stop();
    expect(await ctx.app.redisGate.untilWritable(10_000)).toBe(true);

    // a master holding outboxes but not the global epoch key: only the per-partition copies can tell
    const outboxes = await keysPerMaster(cluster, keys.prefix, '*:outbox');
    const epochAt = [...(await keysPerMaster(cluster, keys.prefix, 'epoch'))].find(([, ks]) => ks.length > 0)![0];
    const [port] = [...outboxes].filter(([p, ks]) => p !== epochAt && ks.length > 0)[0];
    const victim = cluster.nodes.find((n) => n.port === port)!;
    await victim.conn().flushall();
    expect(await ctx.app.redisGate.check()).toBe('behind');
    const refused = await redeemAs(ctx, members[0].token, 1, 'after-flush');
    expect(refused.statusCode).toBe(503);

    const queueConn = createRedis(ctx.env, 'worker');
    const queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: keys.queuePrefix(PERSIST_QUEUE) });
    try {
      await rollForward({ sql, redis: ctx.redis, keys, queue }, { idempotencyTtlSeconds: 3600 });
    } finally {
      await queue.close();
      queueConn.disconnect();
    }
    expect(await ctx.app.redisGate.check()).toBe('verified');
    const accounts = new Map(
      (await sql<Array<{ userId: number; available: number }>>`SELECT user_id AS "userId", available FROM point_accounts`).map((a) => [
        Number(a.userId),
        Number(a.available),
      ]),
    );
    const live = await Promise.all(members.map(async (m) => Number(await ctx.redis.hget(keys.account(m.id), 'avail'))));
    expect(live).toEqual(members.map((m) => accounts.get(m.id)));
    expect(live.every((v) => v === 500)).toBe(true);
  });
});
