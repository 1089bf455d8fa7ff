/**
 * Issue 6, item 2: a redemption is readable by its owner only, on every read path (the live op
 * in Redis before it is persisted, the Postgres row after). Members in the SAME partition share a
 * Redis slot, so that is where an id-only lookup would leak.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

describe('GET /v1/redemptions/:id', () => {
  it("answers 404 to members of the same partition, before and after the order is persisted", async () => {
    const members = await ctx.createMembers(64);
    const victim = members[0];
    const sameSlot = members.slice(1).filter((m) => ctx.keys.partitionOf(m.id) === ctx.keys.partitionOf(victim.id));
    expect(sameSlot.length).toBeGreaterThanOrEqual(2);
    await ctx.grant(victim.id, 500);
    const goods = await ctx.createGoods({ pointsPrice: 50, stock: 10 });
    const res = await redeemAs(ctx, victim.token, goods.id, 'mine');
    expect(res.statusCode).toBe(201);
    const { id } = res.json();

    const read = (token: string) => ctx.app.inject({ url: `/v1/redemptions/${id}`, headers: bearer(token) });
    // live (not yet persisted): answered from Redis
    expect((await read(victim.token)).statusCode).toBe(200);
    for (const other of sameSlot) expectError(await read(other.token), 404, 'REDEMPTION_NOT_FOUND');

    const pipeline = await ctx.startPipeline();
    await pipeline.drain();
    await pipeline.stop();
    const mine = await read(victim.token);
    expect(mine.statusCode).toBe(200);
    expect(mine.json()).toMatchObject({ id, exchangeNo: res.json().exchangeNo, goodsId: goods.id });
    for (const other of sameSlot) expectError(await read(other.token), 404, 'REDEMPTION_NOT_FOUND');
  });

  it('gives every redemption an unguessable id and an exchange number not derived from it', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    const goods = await ctx.createGoods({ pointsPrice: 10, stock: 100 });
    const ids = new Set<string>();
    const nos = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = (await redeemAs(ctx, m.token, goods.id, `k-${i}`)).json();
      expect(r.id).toMatch(/^[0-9a-f]{32}$/);
      expect(r.exchangeNo).toMatch(/^PM[0-9A-HJKMNP-TV-Z]{22}$/);
      // both begin with the time; their random parts are drawn apart
      expect(r.exchangeNo.slice(11)).not.toContain(r.id.slice(12, 20).toUpperCase());
      ids.add(r.id);
      nos.add(r.exchangeNo);
    }
    expect(ids.size).toBe(20);
    expect(nos.size).toBe(20);
  });
});
