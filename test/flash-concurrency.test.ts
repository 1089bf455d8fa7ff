/**
 * Flash sale through the real HTTP server: 500 members fire 2 redemptions each at one item with
 * stock 50 and a per-member limit of 1, all at once.
 */
import { describe, expect, it } from 'vitest';
import { listeningContext } from './support/http-client.ts';
import type { TestContext } from './support/context.ts';

const MEMBERS = 500;
const STOCK = 50;
const PRICE = 100;
const START = 1000;

let ctx: TestContext;
let base: string;
// all 1,000 requests are issued at once; 256 sockets carry them (a client fleet, not a SYN flood)
const { post } = listeningContext((c, url) => {
  ctx = c;
  base = url;
});


describe('flash sale under concurrency', () => {
  it('accepts exactly the stock, charges nobody twice, and persists exactly what was accepted', async () => {
    const pipeline = await ctx.startPipeline();
    const members = await ctx.createMembers(MEMBERS);
    await Promise.all(members.map((m) => ctx.grant(m.id, START)));
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK, perUserLimit: 1 });

    const fire = (m: { id: number; token: string }, attempt: number) =>
      post(
        `${base}/v1/redemptions`,
        {
          authorization: `Bearer ${m.token}`,
          'content-type': 'application/json',
          'idempotency-key': `flash-${m.id}-${attempt}`,
        },
        JSON.stringify({ goodsId: goods.id, quantity: 1 }),
      ).then((r) => ({ member: m.id, status: r.status, body: JSON.parse(r.body) as { code?: string } }));
    const results = await Promise.all(members.flatMap((m) => [fire(m, 1), fire(m, 2)]));

    const accepted = results.filter((r) => r.status === 201);
    expect(accepted).toHaveLength(STOCK);
    const rejected = results.filter((r) => r.status !== 201);
    for (const r of rejected) {
      expect(r.status).toBe(409);
      expect(['SOLD_OUT', 'LIMIT_EXCEEDED']).toContain(r.body.code);
    }
    const winners = new Set(accepted.map((r) => r.member));
    expect(winners.size).toBe(STOCK);

    expect(Number(await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock'))).toBe(0);
    const balances = await Promise.all(members.map((m) => ctx.redis.hget(ctx.keys.account(m.id), 'avail')));
    members.forEach((m, i) => expect(Number(balances[i])).toBe(winners.has(m.id) ? START - PRICE : START));

    await pipeline.drain();
    const [{ n, units }] = await ctx.sql`
      SELECT count(*)::int AS n, COALESCE(sum(quantity), 0)::int AS units FROM redemptions WHERE goods_id = ${goods.id}`;
    expect({ n, units }).toEqual({ n: STOCK, units: STOCK });
    const [spend] = await ctx.sql`
      SELECT count(*)::int AS n, sum(delta)::bigint AS total FROM ledger_entries WHERE kind = 'spend'`;
    expect(spend).toEqual({ n: STOCK, total: -STOCK * PRICE });
    const accounts = await ctx.sql<Array<{ user_id: number; available: number }>>`
      SELECT user_id, available FROM point_accounts WHERE user_id = ANY(${members.map((m) => m.id)}::bigint[])`;
    const durable = new Map(accounts.map((a) => [a.user_id, a.available]));
    members.forEach((m, i) => expect(durable.get(m.id)).toBe(Number(balances[i])));
    expect(await ctx.redis.hlen(ctx.keys.reservations(goods.id))).toBe(0);
  });
});
