/**
 * The in-process sold-out memo only ever refuses more: once its short window passes, units
 * restocked (or released) after a sell-out are sold again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, redeemAs, type TestContext } from './support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const redeem = (token: string, goodsId: number, key: string) => redeemAs(ctx, token, goodsId, key);

describe('sold-out memo', () => {
  it('answers SOLD_OUT after a sell-out and sells a restocked unit once the window passes', async () => {
    const [a, b, c] = await ctx.createMembers(3);
    for (const m of [a, b, c]) await ctx.grant(m.id, 500);
    const g = await ctx.createGoods({ pointsPrice: 100, stock: 1 });
    expect((await redeem(a.token, g.id, 'a1')).statusCode).toBe(201);
    expect((await redeem(b.token, g.id, 'b1')).json().code).toBe('SOLD_OUT');
    // a replay of an accepted redemption is still answered from its op record, memo or not
    expect((await redeem(a.token, g.id, 'a1')).statusCode).toBe(201);
    await ctx.app.goods.restock(g.id, 1, 0);
    await new Promise((r) => setTimeout(r, 40));
    expect((await redeem(c.token, g.id, 'c1')).statusCode).toBe(201);
    expect(Number(await ctx.redis.hget(ctx.keys.goods(g.id), 'stock'))).toBe(0);
  });
});
