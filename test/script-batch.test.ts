/**
 * The at-once redemptions and the earns that reach the API together run in one script call
 * (src/redis/script-batch.ts). Redemptions: 600 requests at once through the real HTTP server —
 * each of 200 members sends one key twice (a retry racing its original) and a second key — at an
 * item with less stock than they ask for. Earns: 150 members send 8 shares each at once (the rule
 * pays 10, 5 a day), one of them twice. Check-ins: 150 members check in three times at once. In
 * each the batches must have held more than one call, and
 * the answers and the state must be what one call each gives: no oversell, no cap passed, every
 * member charged or credited once per accepted request, a retry answered with its original's
 * result, everything persisted. Then the batcher itself when a call goes wrong.
 */
import { describe, expect, it } from 'vitest';
import { listeningContext } from './support/http-client.ts';
import { scriptBatchSize } from '../src/metrics/registry.ts';
import { REDEEM_SCRIPT, ScriptBatcher } from '../src/redis/script-batch.ts';
import { createRedis } from '../src/redis/client.ts';
import { registerScripts } from '../src/redis/scripts.ts';
import { REDIS_URL } from './support/urls.ts';
import type { TestContext } from './support/context.ts';

const MEMBERS = 200;
const STOCK = 150;
const PRICE = 10;
const START = 1000;

let ctx: TestContext;
let base: string;
const { post } = listeningContext((c, url) => {
  ctx = c;
  base = url;
});


async function batchCounts(script: 'redeem' | 'earn' | 'checkin'): Promise<{ calls: number; sent: number }> {
  const { values } = await scriptBatchSize.get();
  const of = (name: string) => values.find((v) => v.metricName === name && v.labels.script === script)?.value ?? 0;
  return { calls: of('pm_script_batch_size_count'), sent: of('pm_script_batch_size_sum') };
}

describe('redemptions gathered into one script call', () => {
  it('batches concurrent redemptions and answers each exactly as alone: no oversell, retries replayed, all persisted', async () => {
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(MEMBERS);
    await Promise.all(members.map((m) => ctx.grant(m.id, START)));
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK });
    const before = await batchCounts('redeem');

    const fire = (m: { id: number; token: string }, key: string) =>
      post(
        `${base}/v1/redemptions`,
        { authorization: `Bearer ${m.token}`, 'content-type': 'application/json', 'idempotency-key': key },
        JSON.stringify({ goodsId: goods.id, quantity: 1 }),
      ).then((r) => ({ member: m.id, key, status: r.status, body: JSON.parse(r.body) as { code?: string; id?: string } }));
    const results = await Promise.all(members.flatMap((m) => [fire(m, `a-${m.id}`), fire(m, `a-${m.id}`), fire(m, `b-${m.id}`)]));

    const after = await batchCounts('redeem');
    const calls = after.calls - before.calls;
    const sent = after.sent - before.sent;
    expect(sent, 'every redemption went through the batcher, once per request or fewer (a sell-out memo answers some)').toBeLessThanOrEqual(results.length);
    expect(sent, 'redemptions sent to Redis').toBeGreaterThanOrEqual(STOCK);
    expect(calls, 'script calls: batches held more than one redemption').toBeLessThan(sent);

    for (const r of results.filter((x) => x.status !== 201)) {
      expect(r.status, JSON.stringify(r.body)).toBe(409);
      expect(r.body.code).toBe('SOLD_OUT');
    }
    // a retry racing its original got the original's redemption, or SOLD_OUT if neither took a unit
    const byKey = new Map<string, Set<string>>();
    for (const r of results.filter((x) => x.status === 201)) byKey.set(r.key, (byKey.get(r.key) ?? new Set()).add(r.body.id!));
    for (const [key, ids] of byKey) expect(ids.size, key).toBe(1);
    expect(byKey.size, 'keys that took a unit').toBe(STOCK);

    expect(Number(await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock'))).toBe(0);
    const units = new Map<number, number>();
    for (const key of byKey.keys()) {
      const id = Number(key.slice(2));
      units.set(id, (units.get(id) ?? 0) + 1);
    }
    const balances = await Promise.all(members.map((m) => ctx.redis.hget(ctx.keys.account(m.id), 'avail')));
    members.forEach((m, i) => expect(Number(balances[i]), `member ${m.id}`).toBe(START - PRICE * (units.get(m.id) ?? 0)));

    await pipeline.drain();
    const [row] = await ctx.sql`SELECT count(*)::int AS n, COALESCE(sum(quantity), 0)::int AS units FROM redemptions WHERE goods_id = ${goods.id}`;
    expect(row).toEqual({ n: STOCK, units: STOCK });
    const [spend] = await ctx.sql`SELECT count(*)::int AS n, sum(delta)::bigint AS total FROM ledger_entries WHERE kind = 'spend'`;
    expect(spend).toEqual({ n: STOCK, total: -STOCK * PRICE });
  });
});

