/**
 * Issue 11: hot goods (hotBuckets = B) sell from B bucket slots instead of one goods slot. Through
 * the API: the admin attribute, a flash sale through the real HTTP server (no oversell, the
 * per-member limit exact under a member's own concurrent requests, Postgres = acknowledged), uneven
 * drain, the sweeper settling bucket holds a crashed API left, restock, reconcile and rebuild.
 */
import { Queue } from 'bullmq';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listeningContext } from './support/http-client.ts';
import { BucketStock, bucketShare } from '../src/goods/bucket-stock.ts';
import { PERSIST_QUEUE } from '../src/queues.ts';
import { Reconciler } from '../src/recovery/reconcile.ts';
import { rebuildFromPostgres } from '../src/recovery/rebuild.ts';
import { createRedis } from '../src/redis/client.ts';
import { deleteKeys } from '../src/redis/delete-prefix.ts';
import { expectError, snapshot } from './api/helpers.ts';
import { placeOrder, RECEIVER } from './commerce/support.ts';
import { adminWrite } from './catalog/support.ts';
import { redeemAs, type Pipeline, type TestContext } from './support/context.ts';

// Redis Cluster's slot of a key (hash tags honoured), as ioredis computes it; the package ships no types
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

let ctx: TestContext;
let admin: { id: number; token: string };
let pipeline: Pipeline;
let base: string;
const { post } = listeningContext((c, url) => {
  ctx = c;
  base = url;
});

beforeAll(async () => {
  admin = await ctx.admin();
  pipeline = await ctx.startPipeline();
});
afterAll(async () => {
  await pipeline?.stop();
});

const bucketStocks = async (goodsId: number, b: number) =>
  (await Promise.all(Array.from({ length: b }, (_, k) => ctx.redis.hget(ctx.keys.bucket(goodsId, k), 'stock')))).map(Number);
const sum = (xs: number[]) => xs.reduce((a, n) => a + n, 0);
const holdsLeft = async (goodsId: number, b: number) =>
  sum(await Promise.all(Array.from({ length: b }, (_, k) => ctx.redis.hlen(ctx.keys.bucketReservations(goodsId, k)))));

async function settled(goodsId: number, b: number) {
  for (let i = 0; i < 100 && (await holdsLeft(goodsId, b)) > 0; i++) await new Promise((r) => setTimeout(r, 50));
}


