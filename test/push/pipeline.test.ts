/**
 * The push pipeline end to end: PushService.enqueue records and queues, the push worker role
 * delivers through the FCM transport (built from env, pointed at a loopback stub), and the
 * outcome lands on the record — sent, retried with backoff then dead-lettered, or dead at once
 * with the device removed — visible through the member and admin APIs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { PUSH_QUEUE } from '../../src/push/jobs.ts';
import { createLogger } from '../../workers/logger.ts';
import { startPushWorker } from '../../workers/push.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { rsaKeys, serviceAccountJson, startHttpStub, waitFor, type Stub } from './stubs.ts';

/**
 * Retry backoff base, and how late a retry may come after its backoff elapsed (queue pick-up plus
 * one send to the stub). The slack stays below the base so that the bounds of consecutive retries
 * do not overlap: a fixed delay cannot pass for a growing one.
 */
const BACKOFF_MS = 400;
const BACKOFF_SLACK_MS = 350;

let ctx: TestContext;
let stub: Stub;
let worker: ReturnType<typeof startPushWorker>;
let queue: Queue;
/** Tokens the stub now accepts whatever their prefix says. */
const healed = new Set<string>();

const fcmError = (status: number, code: string) => ({ status, body: { error: { code: status, status: code, details: [{ errorCode: code }] } } });

beforeAll(async () => {
  stub = await startHttpStub((req) => {
    if (req.path === '/token') return { status: 200, body: { access_token: 'stub-access-token', expires_in: 3600 } };
    const token = (JSON.parse(req.body) as { message: { token: string } }).message.token;
    if (healed.has(token) || token.startsWith('ok')) return { status: 200, body: { name: 'projects/pm-test/messages/1' } };
    if (token.startsWith('gone')) return fcmError(404, 'UNREGISTERED');
    if (token.startsWith('bad')) return fcmError(400, 'INVALID_ARGUMENT');
    return fcmError(500, 'INTERNAL');
  });
  ctx = await createTestContext({
    PUSH_TRANSPORT: 'fcm',
    FCM_SERVICE_ACCOUNT_JSON: serviceAccountJson(rsaKeys().privateKey, `${stub.url}/token`),
    FCM_BASE_URL: stub.url,
    PUSH_ATTEMPTS: 3,
    PUSH_BACKOFF_MS: BACKOFF_MS,
  });
  worker = startPushWorker({
    env: ctx.env,
    sql: ctx.sql,
    prefix: ctx.keys.queuePrefix,
    concurrency: 4,
    log: createLogger('silent', 'test'),
  });
  queue = new Queue(PUSH_QUEUE, { connection: ctx.redis, prefix: ctx.keys.queuePrefix(PUSH_QUEUE) });
});

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  await ctx?.close();
  await stub?.close();
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const retryPush = (token: string, recordId: number, key: string) =>
  ctx.app.inject({ method: 'POST', url: `/v1/admin/pushes/${recordId}/retry`, headers: { ...auth(token), 'idempotency-key': key } });

async function register(member: { token: string }, platform: string, token: string): Promise<number> {
  const res = await ctx.app.inject({ method: 'POST', url: '/v1/me/devices', headers: auth(member.token), payload: { platform, token } });
  expect(res.statusCode).toBe(201);
  return res.json().id as number;
}

interface Rec {
  id: number;
  deviceId: number | null;
  status: string;
  attempts: number;
  error: string | null;
  sentAt: Date | null;
}

const records = (userId: number) =>
  ctx.sql<Rec[]>`SELECT id, device_id AS "deviceId", status, attempts, error, sent_at AS "sentAt"
                 FROM push_records WHERE user_id = ${userId} ORDER BY id`;

const settled = (userId: number, status = ['sent', 'dead']) =>
  waitFor(`pushes of member ${userId} to settle`, async () => {
    const rows = await records(userId);
    return rows.length > 0 && rows.every((r) => status.includes(r.status)) && rows;
  });

const sendsTo = (token: string) =>
  stub.requests.filter((r) => r.path.endsWith('/messages:send') && (JSON.parse(r.body) as { message: { token: string } }).message.token === token);

const push = { type: 'test', title: 'Hello', body: 'Your points are waiting', data: { screen: 'points' } };

