/**
 * The in-process sold-out memo only ever refuses more: once its short window passes, units
 * restocked (or released) after a sell-out are sold again. When the window has passed, one request
 * asks Redis again while the others keep the memo's answer, instead of all of them running the
 * redemption script until the first answer is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptOutcomes } from '../src/metrics/registry.ts';
import { createTestContext, redeemAs, type TestContext } from './support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const redeem = (token: string, goodsId: number, key: string) => redeemAs(ctx, token, goodsId, key);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** n members with points and an item of stock 1 that the first bought and the second was refused: the memo is set. */
async function soldOutItem(n: number) {
  const members = await ctx.createMembers(n);
  for (const m of members) await ctx.grant(m.id, 500);
  const g = await ctx.createGoods({ pointsPrice: 100, stock: 1 });
  expect((await redeem(members[0].token, g.id, `${g.id}-first`)).statusCode).toBe(201);
  expect((await redeem(members[1].token, g.id, `${g.id}-second`)).json().code).toBe('SOLD_OUT');
  return { members, g };
}

/** At-once redemption scripts that answered SOLD_OUT in this process (the memo's answers count as the reserve's). */
async function soldOutScriptRuns(): Promise<number> {
  expect(ctx.app.redemptions.path).toBe('atonce');
  const { values } = await scriptOutcomes.get();
  return values.filter((v) => v.labels.script === 'redeem' && v.labels.result === 'SOLD_OUT').reduce((n, v) => n + v.value, 0);
}

/** At-once redemption scripts run in this process, whatever they answered. */
async function redeemScriptRuns(): Promise<number> {
  const { values } = await scriptOutcomes.get();
  return values.filter((v) => v.labels.script === 'redeem').reduce((n, v) => n + v.value, 0);
}

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

  it('while the memo answers, a key that has a record still replays it, or is refused as reused for another request', async () => {
    const { members, g } = await soldOutItem(2);
    // the memo's window held open for this test, so that every answer below is the memo's
    (ctx.app.redemptions as unknown as { soldOutUntil: Map<number, number> }).soldOutUntil.set(g.id, Date.now() + 60_000);
    const before = await redeemScriptRuns();
    const first = await redeem(members[0].token, g.id, `${g.id}-first`);
    expect(first.statusCode).toBe(201);
    expect(first.json().id).toBeTruthy();
    const reused = await redeemAs(ctx, members[0].token, g.id, `${g.id}-first`, 2);
    expect(reused.statusCode).toBe(422);
    expect(reused.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await redeem(members[1].token, g.id, `${g.id}-second`)).json().code).toBe('SOLD_OUT');
    expect(await redeemScriptRuns()).toBe(before);
  });

  it('refreshes an expired memo with one request to Redis: the concurrent ones keep its answer', async () => {
    const { members, g } = await soldOutItem(42);
    await sleep(40); // the window has passed
    const before = await soldOutScriptRuns();
    const answers = await Promise.all(members.slice(2).map((m, i) => redeem(m.token, g.id, `burst-${i}`)));
    expect(answers.map((a) => a.json().code)).toEqual(Array(40).fill('SOLD_OUT'));
    // one refresh (a second only if this machine took longer than the window to send the 40)
    expect(await soldOutScriptRuns() - before).toBeLessThanOrEqual(2);
    expect(Number(await ctx.redis.hget(ctx.keys.goods(g.id), 'stock'))).toBe(0);
  });

  it('a refresh that finds units clears the memo: concurrent requests are sold the rest at once', async () => {
    const { members, g } = await soldOutItem(6);
    await ctx.app.goods.restock(g.id, 4, 0);
    await sleep(40);
    expect((await redeem(members[2].token, g.id, 's2')).statusCode).toBe(201);
    const rest = await Promise.all(members.slice(3).map((m, i) => redeem(m.token, g.id, `s-rest-${i}`)));
    expect(rest.map((r) => r.statusCode)).toEqual([201, 201, 201]);
    expect(Number(await ctx.redis.hget(ctx.keys.goods(g.id), 'stock'))).toBe(0);
  });
});