describe('hot goods: the admin attribute', () => {
  it('creates a hot item with its stock split evenly over bucket slots that spread over a cluster', async () => {
    const res = await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods', { name: 'Flash', type: 'physical', pointsPrice: 10, stock: 101, hotBuckets: 8 });
    expect(res.statusCode, res.body).toBe(201);
    const g = res.json();
    expect(g).toMatchObject({ hotBuckets: 8, stock: 101 });
    expect(await bucketStocks(g.id, 8)).toEqual([13, 13, 13, 13, 13, 12, 12, 12]);
    expect(await ctx.redis.hmget(ctx.keys.goods(g.id), 'stock', 'hot')).toEqual(['0', '8']);
    expect((await ctx.app.inject({ url: `/v1/goods/${g.id}` })).json().stock).toBe(101);
    // each bucket its own slot; on 3 masters (slots split in thirds) no master is left out
    const slots = Array.from({ length: 8 }, (_, k) => calculateSlot(ctx.keys.bucket(g.id, k)));
    expect(new Set(slots).size).toBe(8);
    expect(new Set(slots.map((s) => Math.floor(s / 5462))).size).toBe(3);
    expect(slots).not.toContain(calculateSlot(ctx.keys.goods(g.id)));

    // restock splits the added units evenly too, and a replay adds nothing more
    await ctx.app.goods.restock(g.id, 4, admin.id);
    await ctx.app.goods.sync(g.id);
    expect(await bucketStocks(g.id, 8)).toEqual([14, 13, 13, 13, 13, 13, 13, 13]);
    expect((await ctx.app.inject({ url: `/v1/goods/${g.id}` })).json().stock).toBe(105);
    // with a token the stock comes from the quote: the buckets' sum too
    const [m] = await ctx.createMembers(1);
    const mine = await ctx.app.inject({ url: `/v1/goods/${g.id}`, headers: { authorization: `Bearer ${m.token}` } });
    expect(mine.json()).toMatchObject({ stock: 105, price: 10 });
    const q = await ctx.app.pricing.quote(m.id, g.id);
    expect(q).toMatchObject({ stock: 105, limitLeft: null });
  });

  it('refuses a bucket count outside 2..64, with dynamic pricing, and a change while on sale or after a sale', async () => {
    for (const hotBuckets of [1, 65, -1]) {
      expectError(await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods', { name: 'X', type: 'physical', pointsPrice: 10, stock: 1, hotBuckets }), 400, 'VALIDATION_FAILED');
    }
    expectError(
      await adminWrite(ctx, admin.token, 'POST', '/v1/admin/goods', { name: 'X', type: 'physical', pointsPrice: 10, stock: 1, hotBuckets: 4, dynamicPricing: true }),
      400, 'VALIDATION_FAILED',
    );
    const g = await ctx.createGoods({ pointsPrice: 10, stock: 20 });
    expectError(await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${g.id}`, { hotBuckets: 4 }), 409, 'HOT_BUCKETS_LOCKED');
    expect((await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${g.id}`, { active: false })).statusCode).toBe(200);
    const switched = await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${g.id}`, { hotBuckets: 4 });
    expect(switched.statusCode, switched.body).toBe(200);
    expect(switched.json()).toMatchObject({ hotBuckets: 4, stock: 20 });
    expect(await bucketStocks(g.id, 4)).toEqual([5, 5, 5, 5]);
    expect(await ctx.redis.hmget(ctx.keys.goods(g.id), 'stock', 'hot')).toEqual(['0', '4']);

    // once something sold, the layout stays
    await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${g.id}`, { active: true });
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    await new Promise((r) => setTimeout(r, 1100)); // the API's copy of the layout is at most a second old
    expect((await redeemAs(ctx, m.token, g.id, 'one')).statusCode).toBe(201);
    await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${g.id}`, { active: false });
    expectError(await adminWrite(ctx, admin.token, 'PATCH', `/v1/admin/goods/${g.id}`, { hotBuckets: 0 }), 409, 'HOT_BUCKETS_LOCKED');
    expect(await ctx.redis.hget(ctx.keys.goods(g.id), 'hot')).toBe('4');
  });
});

describe('hot goods: orders (cash + points)', () => {
  it('refuses an order with a hot item: 409 GOODS_NOT_ORDERABLE naming it, nothing taken or written', async () => {
    const hot = await ctx.createGoods({ pointsPrice: 10, stock: 40, hotBuckets: 4, cashPrice: 500 });
    const plain = await ctx.createGoods({ pointsPrice: 10, stock: 40, cashPrice: 500 });
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    // the workers run beside the test: let them settle the grant before and after
    await pipeline.drain();
    const before = await snapshot(ctx, [m.id], [hot.id, plain.id]);
    const res = await placeOrder(ctx, m.token, { items: [{ goodsId: plain.id, quantity: 1 }, { goodsId: hot.id, quantity: 1 }], receiver: RECEIVER });
    expectError(res, 409, 'GOODS_NOT_ORDERABLE');
    expect(res.json().message).toContain(`goods ${hot.id}`);
    expect(res.json().goodsId).toBe(hot.id);
    await pipeline.drain();
    expect(await snapshot(ctx, [m.id], [hot.id, plain.id])).toEqual(before);
    expect(await bucketStocks(hot.id, 4)).toEqual([10, 10, 10, 10]);
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM orders WHERE user_id = ${m.id}`;
    expect(n).toBe(0);
    // the same order without the hot item goes through
    expect((await placeOrder(ctx, m.token, { items: [{ goodsId: plain.id, quantity: 1 }], receiver: RECEIVER })).statusCode).toBe(201);
  });
});

