/**
 * Tasks: admin CRUD (idempotent, validated), progress counted from the ops the system recorded
 * (check-in ops, earns by rule, redemptions, points spent and earned), the reward credited once per
 * period through the spine (bizType task, the key as bizId, multiplied by the member's tier) with a
 * push, and a member's view of their tasks.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, redeemAs, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';
import type { EngagementFollower } from '../../src/rewards/follower.ts';
import { followerFor, ledgerOf, progressOf, settle } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let follower: EngagementFollower;
let admin: { id: number; token: string };

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
  follower = followerFor(ctx);
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

const key = () => randomBytes(6).toString('hex');
const adminReq = (method: 'POST' | 'PATCH' | 'DELETE' | 'GET', url: string, payload?: object, idem: string | null = key()) =>
  ctx.app.inject({ method, url, headers: { ...bearer(admin.token), ...(idem === null ? {} : { 'idempotency-key': idem }) }, payload });

async function createTask(body: Record<string, unknown>) {
  const res = await adminReq('POST', '/v1/admin/tasks', { title: 'A task', frequency: 'daily', target: 1, reward: 10, ...body });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

const checkin = (userId: number) =>
  ctx.app.points.creditRule(userId, { bizType: 'checkin', bizId: 'test', points: 10, key: `checkin:${key()}`, expiryDays: 365 });
const earn = (token: string, action: string) =>
  ctx.app.inject({ method: 'POST', url: '/v1/points/earn', headers: { ...bearer(token), 'idempotency-key': key() }, payload: { action } });

describe('task definitions', () => {
  it('seeds the five default tasks', async () => {
    const res = await adminReq('GET', '/v1/admin/tasks', undefined, null);
    expect(res.statusCode).toBe(200);
    const seeded = res.json().items.map((t: Record<string, unknown>) => [t.key, t.frequency, t.event, t.target, t.reward]);
    expect(seeded).toEqual([
      ['complete_profile', 'once', 'profile_complete', 1, 20],
      ['daily_checkin', 'daily', 'checkin', 1, 10],
      ['daily_review_3', 'daily', 'review', 3, 15],
      ['daily_spend_100', 'daily', 'spend_points', 100, 50],
      ['weekly_share_5', 'weekly', 'share', 5, 30],
    ]);
  });

  it('creates, reads, patches and deletes a task, each write once per Idempotency-Key', async () => {
    const body = { key: 'crud_task', title: 'Crud', frequency: 'weekly', event: 'redeem', target: 2, reward: 25 };
    const first = await adminReq('POST', '/v1/admin/tasks', body, 'create-crud');
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({ ...body, description: '', active: true, startsAt: null, endsAt: null });
    const replay = await adminReq('POST', '/v1/admin/tasks', body, 'create-crud');
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expectError(await adminReq('POST', '/v1/admin/tasks', body), 409, 'TASK_KEY_TAKEN');

    const patched = await adminReq('PATCH', '/v1/admin/tasks/crud_task', { target: 3, active: false });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({ target: 3, active: false, reward: 25, frequency: 'weekly' });
    expect((await adminReq('GET', '/v1/admin/tasks/crud_task', undefined, null)).json().target).toBe(3);

    const deleted = await adminReq('DELETE', '/v1/admin/tasks/crud_task');
    expect(deleted.statusCode, deleted.body).toBe(200);
    expectError(await adminReq('GET', '/v1/admin/tasks/crud_task', undefined, null), 404, 'TASK_NOT_FOUND');
    expectError(await adminReq('PATCH', '/v1/admin/tasks/crud_task', { target: 1 }), 404, 'TASK_NOT_FOUND');
    expectError(await adminReq('DELETE', '/v1/admin/tasks/crud_task'), 404, 'TASK_NOT_FOUND');
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM audit_log WHERE target_type = 'task' AND target_id = 'crud_task'`;
    expect(n).toBe(3);
  });

  it('refuses bad definitions and writes without a key, members and strangers, writing nothing', async () => {
    const good = { key: 'refused', title: 'R', frequency: 'daily', event: 'share', target: 1, reward: 1 };
    expectError(await adminReq('POST', '/v1/admin/tasks', good, null), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    for (const bad of [
      { ...good, event: 'login' },
      { ...good, frequency: 'monthly' },
      { ...good, target: 0 },
      { ...good, reward: -5 },
      { ...good, key: 'Has Spaces' },
      { ...good, extra: true },
      { ...good, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' },
    ]) {
      expectError(await adminReq('POST', '/v1/admin/tasks', bad), 400, 'VALIDATION_FAILED');
    }
    await createTask({ key: 'fixed_shape', event: 'share' });
    // the event and frequency name the progress rows: fixed once created
    expectError(await adminReq('PATCH', '/v1/admin/tasks/fixed_shape', { event: 'review' }), 400, 'VALIDATION_FAILED');
    expectError(await adminReq('PATCH', '/v1/admin/tasks/fixed_shape', {}), 400, 'VALIDATION_FAILED');
    const [member] = await ctx.createMembers(1);
    const asMember = await ctx.app.inject({ method: 'POST', url: '/v1/admin/tasks', headers: { ...bearer(member.token), 'idempotency-key': key() }, payload: good });
    expectError(asMember, 403, 'FORBIDDEN');
    expectError(await ctx.app.inject({ method: 'GET', url: '/v1/me/tasks' }), 401, 'UNAUTHORIZED');
    expect(await ctx.sql`SELECT 1 FROM tasks WHERE key = 'refused'`).toHaveLength(0);
    await adminReq('DELETE', '/v1/admin/tasks/fixed_shape');
  });
});

describe('progress from recorded ops', () => {
  it('counts check-ins, reviews, shares, redemptions and points spent, and pays each completed task once with a push', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const goods = await ctx.createGoods({ pointsPrice: 60, stock: 100 });
    await createTask({ key: 'redeem_twice', event: 'redeem', target: 2, reward: 40 });

    await checkin(m.id);
    for (let i = 0; i < 3; i++) expect((await earn(m.token, 'review')).statusCode).toBe(200);
    for (let i = 0; i < 4; i++) expect((await earn(m.token, 'share')).statusCode).toBe(200);
    expect((await redeemAs(ctx, m.token, goods.id, key())).statusCode).toBe(201);
    await settle(pipeline, follower);
    const rewarded = async () => (await ledgerOf(ctx.sql, m.id, 'task')).map((r) => [r.bizId, r.delta]).sort();
    expect(await rewarded()).toEqual([
      ['daily_checkin', 10],
      ['daily_review_3', 15],
    ]);

    expect((await redeemAs(ctx, m.token, goods.id, key())).statusCode).toBe(201); // 120 spent: both tasks complete
    await settle(pipeline, follower);
    expect(await rewarded()).toEqual([
      ['daily_checkin', 10],
      ['daily_review_3', 15],
      ['daily_spend_100', 50],
      ['redeem_twice', 40],
    ]);

    const mine = await ctx.app.inject({ url: '/v1/me/tasks', headers: bearer(m.token) });
    expect(mine.statusCode).toBe(200);
    const view = Object.fromEntries(mine.json().items.map((t: Record<string, unknown>) => [t.key, [t.progress, t.target, t.status]]));
    expect(view).toMatchObject({
      daily_checkin: [1, 1, 'completed'],
      daily_review_3: [3, 3, 'completed'],
      daily_spend_100: [100, 100, 'completed'],
      weekly_share_5: [4, 5, 'in_progress'],
      redeem_twice: [2, 2, 'completed'],
      complete_profile: [0, 1, 'in_progress'],
    });
    const pushes = await ctx.sql<Array<{ dedupeKey: string }>>`
      SELECT dedupe_key AS "dedupeKey" FROM push_records WHERE user_id = ${m.id} AND type = 'task' ORDER BY dedupe_key`;
    expect(pushes.map((p) => p.dedupeKey.replace(/:\d{4}-\d{2}-\d{2}$/, ''))).toEqual([
      `payout:task:daily_checkin:${m.id}`,
      `payout:task:daily_review_3:${m.id}`,
      `payout:task:daily_spend_100:${m.id}`,
      `payout:task:redeem_twice:${m.id}`,
    ]);

    // more of the same in the period: counted, never paid again
    await checkin(m.id);
    await settle(pipeline, follower);
    await follower.pass();
    expect(Object.values(await progressOf(ctx.sql, m.id, 'daily_checkin'))).toEqual([{ progress: 2, completed: true }]);
    expect((await ledgerOf(ctx.sql, m.id, 'task')).length).toBe(4);
    await adminReq('DELETE', '/v1/admin/tasks/redeem_twice');
  });

  it('shows the current period with its bounds for daily, weekly and once tasks', async () => {
    const [m] = await ctx.createMembers(1);
    const items = (await ctx.app.inject({ url: '/v1/me/tasks', headers: bearer(m.token) })).json().items as Array<Record<string, string | null>>;
    const byKey = Object.fromEntries(items.map((t) => [t.key, t]));
    const today = new Date().toISOString().slice(0, 10);
    expect(byKey.daily_checkin.periodStart).toBe(`${today}T00:00:00.000Z`);
    expect(Date.parse(byKey.daily_checkin.periodEnd!) - Date.parse(byKey.daily_checkin.periodStart!)).toBe(86_400_000);
    expect(new Date(byKey.weekly_share_5.periodStart!).getUTCDay()).toBe(1);
    expect(Date.parse(byKey.weekly_share_5.periodEnd!) - Date.parse(byKey.weekly_share_5.periodStart!)).toBe(7 * 86_400_000);
    expect(byKey.complete_profile).toMatchObject({ periodStart: null, periodEnd: null, status: 'in_progress' });
  });

  it('sums points earned without counting task rewards or refunds, so tasks never feed each other', async () => {
    const [m] = await ctx.createMembers(1);
    await createTask({ key: 'earn_50', event: 'earn_points', target: 50, reward: 5 });
    await checkin(m.id); // 10 earned, and completes daily_checkin (+10 reward, not counted)
    await earn(m.token, 'review'); // 20
    await ctx.app.points.creditPlain(m.id, { bizType: 'refund', bizId: 'x', points: 500, key: `refund:${key()}`, expiryDays: 365, lifetime: false });
    await settle(pipeline, follower);
    expect(Object.values(await progressOf(ctx.sql, m.id, 'earn_50'))).toEqual([{ progress: 30, completed: false }]);
    await earn(m.token, 'review'); // 50
    await settle(pipeline, follower);
    expect(Object.values(await progressOf(ctx.sql, m.id, 'earn_50'))).toEqual([{ progress: 50, completed: true }]);
    expect((await ledgerOf(ctx.sql, m.id, 'task')).map((r) => r.bizId).sort()).toEqual(['daily_checkin', 'earn_50']);
    await adminReq('DELETE', '/v1/admin/tasks/earn_50');
  });

  it('ignores ops outside a task window and tasks switched off, and lists neither', async () => {
    const [m] = await ctx.createMembers(1);
    await createTask({ key: 'ended', event: 'share', startsAt: '2020-01-01T00:00:00Z', endsAt: '2020-02-01T00:00:00Z' });
    await createTask({ key: 'switched_off', event: 'share', active: false });
    await earn(m.token, 'share');
    await settle(pipeline, follower);
    expect(await progressOf(ctx.sql, m.id, 'ended')).toEqual({});
    expect(await progressOf(ctx.sql, m.id, 'switched_off')).toEqual({});
    const listed = (await ctx.app.inject({ url: '/v1/me/tasks', headers: bearer(m.token) })).json().items.map((t: { key: string }) => t.key);
    expect(listed).not.toContain('ended');
    expect(listed).not.toContain('switched_off');
    await adminReq('DELETE', '/v1/admin/tasks/ended');
    await adminReq('DELETE', '/v1/admin/tasks/switched_off');
  });

  it("multiplies a task reward by the member's tier (a rule credit), floored", async () => {
    const [m] = await ctx.createMembers(1);
    // lifetime 1000 of rule earns (admin grants do not count toward the tier): Silver, ×1.05
    await ctx.app.points.creditRule(m.id, { bizType: 'review', bizId: '1', points: 1000, key: `to-silver-${m.id}`, expiryDays: 30 });
    await checkin(m.id); // check-in itself ×1.05 → 10; the task reward 10 → 10 (floor 10.5)
    await createTask({ key: 'silver_share', event: 'share', reward: 40 });
    await earn(m.token, 'share');
    await settle(pipeline, follower);
    const rewards = Object.fromEntries((await ledgerOf(ctx.sql, m.id, 'task')).map((r) => [r.bizId, r.delta]));
    expect(rewards).toEqual({ daily_checkin: 10, silver_share: 42 });
    await adminReq('DELETE', '/v1/admin/tasks/silver_share');
  });
});
