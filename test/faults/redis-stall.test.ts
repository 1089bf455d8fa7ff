/**
 * A stalled Redis (accepting connections, answering nothing: CLIENT PAUSE on a private
 * redis-server) turns API requests into 503 SERVICE_UNAVAILABLE with Retry-After within
 * REDIS_COMMAND_TIMEOUT_MS, instead of requests that hang until Redis wakes up. A write refused
 * that way may still run once Redis resumes; its retry with the same Idempotency-Key credits once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { sleep } from '../crash/procs.ts';
import { startPrivateRedis, type PrivateRedis } from './support.ts';

const TIMEOUT_MS = 300;
const PAUSE_MS = 3000;

let server: PrivateRedis;
let ctx: TestContext;
beforeAll(async () => {
  server = await startPrivateRedis();
  ctx = await createTestContext({ REDIS_URL: server.url, REDIS_COMMAND_TIMEOUT_MS: TIMEOUT_MS });
});
afterAll(async () => {
  await server?.admin.call('CLIENT', 'UNPAUSE').catch(() => {});
  await ctx?.close();
  await server?.stop();
});

describe('stalled Redis', () => {
  it('answers reads and writes with 503 within the command timeout, and the retried write credits once', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const auth = { authorization: `Bearer ${m.token}` };
    expect((await ctx.app.inject({ url: '/v1/me/points', headers: auth })).statusCode).toBe(200);

    await server.admin.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL');
    const pausedAt = Date.now();
    const t1 = Date.now();
    const read = await ctx.app.inject({ url: '/v1/me/points', headers: auth });
    const readMs = Date.now() - t1;
    const t2 = Date.now();
    const earn = await ctx.app.inject({
      method: 'POST',
      url: '/v1/points/earn',
      headers: { ...auth, 'idempotency-key': 'during-stall' },
      payload: { action: 'share' },
    });
    const earnMs = Date.now() - t2;

    for (const [res, ms] of [[read, readMs], [earn, earnMs]] as const) {
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('SERVICE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBe('1');
      expect(ms).toBeLessThan(TIMEOUT_MS * 4);
    }
    expect(Date.now() - pausedAt).toBeLessThan(PAUSE_MS);

    await sleep(PAUSE_MS - (Date.now() - pausedAt) + 200);
    const retry = await ctx.app.inject({
      method: 'POST',
      url: '/v1/points/earn',
      headers: { ...auth, 'idempotency-key': 'during-stall' },
      payload: { action: 'share' },
    });
    expect(retry.statusCode).toBe(200);
    // The refused earn either reached Redis and ran when the pause ended (the retry is its replay),
    // or never left the API: the write gate, closed by the stall (its check of Redis timed out
    // too), refused it before sending — then the retry is the first run. Credited once either way.
    if (retry.headers['idempotent-replayed'] !== 'true') expect(earn.json().message).toMatch(/Redis recovery/);
    const after = (await ctx.app.inject({ url: '/v1/me/points', headers: auth })).json();
    expect(after.available).toBe(100 + retry.json().delta);
    // and nothing of the stalled request runs later
    await sleep(500);
    expect((await ctx.app.inject({ url: '/v1/me/points', headers: auth })).json().available).toBe(100 + retry.json().delta);
  });

  it('starts an API while Redis is stalled, and its queues work once Redis answers again', async () => {
    // BullMQ asks Redis its version once per queue connection and keeps the outcome: a timed-out
    // INFO at boot used to leave the API's push, broadcast, admin-job and persist queues failing
    // every call for the life of the process
    const [m] = await ctx.createMembers(1);
    const admin = await ctx.admin();
    await ctx.sql`INSERT INTO devices (user_id, platform, token) VALUES (${m.id}, 'android', 'stalled-boot')`;
    await server.admin.call('CLIENT', 'PAUSE', '1200', 'ALL');
    const app = await buildApp({ ...ctx.env, REDIS_COMMAND_TIMEOUT_MS: 100 }, { logger: false });
    try {
      await app.ready();
      await sleep(1500);
      const { recordIds } = await app.pushes.enqueue(m.id, { type: 'test', title: 'after the stall', body: 'hello' });
      expect(recordIds).toHaveLength(1);
      const parked = await app.inject({ url: '/v1/admin/persist/parked', headers: { authorization: `Bearer ${admin.token}` } });
      expect(parked.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
