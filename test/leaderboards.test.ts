import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from './support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const earn = (token: string, action: string, key: string) =>
  ctx.app.inject({
    method: 'POST',
    url: '/v1/points/earn',
    headers: { authorization: `Bearer ${token}`, 'idempotency-key': key },
    payload: { action },
  });

describe('leaderboards', () => {
  it('ranks members by rule earns in every period', async () => {
    const pipeline = await ctx.startPipeline();
    const [a, b, c] = await ctx.createMembers(3);
    await ctx.grant(c.id, 10_000); // admin grants do not count on the boards
    for (let i = 0; i < 3; i++) expect((await earn(a.token, 'review', `a${i}`)).statusCode).toBe(200);
    expect((await earn(b.token, 'share', 'b0')).statusCode).toBe(200);
    await pipeline.drain();

    for (const period of ['daily', 'weekly', 'monthly', 'all']) {
      const top = await ctx.app.inject({ url: `/v1/leaderboards/${period}?limit=10` });
      expect(top.statusCode).toBe(200);
      expect(top.json().items.map((i: { userId: number; points: number; rank: number }) => [i.rank, i.userId, i.points])).toEqual([
        [1, a.id, 60],
        [2, b.id, 10],
      ]);
    }
    const me = await ctx.app.inject({ url: '/v1/leaderboards/weekly/me', headers: { authorization: `Bearer ${b.token}` } });
    expect(me.json()).toEqual({ rank: 2, points: 10, topPercent: 100 });
    const none = await ctx.app.inject({ url: '/v1/leaderboards/daily/me', headers: { authorization: `Bearer ${c.token}` } });
    expect(none.json()).toEqual({ rank: null, points: 0, topPercent: null });
  });
});
