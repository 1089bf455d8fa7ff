/**
 * Admin writes carry an Idempotency-Key with the semantics of member writes: a retry after a
 * timeout (or fifty at once) writes once and replays the first answer; the key reused for another
 * request is 422; no key is 400; a refused request stores nothing; an expired key is a new
 * request. The key commits with the write, so a crash between the commit and the Redis step is
 * finished by the replay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { createTestContext, type TestContext } from '../support/context.ts';
import { bearer, expectError } from './helpers.ts';

let ctx: TestContext;
let admin: { id: number; token: string };

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

const as = (token: string, key?: string) => ({ ...bearer(token), ...(key === undefined ? {} : { 'idempotency-key': key }) });

const restock = (goodsId: number, quantity: number, key?: string, token = admin.token) =>
  ctx.app.inject({ method: 'POST', url: `/v1/admin/goods/${goodsId}/restock`, headers: as(token, key), payload: { quantity } });

const create = (payload: Record<string, unknown>, key?: string, token = admin.token) =>
  ctx.app.inject({ method: 'POST', url: '/v1/admin/goods', headers: as(token, key), payload });

const liveStock = async (goodsId: number) => Number(await ctx.redis.hget(ctx.keys.goods(goodsId), 'stock'));

async function totalStock(goodsId: number): Promise<number> {
  const [{ total }] = await ctx.sql<Array<{ total: number }>>`SELECT total_stock AS total FROM goods WHERE id = ${goodsId}`;
  return total;
}

const replayed = (res: LightMyRequestResponse) => res.headers['idempotent-replayed'] === 'true';

describe('admin writes are idempotent', () => {
  it('restocks once when 50 requests with one key arrive together, all answered alike', async () => {
    const g = await ctx.createGoods({ stock: 10 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => restock(g.id, 5, 'restock-burst')));
    for (const res of answers) expect(res.statusCode, res.body).toBe(200);
    expect(new Set(answers.map((r) => r.body)).size).toBe(1);
    expect(answers[0].json().stock).toBe(15);
    expect(answers.filter((r) => !replayed(r))).toHaveLength(1);
    expect(await liveStock(g.id)).toBe(15);
    expect(await totalStock(g.id)).toBe(15);
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM audit_log WHERE action = 'goods.restock' AND target_id = ${String(g.id)}`;
    expect(n).toBe(1);
  });

  it('creates one goods row for a create retried after a timeout, and for duplicates sent together', async () => {
    const body = { name: 'Idempotent mug', type: 'physical', pointsPrice: 30, stock: 7 };
    const first = await create(body, 'create-once');
    expect(first.statusCode).toBe(201);
    const retry = await create(body, 'create-once');
    expect(retry.statusCode).toBe(201);
    expect(replayed(retry)).toBe(true);
    expect(retry.json()).toEqual(first.json());

    const together = await Promise.all(Array.from({ length: 20 }, () => create({ ...body, name: 'Burst mug' }, 'create-burst')));
    expect(new Set(together.map((r) => `${r.statusCode} ${r.body}`)).size).toBe(1);
    const rows = await ctx.sql<Array<{ name: string; n: number }>>`
      SELECT name, count(*)::int AS n FROM goods WHERE name IN ('Idempotent mug', 'Burst mug') GROUP BY name ORDER BY name`;
    expect(rows).toEqual([
      { name: 'Burst mug', n: 1 },
      { name: 'Idempotent mug', n: 1 },
    ]);
    expect(await liveStock(first.json().id)).toBe(7);
  });

  it('finishes a restock whose Redis step failed after the commit when the request is replayed, counting it once', async () => {
    const g = await ctx.createGoods({ stock: 10 });
    const sync = ctx.app.goods.sync.bind(ctx.app.goods);
    // the process dies between the commit and the Redis step
    ctx.app.goods.sync = async () => {
      throw new Error('process killed after the commit');
    };
    let failed: LightMyRequestResponse;
    try {
      failed = await restock(g.id, 4, 'restock-crash');
    } finally {
      ctx.app.goods.sync = sync;
    }
    expect(failed.statusCode).toBe(500);
    expect(await totalStock(g.id)).toBe(14);
    expect(await liveStock(g.id)).toBe(10);

    // another restock lands in between: it brings Redis up to every committed restock
    expect((await restock(g.id, 1, 'restock-after-crash')).json().stock).toBe(15);
    const replay = await restock(g.id, 4, 'restock-crash');
    expect(replay.statusCode).toBe(200);
    expect(replayed(replay)).toBe(true);
    expect(replay.json().stock).toBe(15);
    expect(await liveStock(g.id)).toBe(15);
    // the answer is stored now: later replays return it unchanged
    const again = await restock(g.id, 4, 'restock-crash');
    expect(again.json()).toEqual(replay.json());
    expect(await liveStock(g.id)).toBe(15);
  });

  it('finishes a restock whose Redis step failed, on replay, for an item Redis had before restocks were tracked', async () => {
    const g = await ctx.createGoods({ stock: 10 });
    await ctx.redis.hdel(ctx.keys.goods(g.id), 'stocked');
    const sync = ctx.app.goods.sync.bind(ctx.app.goods);
    ctx.app.goods.sync = async () => {
      throw new Error('process killed after the commit');
    };
    try {
      expect((await restock(g.id, 6, 'restock-legacy')).statusCode).toBe(500);
    } finally {
      ctx.app.goods.sync = sync;
    }
    const replay = await restock(g.id, 6, 'restock-legacy');
    expect(replay.statusCode).toBe(200);
    expect(replay.json().stock).toBe(16);
    expect(await liveStock(g.id)).toBe(16);
  });

  it('refuses a key reused with another body or on another route with 422, writing nothing', async () => {
    const g = await ctx.createGoods({ stock: 10 });
    expect((await restock(g.id, 2, 'reuse-me')).statusCode).toBe(200);
    expectError(await restock(g.id, 3, 'reuse-me'), 422, 'IDEMPOTENCY_KEY_REUSED');
    const other = await ctx.createGoods({ stock: 10 });
    expectError(await restock(other.id, 2, 'reuse-me'), 422, 'IDEMPOTENCY_KEY_REUSED');
    const patch = await ctx.app.inject({
      method: 'PATCH',
      url: `/v1/admin/goods/${g.id}`,
      headers: as(admin.token, 'reuse-me'),
      payload: { pointsPrice: 77 },
    });
    expectError(patch, 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await liveStock(g.id)).toBe(12);
    expect(await liveStock(other.id)).toBe(10);
    expect((await ctx.app.goods.get(g.id)).pointsPrice).toBe(100);
  });

  it('requires a key on every admin write route the API documents', async () => {
    const doc = (await ctx.app.inject({ url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>>;
    };
    const writes = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/v1/admin/'))
      .flatMap(([path, ops]) =>
        Object.entries(ops)
          .filter(([method]) => ['post', 'put', 'patch', 'delete'].includes(method))
          .map(([method, op]) => ({ path, method, op })),
      );
    // every admin write the API documents is checked below; these must be among them
    expect(writes.map((w) => `${w.method.toUpperCase()} ${w.path}`)).toEqual(expect.arrayContaining([
      'PATCH /v1/admin/goods/{id}',
      'POST /v1/admin/broadcasts',
      'POST /v1/admin/goods',
      'POST /v1/admin/goods/{id}/restock',
      'POST /v1/admin/jobs/rebuild',
      'POST /v1/admin/points/grant',
      'POST /v1/admin/pushes/{id}/retry',
      'POST /v1/admin/persist/parked/retry',
      'POST /v1/admin/tasks',
      'PATCH /v1/admin/tasks/{key}',
      'DELETE /v1/admin/tasks/{key}',
      'POST /v1/admin/categories',
      'PATCH /v1/admin/categories/{id}',
      'DELETE /v1/admin/categories/{id}',
      'POST /v1/admin/goods-campaigns',
      'PATCH /v1/admin/goods-campaigns/{id}',
      'POST /v1/admin/points/holds',
      'POST /v1/admin/points/holds/{id}/capture',
      'POST /v1/admin/points/holds/{id}/release',
      'POST /v1/admin/orders/{id}/ship',
      'POST /v1/admin/orders/{id}/cancel',
      'POST /v1/admin/orders/{id}/refund',
      'POST /v1/admin/coupons/{code}/use',
      'PUT /v1/admin/risk/rules',
      'POST /v1/admin/members/{id}/freeze',
      'POST /v1/admin/members/{id}/unfreeze',
      'POST /v1/admin/experiments',
      'PATCH /v1/admin/experiments/{key}',
    ]));
    const g = await ctx.createGoods({ stock: 3 });
    const payloads: Record<string, object> = {
      '/v1/admin/goods': { name: 'x', type: 'physical', pointsPrice: 1, stock: 1 },
      '/v1/admin/goods/{id}': { name: 'y' },
      '/v1/admin/goods/{id}/restock': { quantity: 1 },
      '/v1/admin/points/grant': { userId: admin.id, amount: 1, reason: 'x' },
      '/v1/admin/broadcasts': { title: 't', body: 'b', segment: 'all' },
      '/v1/admin/persist/parked/retry': {},
      '/v1/admin/engagement/checkin': { base: 10, streakBonuses: [] },
      '/v1/admin/engagement/daily-login': { enabled: true, points: 10 },
      '/v1/admin/tiers': { tiers: [{ name: 'Regular', minPoints: 0, earnMultiplier: 1, priceFactor: 1 }] },
      '/v1/admin/campaigns': { name: 'c', bizTypes: ['share'], multiplier: 2, startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-02T00:00:00Z' },
      '/v1/admin/campaigns/{id}': { name: 'c2' },
      '/v1/admin/tasks': { key: 'keyless', title: 't', frequency: 'daily', event: 'share', target: 1, reward: 1 },
      '/v1/admin/tasks/{key}': { reward: 2 },
      '/v1/admin/categories': { name: 'Mugs', slug: 'mugs' },
      '/v1/admin/categories/{id}': { name: 'Cups' },
      '/v1/admin/goods-campaigns': { goodsIds: [g.id], discount: 0.9, startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-02T00:00:00Z' },
      '/v1/admin/goods-campaigns/{id}': { discount: 0.8 },
      '/v1/admin/points/holds': { userId: admin.id, amount: 1, reason: 'x', ttlSeconds: 60 },
      '/v1/admin/points/holds/{id}/capture': {},
      '/v1/admin/orders/{id}/ship': { carrier: 'SF', trackingNo: '1' },
      '/v1/admin/orders/{id}/cancel': { reason: 'x' },
      '/v1/admin/orders/{id}/refund': { reason: 'x' },
      '/v1/admin/risk/rules': { rules: [{ rule: 'HIGH_FREQUENCY', enabled: true, threshold: 100, windowSeconds: 3600, action: 'flag' }] },
      '/v1/admin/members/{id}/freeze': { reason: 'x' },
      '/v1/admin/members/{id}/unfreeze': { reason: 'x' },
      '/v1/admin/experiments': { key: 'keyless', variants: [{ name: 'a', weight: 1, payload: {} }, { name: 'b', weight: 1, payload: {} }], conversionEvent: 'redeem' },
      '/v1/admin/experiments/{key}': { description: 'x' },
    };
    for (const w of writes) {
      expect(w.op.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key'), w.path).toBe(true);
      const req: InjectOptions = {
        method: w.method.toUpperCase() as 'POST',
        url: w.path.replace('{id}', String(g.id)).replace('{key}', 'daily_checkin').replace('{code}', 'CPAAAAAAAA'),
        headers: bearer(admin.token),
        ...(payloads[w.path] ? { payload: payloads[w.path] } : {}),
      };
      expectError(await ctx.app.inject(req), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    }
    expect(await liveStock(g.id)).toBe(3);
  });

  it('stores nothing for a refused request, so a retry with the same key is evaluated afresh', async () => {
    const g = await ctx.createGoods({ stock: 3 });
    const bad = await ctx.app.inject({
      method: 'PATCH',
      url: `/v1/admin/goods/${g.id}`,
      headers: as(admin.token, 'fix-and-retry'),
      payload: { startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' },
    });
    expectError(bad, 400, 'VALIDATION_FAILED');
    const good = await ctx.app.inject({
      method: 'PATCH',
      url: `/v1/admin/goods/${g.id}`,
      headers: as(admin.token, 'fix-and-retry'),
      payload: { startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-02T00:00:00Z' },
    });
    expect(good.statusCode).toBe(200);
    expect(replayed(good)).toBe(false);
    expect(good.json().endsAt).toBe('2030-01-02T00:00:00.000Z');
    expect(await ctx.redis.hget(ctx.keys.goods(g.id), 'endsAt')).toBe(String(Date.parse('2030-01-02T00:00:00Z')));

    expectError(await restock(Number.MAX_SAFE_INTEGER, 1, 'missing-then-real'), 404, 'GOODS_NOT_FOUND');
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM admin_idempotency_keys WHERE idem_key = 'missing-then-real'`;
    expect(n).toBe(0);
  });

  it('treats the same key as a new request once it has expired', async () => {
    const g = await ctx.createGoods({ stock: 10 });
    expect((await restock(g.id, 5, 'monthly-restock')).json().stock).toBe(15);
    await ctx.sql`
      UPDATE admin_idempotency_keys SET expires_at = now() - interval '1 second'
      WHERE actor_id = ${admin.id} AND idem_key = 'monthly-restock'`;
    const next = await restock(g.id, 5, 'monthly-restock');
    expect(next.statusCode).toBe(200);
    expect(replayed(next)).toBe(false);
    expect(next.json().stock).toBe(20);
    // and the new request's answer is what replays now
    const replay = await restock(g.id, 5, 'monthly-restock');
    expect(replayed(replay)).toBe(true);
    expect(replay.json().stock).toBe(20);
    expect(await liveStock(g.id)).toBe(20);
  });

  it('keeps each admin’s keys apart: the same key from two admins is two requests', async () => {
    const other = await ctx.admin();
    const g = await ctx.createGoods({ stock: 0 });
    expect((await restock(g.id, 1, 'shared-name')).statusCode).toBe(200);
    const theirs = await restock(g.id, 2, 'shared-name', other.token);
    expect(theirs.statusCode).toBe(200);
    expect(replayed(theirs)).toBe(false);
    expect(await liveStock(g.id)).toBe(3);
  });

  it('replays a broadcast and a rebuild request instead of queueing them twice', async () => {
    const payload = { title: 'Hello', body: 'Once only', segment: 'all' };
    const send = () =>
      ctx.app.inject({ method: 'POST', url: '/v1/admin/broadcasts', headers: as(admin.token, 'broadcast-once'), payload });
    const first = await send();
    expect(first.statusCode).toBe(202);
    const second = await send();
    expect(second.statusCode).toBe(202);
    expect(replayed(second)).toBe(true);
    expect(second.json()).toEqual(first.json());

    const rebuild = () => ctx.app.inject({ method: 'POST', url: '/v1/admin/jobs/rebuild', headers: as(admin.token, 'rebuild-once') });
    const queued = await rebuild();
    expect(queued.statusCode).toBe(202);
    const again = await rebuild();
    expect(replayed(again)).toBe(true);
    expect(again.json().id).toBe(queued.json().id);
  });
});