describe('hot goods: a flash sale', () => {
  it('sells exactly the stock, keeps every member within the limit, and persists exactly what was acknowledged', async () => {
    const B = 8;
    const STOCK = 100;
    const PRICE = 7;
    const members = await ctx.createMembers(150);
    await Promise.all(members.map((m) => ctx.grant(m.id, 1000)));
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK, perUserLimit: 2, hotBuckets: B });
    // 50 members send 5 at once, 50 send 2, 50 send 1: 400 requests
    const fire = (m: { id: number; token: string }, n: number) =>
      post(`${base}/v1/redemptions`, { authorization: `Bearer ${m.token}`, 'content-type': 'application/json', 'idempotency-key': `hot-${m.id}-${n}` },
        JSON.stringify({ goodsId: goods.id, quantity: 1 }),
      ).then((r) => ({ member: m.id, status: r.status, body: JSON.parse(r.body) as { code?: string; id?: string } }));
    const sends = members.map((_, i) => (i < 50 ? 5 : i < 100 ? 2 : 1));
    const results = await Promise.all(members.flatMap((m, i) => Array.from({ length: sends[i] }, (_, n) => fire(m, n))));
    expect(results).toHaveLength(400);

    const accepted = results.filter((r) => r.status === 201);
    expect(accepted).toHaveLength(STOCK);
    for (const r of results.filter((x) => x.status !== 201)) {
      expect(r.status).toBe(409);
      expect(['SOLD_OUT', 'LIMIT_EXCEEDED']).toContain(r.body.code);
    }
    const perMember = new Map<number, number>();
    for (const r of accepted) perMember.set(r.member, (perMember.get(r.member) ?? 0) + 1);
    expect(Math.max(...perMember.values())).toBeLessThanOrEqual(2);

    await settled(goods.id, B);
    expect(sum(await bucketStocks(goods.id, B))).toBe(0);
    expect(await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock')).toBe('0');
    const counted = await Promise.all(members.map((m) => ctx.redis.hget(ctx.keys.hotBought(m.id), String(goods.id))));
    members.forEach((m, i) => expect(Number(counted[i] ?? 0)).toBe(perMember.get(m.id) ?? 0));
    const balances = await Promise.all(members.map((m) => ctx.redis.hget(ctx.keys.account(m.id), 'avail')));
    members.forEach((m, i) => expect(Number(balances[i])).toBe(1000 - PRICE * (perMember.get(m.id) ?? 0)));

    await pipeline.drain();
    const rows = await ctx.sql<Array<{ id: string; user_id: number; quantity: number }>>`
      SELECT id, user_id, quantity FROM redemptions WHERE goods_id = ${goods.id}`;
    expect(rows.map((r) => r.id).sort()).toEqual(accepted.map((r) => r.body.id).sort());
    expect(sum(rows.map((r) => r.quantity))).toBe(STOCK);
  }, 60_000);

  it('tries the other buckets when its own is empty, and answers SOLD_OUT only when all are', async () => {
    const B = 4;
    const goods = await ctx.createGoods({ pointsPrice: 1, stock: 40, hotBuckets: B });
    // drain unevenly: three buckets empty, the last one holds 6 (the units taken are sold elsewhere)
    for (let k = 0; k < 3; k++) await ctx.redis.hset(ctx.keys.bucket(goods.id, k), 'stock', 0);
    await ctx.redis.hset(ctx.keys.bucket(goods.id, 3), 'stock', 6);
    const members = await ctx.createMembers(20);
    await Promise.all(members.map((m) => ctx.grant(m.id, 100)));
    const results = await Promise.all(members.map((m) => redeemAs(ctx, m.token, goods.id, `u-${m.id}`)));
    expect(results.filter((r) => r.statusCode === 201)).toHaveLength(6);
    for (const r of results.filter((x) => x.statusCode !== 201)) expectError(r, 409, 'SOLD_OUT');
    await settled(goods.id, B);
    expect(await bucketStocks(goods.id, B)).toEqual([0, 0, 0, 0]);
  });
});

describe('hot goods: units held by requests in flight', () => {
  it('a request finding every bucket short waits for fresh holds and buys the unit one gives back; an orphaned hold is not waited for', async () => {
    const B = 2;
    const goods = await ctx.createGoods({ pointsPrice: 1, stock: 1, hotBuckets: B });
    const k = (await bucketStocks(goods.id, B)).findIndex((n) => n === 1);
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 10);
    const { redis, keys } = ctx;
    // another request in flight holds the last unit (a hold made just now)
    const hold = (kh: string, now: number | '', bucket = k) =>
      redis.pmHotReserve(keys.bucket(goods.id, bucket), keys.bucketReservations(goods.id, bucket), keys.bucketDeadlines(goods.id, bucket),
        `op-${kh}`, 999_999, 1, 'h', 15_000, now, `t-${kh}`, kh, 1000, '');
    expect(Number((await hold('fresh', ''))[0])).toBe(1);
    const waiting = redeemAs(ctx, m.token, goods.id, 'w-1');
    // ... whose charge is refused 60 ms later: its unit goes back
    await new Promise((r) => setTimeout(r, 60));
    expect(await redis.pmHotRelease(keys.bucket(goods.id, k), keys.bucketReservations(goods.id, k), keys.bucketDeadlines(goods.id, k), '999999:fresh', 't-fresh')).toBe(1);
    expect((await waiting).statusCode).toBe(201);
    await settled(goods.id, B);

    // a hold made long ago (a dead API's, left to the sweeper) is not waited for
    await ctx.app.goods.restock(goods.id, 1, admin.id);
    const [sec] = await redis.time();
    const k2 = (await bucketStocks(goods.id, B)).findIndex((n) => n === 1);
    expect(Number((await hold('old', Number(sec) * 1000 - 5000, k2))[0])).toBe(1);
    const t = Date.now();
    expectError(await redeemAs(ctx, m.token, goods.id, 'w-2'), 409, 'SOLD_OUT');
    expect(Date.now() - t).toBeLessThan(150);
  });
});

