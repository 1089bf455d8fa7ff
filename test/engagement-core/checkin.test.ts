/**
 * Check-in with streaks, run in Asia/Shanghai (UTC+8): a business day there starts at 16:00 UTC
 * the day before, so day boundaries and a month end are crossed by an injected clock (the script's
 * `now` override), and the daily login bonus once per business day.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayNumber, dayStartMs, dayString } from '../../src/engagement/business-day.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';

const TZ = 'Asia/Shanghai';
const HOUR = 3_600_000;

let ctx: TestContext;
let pipeline: Pipeline;
beforeAll(async () => {
  ctx = await createTestContext({ BUSINESS_TIMEZONE: TZ });
  pipeline = await ctx.startPipeline();
});
afterAll(async () => ctx?.close());

/** 10:00 local on the business day `day` (days since 1970-01-01 in Shanghai). */
const at = (day: number, hourLocal = 10) => dayStartMs(TZ, day) + hourLocal * HOUR;

describe('POST /v1/me/checkins', () => {
  it('credits once per business day: 50 concurrent check-ins → one 201, the rest 409 with today', async () => {
    const [m] = await ctx.createMembers(1);
    const all = await Promise.all(
      Array.from({ length: 50 }, () => ctx.app.inject({ method: 'POST', url: '/v1/me/checkins', headers: bearer(m.token) })),
    );
    const ok = all.filter((r) => r.statusCode === 201);
    expect(ok).toHaveLength(1);
    const today = dayString(dayNumber(TZ, Date.now()));
    expect(ok[0].json()).toEqual({ day: today, streak: 1, points: 10, available: 10 });
    for (const r of all.filter((x) => x.statusCode !== 201)) {
      const body = expectError(r, 409, 'ALREADY_CHECKED_IN');
      expect((body as unknown as { today: unknown }).today).toEqual({ day: today, streak: 1, points: 10, available: 10 });
    }
    await pipeline.drain();
    const rows = await ctx.sql`SELECT delta, biz_type, biz_id FROM ledger_entries WHERE user_id = ${m.id}`;
    expect(rows).toEqual([{ delta: 10, biz_type: 'checkin', biz_id: String(dayNumber(TZ, Date.now())) }]);
  });

  it('builds streaks across business days and a month end: base 10, 7 days → 50, 30 days → 200, a missed day resets', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.app.points.hydrate(m.id);
    // 40 consecutive Shanghai days ending on 2026-02-05, so the run crosses January 31 → February 1
    const last = dayNumber(TZ, Date.UTC(2026, 1, 5, 4));
    const first = last - 39;
    const paid: number[] = [];
    for (let d = first; d <= last; d++) {
      // alternate late evening and just after midnight local time: the day, not the UTC date, counts
      const hour = d % 2 === 0 ? 23.9 : 0.1;
      const r = await ctx.app.checkins.checkIn(m.id, at(d, hour));
      expect(r.day).toBe(dayString(d));
      paid.push(r.points);
    }
    // streak points (10, then 50 from day 7, 200 from day 30) × the tier the check-ins themselves
    // earn (rule earns count toward it: Silver ×1.05 from 1,000), floored
    const tiers = [[0, 1000], [1000, 1050], [5000, 1100], [20000, 1200]];
    let lifetime = 0;
    const expected = paid.map((_, i) => {
      const base = i + 1 >= 30 ? 200 : i + 1 >= 7 ? 50 : 10;
      const perMille = tiers.filter(([min]) => lifetime >= min).at(-1)![1];
      const points = Math.floor((base * perMille) / 1000);
      lifetime += points;
      return points;
    });
    expect(paid).toEqual(expected);
    expect(paid.slice(0, 6)).toEqual([10, 10, 10, 10, 10, 10]);
    expect(paid[6]).toBe(50);
    expect(paid[29]).toBe(210);
    expect(dayString(first + 30)).toBe('2026-01-27');
    // the same day again: refused, with the day's result
    await expect(ctx.app.checkins.checkIn(m.id, at(last, 20))).rejects.toMatchObject({
      code: 'ALREADY_CHECKED_IN',
      details: { today: { day: '2026-02-05', streak: 40, points: 210 } },
    });
    // a day missed: the streak starts over
    const again = await ctx.app.checkins.checkIn(m.id, at(last + 2));
    expect(again).toMatchObject({ day: dayString(last + 2), streak: 1, points: 10 });
    const [, , longest] = await ctx.redis.hmget(ctx.keys.streak(m.id), 'last', 'streak', 'longest');
    expect(Number(longest)).toBe(40);
  });

  it('is multiplied by the tier (floored): a Gold member gets 11 for 10', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.app.points.creditRule(m.id, { bizType: 'share', bizId: '1', points: 5000, key: 'lifetime', expiryDays: 30 });
    const r = await ctx.app.inject({ method: 'POST', url: '/v1/me/checkins', headers: bearer(m.token) });
    expect(r.statusCode).toBe(201);
    expect(r.json().points).toBe(11);
  });

  it('follows the admin settings', async () => {
    const admin = await ctx.admin();
    const put = await ctx.app.inject({
      method: 'PUT',
      url: '/v1/admin/engagement/checkin',
      headers: { ...bearer(admin.token), 'idempotency-key': 'checkin-rules-1' },
      payload: { base: 15, streakBonuses: [{ days: 2, points: 40 }] },
    });
    expect(put.statusCode).toBe(200);
    expect((await ctx.app.inject({ url: '/v1/admin/engagement/checkin', headers: bearer(admin.token) })).json()).toMatchObject({
      base: 15,
      streakBonuses: [{ days: 2, points: 40 }],
    });
    const [m] = await ctx.createMembers(1);
    await ctx.app.points.hydrate(m.id);
    const d = dayNumber(TZ, Date.now()) - 10;
    expect((await ctx.app.checkins.checkIn(m.id, at(d))).points).toBe(15);
    expect((await ctx.app.checkins.checkIn(m.id, at(d + 1))).points).toBe(40);
    expectError(
      await ctx.app.inject({
        method: 'PUT',
        url: '/v1/admin/engagement/checkin',
        headers: { ...bearer(admin.token), 'idempotency-key': 'checkin-rules-bad' },
        payload: { base: 0, streakBonuses: [] },
      }),
      400,
      'VALIDATION_FAILED',
    );
    await ctx.app.inject({
      method: 'PUT',
      url: '/v1/admin/engagement/checkin',
      headers: { ...bearer(admin.token), 'idempotency-key': 'checkin-rules-2' },
      payload: { base: 10, streakBonuses: [{ days: 7, points: 50 }, { days: 30, points: 200 }] },
    });
  });
});

