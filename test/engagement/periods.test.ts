/**
 * Task periods in BUSINESS_TIMEZONE=Asia/Shanghai (UTC+8), from ops with a fixed created_at: a day
 * ends at local midnight (16:00 UTC), including the last day of a month, and a week starts on
 * Monday at local midnight. Each period completes and pays on its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer } from '../api/helpers.ts';
import type { EngagementFollower } from '../../src/rewards/follower.ts';
import { businessDate } from '../../src/engagement/business-day.ts';
import { followerFor, ledgerOf, persistAt, progressOf, settle } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let follower: EngagementFollower;

beforeAll(async () => {
  ctx = await createTestContext({ BUSINESS_TIMEZONE: 'Asia/Shanghai' });
  pipeline = await ctx.startPipeline();
  follower = followerFor(ctx);
});
afterAll(async () => ctx?.close());

const at = (iso: string) => Date.parse(iso);
const op = (userId: number, bizType: string, when: string) => persistAt(ctx.sql, { userId, kind: 'earn', delta: 10, bizType, at: at(when) });

describe('periods in Asia/Shanghai', () => {
  it('splits a day at local midnight across a month end: one completion and one reward per day', async () => {
    const [m] = await ctx.createMembers(1);
    // 2024-01-31 23:59:59.999 and 2024-02-01 00:00:00.000 in Shanghai: the same UTC day
    await op(m.id, 'checkin', '2024-01-31T15:59:59.999Z');
    await op(m.id, 'review', '2024-01-31T15:00:00.000Z');
    await op(m.id, 'review', '2024-01-31T15:59:59.999Z');
    await op(m.id, 'checkin', '2024-01-31T16:00:00.000Z');
    await op(m.id, 'review', '2024-01-31T16:00:00.000Z');
    await settle(pipeline, follower);
    expect(await progressOf(ctx.sql, m.id, 'daily_checkin')).toEqual({
      '2024-01-31': { progress: 1, completed: true },
      '2024-02-01': { progress: 1, completed: true },
    });
    expect(await progressOf(ctx.sql, m.id, 'daily_review_3')).toEqual({
      '2024-01-31': { progress: 2, completed: false },
      '2024-02-01': { progress: 1, completed: false },
    });
    const slots = await ctx.sql<Array<{ slot: string }>>`
      SELECT slot FROM engagement_payouts WHERE user_id = ${m.id} ORDER BY slot`;
    expect(slots.map((s) => s.slot)).toEqual([`task:daily_checkin:${m.id}:2024-01-31`, `task:daily_checkin:${m.id}:2024-02-01`]);
    expect((await ledgerOf(ctx.sql, m.id, 'task')).map((r) => r.delta)).toEqual([10, 10]);
  });

  it('starts a week on Monday at local midnight', async () => {
    const [m] = await ctx.createMembers(1);
    // Sunday 2024-03-03 23:59:59 in Shanghai (15:59:59 UTC) is in the week of Monday 2024-02-26
    for (let i = 0; i < 4; i++) await op(m.id, 'share', '2024-03-03T15:59:59.000Z');
    await op(m.id, 'share', '2024-03-03T16:00:00.000Z');
    await settle(pipeline, follower);
    expect(await progressOf(ctx.sql, m.id, 'weekly_share_5')).toEqual({
      '2024-02-26': { progress: 4, completed: false },
      '2024-03-04': { progress: 1, completed: false },
    });
    // the rest of the new week: Sunday 2024-03-10 23:59 local is still in it
    for (let i = 0; i < 3; i++) await op(m.id, 'share', '2024-03-06T04:00:00.000Z');
    await op(m.id, 'share', '2024-03-10T15:59:00.000Z');
    await settle(pipeline, follower);
    expect(await progressOf(ctx.sql, m.id, 'weekly_share_5')).toEqual({
      '2024-02-26': { progress: 4, completed: false },
      '2024-03-04': { progress: 5, completed: true },
    });
    expect(await ledgerOf(ctx.sql, m.id, 'task')).toEqual([expect.objectContaining({ bizId: 'weekly_share_5', delta: 30 })]);
  });

  it("shows a member today's period from local midnight to local midnight", async () => {
    const [m] = await ctx.createMembers(1);
    const items = (await ctx.app.inject({ url: '/v1/me/tasks', headers: bearer(m.token) })).json().items as Array<Record<string, string>>;
    const daily = items.find((t) => t.key === 'daily_checkin')!;
    const today = businessDate('Asia/Shanghai', Date.now());
    const previous = new Date(Date.parse(`${today}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
    expect(daily.periodStart).toBe(`${previous}T16:00:00.000Z`);
    expect(daily.periodEnd).toBe(`${today}T16:00:00.000Z`);
  });
});