describe('earns gathered into one script call', () => {
  it('batches concurrent earns and answers each exactly as alone: caps kept, retries replayed, all persisted', async () => {
    const EARNERS = 150;
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(EARNERS);
    // in Redis before the earns (a member's first earn would otherwise be sent twice: not hydrated, then again)
    await Promise.all(members.map((m) => ctx.grant(m.id, 100)));
    const before = await batchCounts('earn');
    const fire = (m: { id: number; token: string }, key: string) =>
      post(
        `${base}/v1/points/earn`,
        { authorization: `Bearer ${m.token}`, 'content-type': 'application/json', 'idempotency-key': key },
        JSON.stringify({ action: 'share' }),
      ).then((r) => ({ member: m.id, key, status: r.status, body: JSON.parse(r.body) as { code?: string; opId?: string; available?: number } }));
    // 8 keys each (the rule pays 10 points, at most 5 times a day); key 0 sent twice
    const results = await Promise.all(members.flatMap((m) => [0, 0, 1, 2, 3, 4, 5, 6, 7].map((k) => fire(m, `share-${m.id}-${k}`))));

    const after = await batchCounts('earn');
    expect(after.sent - before.sent, 'earns sent to Redis').toBe(results.length);
    expect(after.calls - before.calls, 'script calls: batches held more than one earn').toBeLessThan(results.length);

    for (const r of results.filter((x) => x.status !== 200)) {
      expect(r.status, JSON.stringify(r.body)).toBe(409);
      expect(r.body.code).toBe('DAILY_LIMIT_REACHED');
    }
    for (const m of members) {
      const mine = results.filter((r) => r.member === m.id && r.status === 200);
      const ops = new Set(mine.map((r) => r.body.opId));
      expect(ops.size, `member ${m.id}: distinct earns credited`).toBe(5);
      const twice = mine.filter((r) => r.key === `share-${m.id}-0`);
      expect(new Set(twice.map((r) => r.body.opId)).size, 'a retry racing its original gets its op').toBeLessThanOrEqual(1);
    }
    const balances = await Promise.all(members.map((m) => ctx.redis.hget(ctx.keys.account(m.id), 'avail')));
    expect(balances.map(Number)).toEqual(members.map(() => 150));

    await pipeline.drain();
    const ids = members.map((m) => m.id);
    const [row] = await ctx.sql`SELECT count(*)::int AS n, sum(delta)::int AS points FROM ledger_entries WHERE kind = 'earn' AND biz_type = 'share' AND user_id = ANY(${ids})`;
    expect(row).toEqual({ n: 5 * EARNERS, points: 50 * EARNERS });
  });
});