describe('GET /v1/me/checkins', () => {
  it("lists the month's days, the current and longest streak, and today's check-in before it is persisted", async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.app.points.hydrate(m.id);
    const today = dayNumber(TZ, Date.now());
    for (let d = today - 4; d < today; d++) await ctx.app.checkins.checkIn(m.id, at(d));
    await pipeline.drain();
    await pipeline.relay.stop();
    try {
      expect((await ctx.app.inject({ method: 'POST', url: '/v1/me/checkins', headers: bearer(m.token) })).json().streak).toBe(5);
      const res = await ctx.app.inject({ url: `/v1/me/checkins?month=${dayString(today).slice(0, 7)}`, headers: bearer(m.token) });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      const expected = [today - 4, today - 3, today - 2, today - 1, today].map(dayString).filter((d) => d.startsWith(dayString(today).slice(0, 7)));
      expect(body).toEqual({ month: dayString(today).slice(0, 7), days: expected, streak: 5, longestStreak: 5, checkedInToday: true });
      expect((await ctx.app.inject({ url: '/v1/me/checkins', headers: bearer(m.token) })).json().days).toEqual(expected);
      expectError(await ctx.app.inject({ url: '/v1/me/checkins?month=2026-13', headers: bearer(m.token) }), 400, 'VALIDATION_FAILED');
    } finally {
      await pipeline.relay.start();
    }
  });

  it('survives a rebuild: streaks come back from the ledger', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.app.points.hydrate(m.id);
    const today = dayNumber(TZ, Date.now());
    for (let d = today - 9; d <= today - 7; d++) await ctx.app.checkins.checkIn(m.id, at(d));
    for (let d = today - 2; d <= today; d++) await ctx.app.checkins.checkIn(m.id, at(d));
    await pipeline.drain();
    const before = await ctx.redis.hmget(ctx.keys.streak(m.id), 'last', 'streak', 'longest');
    await ctx.redis.del(ctx.keys.streak(m.id));
    const { rebuildFromPostgres } = await import('../../src/recovery/rebuild.ts');
    await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600, timeZone: TZ });
    expect(await ctx.redis.hmget(ctx.keys.streak(m.id), 'last', 'streak', 'longest')).toEqual(before);
    expect(before).toEqual([String(today), '3', '3']);
  });
});