describe('hot goods: crash safety and recovery', () => {
  it('the sweeper releases a bucket hold never charged and confirms one charged but not confirmed', async () => {
    const B = 2;
    const goods = await ctx.createGoods({ pointsPrice: 5, stock: 10, perUserLimit: 3, hotBuckets: B });
    const [a, b] = await ctx.createMembers(2);
    await ctx.grant(a.id, 100);
    await ctx.grant(b.id, 100);
    const { redis, keys } = ctx;
    const reserve = (uid: number, kh: string, k: number) =>
      redis.pmHotReserve(keys.bucket(goods.id, k), keys.bucketReservations(goods.id, k), keys.bucketDeadlines(goods.id, k),
        `op-${kh}`, uid, 1, `h-${kh}`, 1, '', `t-${kh}`, kh, 1000, '');
    // a: the API died right after the reserve
    expect(Number((await reserve(a.id, 'ka', 0))[0])).toBe(1);
    // b: the API died after the charge, before the confirm
    const r = await reserve(b.id, 'kb', 1);
    expect(Number(r[0])).toBe(1);
    const charged = await redis.pmHotCharge(
      keys.account(b.id), keys.lotsByExpiry(b.id), keys.lotRemaining(b.id), keys.idem(b.id, 'kb'), keys.opRef(b.id, 'op-kb'), keys.outboxOf(b.id), keys.hotBought(b.id),
      'op-kb', b.id, 5, 'h-kb', 3600, '', 't-kb', JSON.stringify({ goodsId: goods.id, quantity: 1, exchangeNo: 'EXB', bizType: 'redemption', bizId: String(goods.id) }), 'kb', '',
      goods.id, 1, Number(r[5]), Number(r[6]), 0,
    );
    expect(Number(charged[0])).toBe(1);
    expect(await bucketStocks(goods.id, B)).toEqual([4, 4]);
    await new Promise((res) => setTimeout(res, 10));

    expect(await ctx.app.redemptions.sweep()).toEqual({ confirmed: 1, released: 1 });
    expect(await bucketStocks(goods.id, B)).toEqual([5, 4]);
    expect(await holdsLeft(goods.id, B)).toBe(0);
    // the released one can no longer be charged
    const late = await redis.pmHotCharge(
      keys.account(a.id), keys.lotsByExpiry(a.id), keys.lotRemaining(a.id), keys.idem(a.id, 'ka'), keys.opRef(a.id, 'op-ka'), keys.outboxOf(a.id), keys.hotBought(a.id),
      'op-ka', a.id, 5, 'h-ka', 3600, '', 't-ka', '{}', 'ka', '', goods.id, 1, 3, 0, 0,
    );
    expect(Number(late[0])).toBe(-5);
    expect(await redis.hget(keys.hotBought(a.id), String(goods.id))).toBeNull();
    expect(await redis.hget(keys.hotBought(b.id), String(goods.id))).toBe('1');
  });

  it('reconcile leaves a settled hot item alone and gives back units a bucket lost', async () => {
    const B = 4;
    const goods = await ctx.createGoods({ pointsPrice: 1, stock: 40, hotBuckets: B });
    const members = await ctx.createMembers(5);
    await Promise.all(members.map((m) => ctx.grant(m.id, 100)));
    for (const m of members) expect((await redeemAs(ctx, m.token, goods.id, `r-${m.id}`)).statusCode).toBe(201);
    await settled(goods.id, B);
    await pipeline.drain();
    const queue = new Queue(PERSIST_QUEUE, { connection: createRedis(ctx.env.REDIS_URL, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
    try {
      const reconciler = new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue });
      const clean = await reconciler.run({ repair: true, confirmDelayMs: 50 });
      expect(clean.stockDrift.filter((d) => d.goodsId === goods.id)).toEqual([]);
      await ctx.redis.hincrby(ctx.keys.bucket(goods.id, 2), 'stock', -3);
      const drifted = await reconciler.run({ repair: true, confirmDelayMs: 50 });
      expect(drifted.stockDrift.filter((d) => d.goodsId === goods.id)).toEqual([{ goodsId: goods.id, redis: 32, expected: 35, repaired: true }]);
      expect(sum(await bucketStocks(goods.id, B))).toBe(35);
    } finally {
      await queue.close();
    }
  });

  it('a refunded (cancelled) redemption gives its unit back to a bucket and off the member’s counts, once', async () => {
    const B = 4;
    const goods = await ctx.createGoods({ pointsPrice: 30, stock: 8, perUserLimit: 1, dailyLimit: 1, hotBuckets: B });
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const r = await redeemAs(ctx, m.token, goods.id, 'c-1');
    expect(r.statusCode).toBe(201);
    expectError(await redeemAs(ctx, m.token, goods.id, 'c-2'), 409, 'LIMIT_EXCEEDED');
    await settled(goods.id, B);
    // what the quote (and quick options' canRedeem) sees: the member's own counts
    expect(await ctx.app.pricing.quote(m.id, goods.id)).toMatchObject({ stock: 7, limitLeft: 0, dailyLeft: 0 });
    await pipeline.drain();
    const cancel = await ctx.app.inject({
      method: 'POST', url: `/v1/me/orders/${r.json().id}/cancel`, headers: { authorization: `Bearer ${m.token}`, 'idempotency-key': 'cancel-1' },
    });
    expect(cancel.statusCode, cancel.body).toBe(200);
    expect(sum(await bucketStocks(goods.id, B))).toBe(8);
    expect(await ctx.redis.hget(ctx.keys.hotBought(m.id), String(goods.id))).toBeNull();
    expect(await ctx.app.pricing.quote(m.id, goods.id)).toMatchObject({ stock: 8, limitLeft: 1, dailyLeft: 1 });
    // a replayed return gives nothing more
    expect(await new BucketStock(ctx).returnRedemption(goods.id, B, r.json().id, m.id, 1, '')).toBe(false);
    expect(sum(await bucketStocks(goods.id, B))).toBe(8);
    // the limits count the unit no more: the member may redeem again (today too)
    expect((await redeemAs(ctx, m.token, goods.id, 'c-3')).statusCode).toBe(201);
    await settled(goods.id, B);
    expect(sum(await bucketStocks(goods.id, B))).toBe(7);
  });

  it('rebuild from Postgres restores the bucketed stock and every member’s count', async () => {
    const B = 3;
    const goods = await ctx.createGoods({ pointsPrice: 2, stock: 11, perUserLimit: 2, hotBuckets: B });
    const members = await ctx.createMembers(3);
    await Promise.all(members.map((m) => ctx.grant(m.id, 100)));
    for (const m of members) for (const k of ['1', '2']) expect((await redeemAs(ctx, m.token, goods.id, `b-${m.id}-${k}`)).statusCode).toBe(201);
    await settled(goods.id, B);
    await pipeline.drain();

    await deleteKeys(ctx.redis, ctx.keys.prefix);
    await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    const left = 11 - 6;
    // every goods item of this file was rebuilt; this one: 5 units over 3 buckets
    expect(await bucketStocks(goods.id, B)).toEqual(Array.from({ length: B }, (_, k) => bucketShare(left, B, k)));
    expect(await ctx.redis.hmget(ctx.keys.goods(goods.id), 'stock', 'hot')).toEqual(['0', String(B)]);
    for (const m of members) expect(await ctx.redis.hget(ctx.keys.hotBought(m.id), String(goods.id))).toBe('2');

    expect(await ctx.app.redisGate.untilWritable(10_000)).toBe(true);
    expect((await ctx.app.inject({ url: `/v1/goods/${goods.id}` })).json().stock).toBe(left);
    // members at the limit stay there; a new member buys from the rebuilt buckets
    expectError(await redeemAs(ctx, members[0].token, goods.id, 'after'), 409, 'LIMIT_EXCEEDED');
    const [fresh] = await ctx.createMembers(1);
    await ctx.grant(fresh.id, 100);
    expect((await redeemAs(ctx, fresh.token, goods.id, 'after')).statusCode).toBe(201);
    await settled(goods.id, B);
    expect(sum(await bucketStocks(goods.id, B))).toBe(left - 1);
  });
});