describe('check-ins gathered into one script call', () => {
  it('batches concurrent check-ins: one per member and day, the others ALREADY_CHECKED_IN with its result, all persisted', async () => {
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(150);
    const before = await batchCounts('checkin');
    const fire = (m: { id: number; token: string }) =>
      post(`${base}/v1/me/checkins`, { authorization: `Bearer ${m.token}` }, '').then((r) => ({
        member: m.id,
        status: r.status,
        body: JSON.parse(r.body) as { code?: string; day?: string; points?: number; today?: { day: string; points: number } },
      }));
    const results = await Promise.all(members.flatMap((m) => [fire(m), fire(m), fire(m)]));

    const after = await batchCounts('checkin');
    expect(after.sent - before.sent, 'check-ins sent to Redis').toBeGreaterThanOrEqual(results.length);
    expect(after.calls - before.calls, 'script calls: batches held more than one check-in').toBeLessThan(results.length);
    for (const m of members) {
      const mine = results.filter((r) => r.member === m.id);
      const done = mine.filter((r) => r.status === 201);
      expect(done, `member ${m.id}: checked in once`).toHaveLength(1);
      expect(done[0].body.points).toBe(10);
      for (const r of mine.filter((x) => x.status !== 201)) {
        expect(r.status, JSON.stringify(r.body)).toBe(409);
        expect(r.body.code).toBe('ALREADY_CHECKED_IN');
        expect(r.body.today).toMatchObject({ day: done[0].body.day, points: 10 });
      }
    }
    const balances = await Promise.all(members.map((m) => ctx.redis.hget(ctx.keys.account(m.id), 'avail')));
    expect(balances.map(Number)).toEqual(members.map(() => 10));

    await pipeline.drain();
    const ids = members.map((m) => m.id);
    const [row] = await ctx.sql`SELECT count(*)::int AS n, sum(delta)::int AS points FROM ledger_entries WHERE biz_type = 'checkin' AND user_id = ANY(${ids})`;
    expect(row).toEqual({ n: 150, points: 1500 });
  });
});

describe('the batcher when a call goes wrong', () => {
  const one = (i: number) => ({ keys: Array.from({ length: 9 }, (_, k) => `pmbatch:${i}:${k}`), args: Array.from({ length: 13 }, (_, a) => `${i}.${a}`) });
  async function withScript(lua: string, max: number, n: number) {
    const redis = registerScripts(createRedis(REDIS_URL, 'worker'));
    // a real Redis running a script that answers as redeem-many must not
    redis.defineCommand('pmRedeemMany', { lua });
    try {
      const batcher = new ScriptBatcher(redis, REDEEM_SCRIPT, max);
      return await Promise.allSettled(Array.from({ length: n }, (_, i) => batcher.run(one(i).keys, one(i).args)));
    } finally {
      redis.disconnect();
    }
  }

  it('rejects every redemption of a call whose reply is not one reply per redemption', async () => {
    const settled = await withScript('return { { 1, "x", 0, 1 } }', 32, 3);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(String((settled[0] as PromiseRejectedResult).reason)).toMatch(/redeem-many answered .* for 3 calls/);
  });

  it('rejects every redemption of a call that failed, and resolves or rejects each by its own reply otherwise', async () => {
    const failed = await withScript("return redis.error_reply('BOOM whole call')", 32, 4);
    expect(failed.every((s) => s.status === 'rejected' && /BOOM whole call/.test(String(s.reason)))).toBe(true);
    const mixed = await withScript("local out = {} for i = 1, tonumber(ARGV[1]) do out[i] = (i == 2) and { 0, 'BAD_ARGUMENT quantity' } or { 1, ARGV[2 + 13 * (i - 1)], 0, 7 } end return out", 32, 3);
    expect(mixed.map((s) => (s.status === 'fulfilled' ? s.value[1] : String(s.reason)))).toEqual(['0.0', 'ReplyError: BAD_ARGUMENT quantity', '2.0']);
  });

  it('closes a batch at its maximum: 4 redemptions with a maximum of 2 go as 2 + 2', async () => {
    const sizes = await withScript("local out = {} for i = 1, tonumber(ARGV[1]) do out[i] = { 1, ARGV[1], 0, 7 } end return out", 2, 4);
    expect(sizes.map((s) => (s.status === 'fulfilled' ? s.value[1] : String(s.reason)))).toEqual(['2', '2', '2', '2']);
  });
});
