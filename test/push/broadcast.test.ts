/**
 * Broadcasts: an admin sends to a segment; the plan job pages the members into batch jobs and
 * each batch enqueues one push per member. Delivered through the webhook transport to a stub,
 * each member's devices get the message exactly once, even when a batch job runs twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { BROADCAST_JOB_OPTIONS, BROADCAST_QUEUE, PUSH_QUEUE } from '../../src/push/jobs.ts';
import type { BatchJob } from '../../src/push/broadcast.ts';
import { createLogger } from '../../workers/logger.ts';
import { startPushWorker } from '../../workers/push.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { startHttpStub, waitFor, type Stub } from './stubs.ts';

let ctx: TestContext;
let stub: Stub;
let worker: ReturnType<typeof startPushWorker>;
let queue: Queue;
let pushQueue: Queue;

beforeAll(async () => {
  stub = await startHttpStub(() => ({ status: 204 }));
  ctx = await createTestContext({
    PUSH_TRANSPORT: 'webhook',
    WEBHOOK_URL: `${stub.url}/push`,
    WEBHOOK_SECRET: 'broadcast-test-secret',
    BROADCAST_BATCH: 2,
  });
  worker = startPushWorker({ env: ctx.env, sql: ctx.sql, prefix: ctx.keys.queuePrefix, concurrency: 4, log: createLogger('silent', 'test') });
  queue = new Queue(BROADCAST_QUEUE, { connection: ctx.redis, prefix: ctx.keys.queuePrefix(BROADCAST_QUEUE) });
  pushQueue = new Queue(PUSH_QUEUE, { connection: ctx.redis, prefix: ctx.keys.queuePrefix(PUSH_QUEUE) });
});

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  await pushQueue?.close();
  await ctx?.close();
  await stub?.close();
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

let broadcasts = 0;
const broadcast = (token: string, payload: unknown, key = `broadcast-${++broadcasts}`) =>
  ctx.app.inject({ method: 'POST', url: '/v1/admin/broadcasts', headers: { ...auth(token), 'idempotency-key': key }, payload: payload as object });

const deliveries = () => stub.requests.map((r) => JSON.parse(r.body) as { token: string; title: string; data: { broadcastId: string } });

const idle = () =>
  waitFor('broadcast and push queues to drain', async () => {
    const counts = await Promise.all([queue, pushQueue].map((q) => q.getJobCounts('wait', 'active', 'delayed', 'prioritized')));
    return counts.every((c) => Object.values(c).every((n) => n === 0));
  });

describe('broadcasts', () => {
  it('sends once per member device, including when a batch job runs twice', async () => {
    const admin = await ctx.admin();
    const members = await ctx.createMembers(5);
    // three members with devices (one with two), two with none
    const tokens: string[] = [];
    for (const [i, m] of members.slice(0, 3).entries()) {
      for (const t of i === 0 ? [`m0-phone`, `m0-tablet`] : [`m${i}-phone`]) {
        const res = await ctx.app.inject({ method: 'POST', url: '/v1/me/devices', headers: auth(m.token), payload: { platform: 'android', token: t } });
        expect(res.statusCode).toBe(201);
        tokens.push(t);
      }
    }

    const res = await broadcast(admin.token, { title: 'Double points weekend', body: 'Earn 2x until Sunday', segment: 'all' });
    expect(res.statusCode).toBe(202);
    const { broadcastId, members: count } = res.json();
    expect(count).toBe(5);
    await waitFor('every device to receive the broadcast', async () => deliveries().length >= tokens.length);
    await idle();

    // a batch delivered again (a redelivery after a crash) records and sends nothing new
    const batches = (await queue.getJobs(['completed'])).filter((j) => j.name === 'batch' && (j.data as BatchJob).broadcastId === broadcastId);
    expect(batches).toHaveLength(3);
    for (const b of batches) {
      await queue.add('batch', b.data, { ...BROADCAST_JOB_OPTIONS, jobId: `${b.id}-again` });
    }
    await waitFor('the repeated batches to finish', async () => {
      const again = await Promise.all(batches.map((b) => queue.getJob(`${b.id}-again`)));
      const states = await Promise.all(again.map((j) => j?.getState()));
      return states.every((s) => s === 'completed');
    });
    expect((await queue.getJob(`${batches[0].id}-again`))?.returnvalue).toBe(0);
    await ctx.app.broadcasts.runBatch(batches[0].data as BatchJob);
    await idle();

    const mine = deliveries().filter((d) => d.data.broadcastId === broadcastId);
    expect(mine.map((d) => d.token).sort()).toEqual([...tokens].sort());
    expect(mine.every((d) => d.title === 'Double points weekend')).toBe(true);

    // every member has it in their notifications; the admin is not a member of the segment
    for (const m of members) {
      const list = await ctx.app.inject({ method: 'GET', url: '/v1/me/notifications', headers: auth(m.token) });
      const items = list.json().items.filter((i: { data: { broadcastId?: string } }) => i.data.broadcastId === broadcastId);
      expect(items.length).toBeGreaterThanOrEqual(1);
      expect(items.every((i: { type: string; status: string }) => i.type === 'broadcast' && i.status === 'sent')).toBe(true);
    }
    const adminList = await ctx.app.inject({ method: 'GET', url: '/v1/me/notifications', headers: auth(admin.token) });
    expect(adminList.json().items).toEqual([]);
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`
      SELECT count(*) AS n FROM push_records WHERE data->>'broadcastId' = ${broadcastId}`;
    expect(n).toBe(tokens.length + 2);
  });

  it('counts the members of each segment', async () => {
    const admin = await ctx.admin();
    const payload = (segment: unknown) => ({ title: 't', body: 'b', segment });
    const [{ total }] = await ctx.sql<Array<{ total: number }>>`SELECT count(*) AS total FROM users WHERE role = 'member'`;
    const [{ withDevices }] = await ctx.sql<Array<{ withDevices: number }>>`
      SELECT count(DISTINCT d.user_id) AS "withDevices" FROM devices d JOIN users u ON u.id = d.user_id WHERE u.role = 'member'`;
    const rich = await ctx.createMembers(2);
    await ctx.sql`UPDATE point_accounts SET available = 5000 WHERE user_id IN ${ctx.sql(rich.map((r) => r.id))}`;

    expect((await broadcast(admin.token, payload('all'))).json().members).toBe(total + 2);
    expect((await broadcast(admin.token, payload('members-with-devices'))).json().members).toBe(withDevices);
    expect((await broadcast(admin.token, payload({ minBalance: 5000 }))).json().members).toBe(2);
    const none = await broadcast(admin.token, payload({ minBalance: 10_000_000 }));
    expect(none.statusCode).toBe(202);
    expect(none.json().members).toBe(0);
    await idle();
  });

  it('rejects bad broadcasts and non-admins', async () => {
    const admin = await ctx.admin();
    const [m] = await ctx.createMembers(1);
    const ok = { title: 't', body: 'b', segment: 'all' };
    for (const bad of [
      { ...ok, segment: 'everyone' },
      { ...ok, segment: { minBalance: -1 } },
      { ...ok, segment: { minBalance: 5, extra: true } },
      { ...ok, title: '' },
      { ...ok, body: 'x'.repeat(1001) },
      { ...ok, urgent: true },
    ]) {
      const res = await broadcast(admin.token, bad);
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
    }
    expect((await broadcast(m.token, ok)).statusCode).toBe(403);
  });
});