describe('daily login bonus', () => {
  it('credits the first login of the business day once, however many logins race', async () => {
    const email = `login${Date.now()}@example.com`;
    const reg = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username: `login${Date.now() % 1e6}`, email, password: 'correct-horse-1' },
    });
    expect(reg.statusCode).toBe(201);
    const id = reg.json().user.id as number;
    const logins = await Promise.all(
      Array.from({ length: 50 }, () =>
        ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: 'correct-horse-1' } }),
      ),
    );
    // the account's login limit turns part of a burst away (429); what gets in credits once
    expect(logins.every((r) => r.statusCode === 200 || r.statusCode === 429)).toBe(true);
    const bonuses = logins.filter((r) => r.statusCode === 200).map((r) => r.json().dailyBonus as number);
    expect(bonuses.length).toBeGreaterThanOrEqual(10);
    expect(bonuses.filter((b) => b > 0)).toEqual([10]);
    await pipeline.drain();
    const rows = await ctx.sql`SELECT delta, biz_id FROM ledger_entries WHERE user_id = ${id} AND biz_type = 'daily_login'`;
    expect(rows).toEqual([{ delta: 10, biz_id: dayString(dayNumber(TZ, Date.now())) }]);
  });

  it('can be switched off', async () => {
    const admin = await ctx.admin();
    const off = await ctx.app.inject({
      method: 'PUT',
      url: '/v1/admin/engagement/daily-login',
      headers: { ...bearer(admin.token), 'idempotency-key': 'login-off' },
      payload: { enabled: false, points: 10 },
    });
    expect(off.statusCode).toBe(200);
    try {
      const email = `off${Date.now()}@example.com`;
      await ctx.app.inject({ method: 'POST', url: '/v1/auth/register', payload: { username: `off${Date.now() % 1e6}`, email, password: 'correct-horse-1' } });
      const login = await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: 'correct-horse-1' } });
      expect(login.json().dailyBonus).toBe(0);
    } finally {
      await ctx.app.inject({
        method: 'PUT',
        url: '/v1/admin/engagement/daily-login',
        headers: { ...bearer(admin.token), 'idempotency-key': 'login-on' },
        payload: { enabled: true, points: 10 },
      });
    }
  });
});

describe('the earn action', () => {
  it('no longer takes checkin (it has its own endpoint)', async () => {
    const [m] = await ctx.createMembers(1);
    const r = await ctx.app.inject({
      method: 'POST',
      url: '/v1/points/earn',
      headers: { ...bearer(m.token), 'idempotency-key': 'old-checkin' },
      payload: { action: 'checkin' },
    });
    expectError(r, 404, 'RULE_NOT_FOUND');
  });
});

