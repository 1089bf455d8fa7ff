/**
 * REDIS_WAIT_REPLICAS: a write is acknowledged only once that many replicas hold it. Against a
 * Redis with no replica, every write runs on the master but is answered 503 (not acknowledged);
 * the retry with the same Idempotency-Key replays the same op and is refused the same way, and
 * with the flag off the same write is acknowledged at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';

let waiting: TestContext;
let plain: TestContext;
beforeAll(async () => {
  waiting = await createTestContext({ REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 50 });
  plain = await createTestContext();
});
afterAll(async () => {
  await waiting?.close();
  await plain?.close();
});

const grant = async (ctx: TestContext, token: string, userId: number, key: string) =>
  ctx.app.inject({
    method: 'POST',
    url: '/v1/admin/points/grant',
    headers: { authorization: `Bearer ${token}`, 'idempotency-key': key },
    payload: { userId, amount: 25, reason: 'wait test' },
  });

describe('replicated acknowledgements (REDIS_WAIT_REPLICAS)', () => {
  it('answers 503 while no replica holds the write, and 200 with the flag off', async () => {
    const info = await waiting.redis.info('replication');
    expect(info, 'the shared test Redis has no replica').toMatch(/connected_slaves:0/);

    const admin = await waiting.admin();
    const [m] = await waiting.createMembers(1);
    // loading the account into Redis is a write too: it runs, and its WAIT is refused
    await expect(waiting.app.points.hydrate(m.id)).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(await waiting.redis.hget(waiting.keys.account(m.id), 'avail')).toBe('0');
    const first = await grant(waiting, admin.token, m.id, 'w-1');
    expect(first.statusCode).toBe(503);
    expect(first.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(first.json().message).toMatch(/0 of 1 Redis replica/);
    // applied on the master once: the retry replays it and is refused again, never applied twice
    expect(await waiting.redis.hget(waiting.keys.account(m.id), 'avail')).toBe('25');
    const again = await grant(waiting, admin.token, m.id, 'w-1');
    expect(again.statusCode).toBe(503);
    expect(await waiting.redis.hget(waiting.keys.account(m.id), 'avail')).toBe('25');

    const padmin = await plain.admin();
    const [p] = await plain.createMembers(1);
    const ok = await grant(plain, padmin.token, p.id, 'p-1');
    expect(ok.statusCode).toBe(200);
    expect(ok.json().available).toBe(25);
  });
});
