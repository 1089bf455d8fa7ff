/**
 * The at-once redemptions that reach the API together run in one script call
 * (src/redemptions/redeem-batch.ts): 600 requests at once through the real HTTP server — each
 * of 200 members sends one key twice (a retry racing its original) and a second key — at an item
 * with less stock than they ask for. The batches must have held more than one redemption, and
 * the answers and the state must be what one call per redemption gives: no oversell, every member
 * charged once per unit, a retry answered with its original's redemption, everything persisted.
 */
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redeemBatchSize } from '../src/metrics/registry.ts';
import { createTestContext, type TestContext } from './support/context.ts';

const MEMBERS = 200;
const STOCK = 150;
const PRICE = 10;
const START = 1000;

let ctx: TestContext;
let base: string;
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
beforeAll(async () => {
  ctx = await createTestContext();
  base = await ctx.app.listen({ host: '127.0.0.1', port: 0, backlog: 1024 });
});
afterAll(async () => {
  agent.destroy();
  await ctx?.close();
});

function post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (data += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function batchCounts(): Promise<{ calls: number; redemptions: number }> {
  const { values } = await redeemBatchSize.get();
  const of = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
  return { calls: of('pm_redeem_batch_size_count'), redemptions: of('pm_redeem_batch_size_sum') };
}

describe('redemptions gathered into one script call', () => {
  it('batches concurrent redemptions and answers each exactly as alone: no oversell, retries replayed, all persisted', async () => {
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(MEMBERS);
    await Promise.all(members.map((m) => ctx.grant(m.id, START)));
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK });
    const before = await batchCounts();

    const fire = (m: { id: number; token: string }, key: string) =>
      post(
        `${base}/v1/redemptions`,
        { authorization: `Bearer ${m.token}`, 'content-type': 'application/json', 'idempotency-key': key },
        JSON.stringify({ goodsId: goods.id, quantity: 1 }),
      ).then((r) => ({ member: m.id, key, status: r.status, body: JSON.parse(r.body) as { code?: string; id?: string } }));
    const results = await Promise.all(members.flatMap((m) => [fire(m, `a-${m.id}`), fire(m, `a-${m.id}`), fire(m, `b-${m.id}`)]));

    const after = await batchCounts();
    const calls = after.calls - before.calls;
    const sent = after.redemptions - before.redemptions;
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
