import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from './support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ RATE_LIMIT_MAX: 3, RATE_LIMIT_ALLOWLIST: '' });
});
afterAll(async () => ctx?.close());

describe('rate limits', () => {
  it('limits each member separately, keyed by member id', async () => {
    const [a, b] = await ctx.createMembers(2);
    const get = (token: string) => ctx.app.inject({ url: '/v1/me/points', headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 3; i++) expect((await get(a.token)).statusCode).toBe(200);
    const limited = await get(a.token);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED', statusCode: 429 });
    expect((await get(b.token)).statusCode).toBe(200);
  });

  it('limits anonymous callers by IP', async () => {
    const get = () => ctx.app.inject({ url: '/v1/goods', remoteAddress: '203.0.113.9' });
    for (let i = 0; i < 3; i++) expect((await get()).statusCode).toBe(200);
    expect((await get()).statusCode).toBe(429);
    expect((await ctx.app.inject({ url: '/v1/goods', remoteAddress: '203.0.113.10' })).statusCode).toBe(200);
  });
});

describe('rate-limit allow-list', () => {
  it('lets listed addresses through without limits', async () => {
    const other = await createTestContext({ RATE_LIMIT_MAX: 1, RATE_LIMIT_ALLOWLIST: '198.51.100.0/24' });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await other.app.inject({ url: '/v1/goods', remoteAddress: '198.51.100.7' });
        expect(r.statusCode).toBe(200);
      }
    } finally {
      await other.close();
    }
  });
});