describe('push pipeline', () => {
  it('delivers to every device of the member and records each as sent', async () => {
    const [m, other] = await ctx.createMembers(2);
    const phone = await register(m, 'android', 'ok-phone');
    const browser = await register(m, 'web', 'ok-browser');

    const { recordIds, duplicate } = await ctx.app.pushes.enqueue(m.id, push);
    expect(duplicate).toBe(false);
    expect(recordIds).toHaveLength(2);
    const rows = await settled(m.id);
    expect(rows.map((r) => [r.deviceId, r.status, r.attempts])).toEqual([
      [phone, 'sent', 1],
      [browser, 'sent', 1],
    ]);
    expect(rows.every((r) => r.sentAt instanceof Date)).toBe(true);
    const [send] = sendsTo('ok-phone');
    expect(send.headers.authorization).toBe('Bearer stub-access-token');
    expect(JSON.parse(send.body).message).toMatchObject({ notification: { title: 'Hello' }, data: { screen: 'points' } });

    // the member sees the push once, however many devices got it; admins see each delivery
    const list = await ctx.app.inject({ method: 'GET', url: '/v1/me/notifications', headers: auth(m.token) });
    expect(list.statusCode).toBe(200);
    expect(list.json().items).toHaveLength(1);
    expect(list.json().items[0]).toMatchObject({
      id: recordIds[0],
      type: 'test',
      title: 'Hello',
      status: 'sent',
      devices: 2,
      opened: false,
      openedAt: null,
      data: { screen: 'points' },
    });
    expect(list.json().items[0].error).toBeUndefined();
    expect(list.json().items[0].deviceId).toBeUndefined();
    const admin = await ctx.admin();
    const deliveries = await ctx.app.inject({ method: 'GET', url: '/v1/admin/pushes?limit=100', headers: auth(admin.token) });
    const mine = deliveries.json().items.filter((i: { userId: number }) => i.userId === m.id);
    expect(mine.map((i: { deviceId: number; pushId: number | null }) => [i.deviceId, i.pushId])).toEqual([
      [browser, recordIds[0]],
      [phone, null],
    ]);
    const theirs = await ctx.app.inject({ method: 'GET', url: '/v1/me/notifications', headers: auth(other.token) });
    expect(theirs.json().items).toEqual([]);
  });

  it('records a push opened once, by its member only, and lists it opened', async () => {
    const [m, other] = await ctx.createMembers(2);
    await register(m, 'android', 'ok-open-1');
    await register(m, 'ios', 'ok-open-2');
    const { recordIds } = await ctx.app.pushes.enqueue(m.id, push);
    const opened = (token: string, id: number) => ctx.app.inject({ method: 'POST', url: `/v1/me/notifications/${id}/opened`, headers: auth(token) });

    const first = await opened(m.token, recordIds[0]);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({ id: recordIds[0], opened: true });
    // again, or through the second device's record: the same push, the first open's time
    const again = await opened(m.token, recordIds[1]);
    expect(again.json()).toEqual(first.json());
    const theirs = await opened(other.token, recordIds[0]);
    expect(theirs.statusCode).toBe(404);
    expect(theirs.json().code).toBe('PUSH_NOT_FOUND');
    expect((await opened(m.token, 999_999_999)).statusCode).toBe(404);
    expect((await opened(m.token, 0)).statusCode).toBe(400);

    const list = await ctx.app.inject({ method: 'GET', url: '/v1/me/notifications', headers: auth(m.token) });
    expect(list.json().items).toMatchObject([{ id: recordIds[0], opened: true, openedAt: first.json().openedAt }]);
    const rows = await ctx.sql<Array<{ openedAt: Date | null }>>`SELECT opened_at AS "openedAt" FROM push_records WHERE user_id = ${m.id} ORDER BY id`;
    expect(rows.map((r) => r.openedAt !== null)).toEqual([true, false]);
  });

  it('pages the notifications newest first', async () => {
    const [m] = await ctx.createMembers(1);
    for (const title of ['one', 'two', 'three']) await ctx.app.pushes.enqueue(m.id, { ...push, title });
    const first = await ctx.app.inject({ method: 'GET', url: '/v1/me/notifications?limit=2', headers: auth(m.token) });
    expect(first.json().items.map((i: { title: string }) => i.title)).toEqual(['three', 'two']);
    const cursor = first.json().nextCursor as string;
    const second = await ctx.app.inject({
      method: 'GET',
      url: `/v1/me/notifications?limit=2&cursor=${cursor}`,
      headers: auth(m.token),
    });
    expect(second.json()).toMatchObject({ items: [{ title: 'one' }], nextCursor: null });
    const bad = await ctx.app.inject({ method: 'GET', url: '/v1/me/notifications?limit=0', headers: auth(m.token) });
    expect(bad.statusCode).toBe(400);
  });

  it('keeps a push for a member without devices in the inbox, with no send', async () => {
    const [m] = await ctx.createMembers(1);
    const before = stub.requests.length;
    const { recordIds } = await ctx.app.pushes.enqueue(m.id, push);
    const [rec] = await records(m.id);
    expect(rec).toMatchObject({ id: recordIds[0], deviceId: null, status: 'sent', attempts: 0 });
    expect(await queue.getJob(`push-${rec.id}`)).toBeUndefined();
    expect(stub.requests.length).toBe(before);
  });

  it('records a push with the same dedupe key once', async () => {
    const [m] = await ctx.createMembers(1);
    await register(m, 'android', 'ok-dedupe-1');
    await register(m, 'ios', 'ok-dedupe-2');
    const first = await ctx.app.pushes.enqueue(m.id, { ...push, dedupeKey: `expiry:${m.id}:2026-01-01` });
    await register(m, 'web', 'ok-dedupe-3');
    const again = await ctx.app.pushes.enqueue(m.id, { ...push, dedupeKey: `expiry:${m.id}:2026-01-01` });
    expect(first).toMatchObject({ duplicate: false });
    expect(first.recordIds).toHaveLength(2);
    expect(again).toEqual({ recordIds: [], duplicate: true });
    await settled(m.id);
    expect(await records(m.id)).toHaveLength(2);
    expect(sendsTo('ok-dedupe-1')).toHaveLength(1);
    expect(sendsTo('ok-dedupe-3')).toHaveLength(0);
  });

  it('retries a failing send with growing backoff, then dead-letters it for admins', async () => {
    const [m] = await ctx.createMembers(1);
    const admin = await ctx.admin();
    await register(m, 'android', 'flaky-1');
    const { recordIds } = await ctx.app.pushes.enqueue(m.id, push);
    const [rec] = await settled(m.id);
    expect(rec).toMatchObject({ status: 'dead', attempts: 3 });
    expect(rec.error).toMatch(/500/);

    const tries = sendsTo('flaky-1').map((r) => r.at);
    expect(tries).toHaveLength(3);
    // exponential from PUSH_BACKOFF_MS: the base, then twice the base; never early (10 ms of timer
    // granularity), and late by at most the slack
    const gaps = [tries[1] - tries[0], tries[2] - tries[1]];
    const within = (gap: number, backoff: number) => gap >= backoff - 10 && gap <= backoff + BACKOFF_SLACK_MS;
    expect({ gaps, first: within(gaps[0], BACKOFF_MS), second: within(gaps[1], 2 * BACKOFF_MS) }).toEqual({
      gaps,
      first: true,
      second: true,
    });

    const dead = await ctx.app.inject({ method: 'GET', url: '/v1/admin/pushes?status=dead', headers: auth(admin.token) });
    expect(dead.statusCode).toBe(200);
    const item = dead.json().items.find((i: { id: number }) => i.id === recordIds[0]);
    expect(item).toMatchObject({ userId: m.id, status: 'dead', attempts: 3 });
    expect(item.error).toMatch(/500/);
    expect(dead.json().items.every((i: { status: string }) => i.status === 'dead')).toBe(true);

    const forbidden = await ctx.app.inject({ method: 'GET', url: '/v1/admin/pushes?status=dead', headers: auth(m.token) });
    expect(forbidden.statusCode).toBe(403);
    const badStatus = await ctx.app.inject({ method: 'GET', url: '/v1/admin/pushes?status=lost', headers: auth(admin.token) });
    expect(badStatus.statusCode).toBe(400);
  });

  it('lets an admin retry a dead push with a fresh budget', async () => {
    const [m] = await ctx.createMembers(1);
    const admin = await ctx.admin();
    await register(m, 'android', 'flaky-2');
    const { recordIds } = await ctx.app.pushes.enqueue(m.id, push);
    await settled(m.id, ['dead']);

    healed.add('flaky-2');
    const retry = await retryPush(admin.token, recordIds[0], 'push-retry-1');
    expect(retry.statusCode).toBe(202);
    expect(retry.json()).toEqual({ id: recordIds[0], status: 'pending' });
    const [rec] = await settled(m.id, ['sent']);
    expect(rec).toMatchObject({ status: 'sent', attempts: 4, error: null });
    expect(sendsTo('flaky-2')).toHaveLength(4);

    // the same request again (a client retrying after a timeout) replays: no second budget, no second send
    const replay = await retryPush(admin.token, recordIds[0], 'push-retry-1');
    expect(replay.statusCode).toBe(202);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(sendsTo('flaky-2')).toHaveLength(4);

    const notDead = await retryPush(admin.token, recordIds[0], 'push-retry-again');
    expect(notDead.statusCode).toBe(409);
    expect(notDead.json().code).toBe('PUSH_NOT_DEAD');
    const missing = await retryPush(admin.token, 999999999, 'push-retry-missing');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('PUSH_NOT_FOUND');
  });

  it('requeues under a new job id when the dead push has no job left', async () => {
    const [m] = await ctx.createMembers(1);
    const admin = await ctx.admin();
    await register(m, 'android', 'flaky-3');
    const { recordIds } = await ctx.app.pushes.enqueue(m.id, push);
    await settled(m.id, ['dead']);
    await (await queue.getJob(`push-${recordIds[0]}`))?.remove();

    healed.add('flaky-3');
    const retry = await retryPush(admin.token, recordIds[0], 'push-retry-requeue');
    expect(retry.statusCode).toBe(202);
    await settled(m.id, ['sent']);
    expect(await queue.getJob(`push-${recordIds[0]}-r3`)).toBeDefined();
  });

  it('removes a device whose token the provider reports unregistered, without retrying', async () => {
    const [m] = await ctx.createMembers(1);
    await register(m, 'android', 'gone-1');
    const keep = await register(m, 'web', 'ok-keep');
    await ctx.app.pushes.enqueue(m.id, push);
    const rows = await settled(m.id);
    expect(rows.map((r) => [r.status, r.attempts])).toEqual([
      ['dead', 1],
      ['sent', 1],
    ]);
    expect(sendsTo('gone-1')).toHaveLength(1);
    const devices = await ctx.app.inject({ method: 'GET', url: '/v1/me/devices', headers: auth(m.token) });
    expect(devices.json().items.map((d: { id: number }) => d.id)).toEqual([keep]);
  });

  it('dead-letters an invalid payload at once and keeps the device', async () => {
    const [m] = await ctx.createMembers(1);
    const device = await register(m, 'android', 'bad-1');
    await ctx.app.pushes.enqueue(m.id, push);
    const [rec] = await settled(m.id);
    expect(rec).toMatchObject({ status: 'dead', attempts: 1 });
    expect(rec.error).toMatch(/INVALID_ARGUMENT/);
    expect(sendsTo('bad-1')).toHaveLength(1);
    const [row] = await ctx.sql`SELECT id FROM devices WHERE id = ${device}`;
    expect(row).toBeDefined();
  });

  it('does not deliver a pending push to a device another member has taken over', async () => {
    const [a, b] = await ctx.createMembers(2);
    await register(a, 'android', 'flaky-moved');
    const { recordIds } = await ctx.app.pushes.enqueue(a.id, push);
    await waitFor('a first failed try', async () => sendsTo('flaky-moved').length >= 1);
    await register(b, 'android', 'flaky-moved');
    healed.add('flaky-moved');
    const [rec] = await settled(a.id, ['dead']);
    expect(rec).toMatchObject({ id: recordIds[0], error: 'device no longer registered to this member' });
    expect(sendsTo('flaky-moved')).toHaveLength(1);
  });
});
