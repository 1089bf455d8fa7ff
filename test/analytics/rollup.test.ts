/**
 * The analytics definitions (docs/analytics.md) against a hand-computed fixture: ledger,
 * redemption, login, push and task rows inserted with known business days (Asia/Shanghai, so a
 * row at 23:30 and one at 00:30 local fall on either side of midnight while UTC puts both on the
 * same date), the rollup run, and every figure compared with the number worked out by hand in
 * the comments. Also: the rollup is idempotent, picks up late rows in its recompute window, and
 * the endpoints are admin only and refuse bad windows.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { runRollup } from '../../src/analytics/rollup.ts';

const TZ = 'Asia/Shanghai';
/** The rollup's "now": 2026-06-10 in Shanghai, so every cohort's day 90 is rolled up. */
const NOW = Date.parse('2026-06-10T12:00:00+08:00');

let ctx: TestContext;
let admin: { id: number; token: string };
let member: { id: number; token: string };
let A: number, B: number, C: number, D: number, E: number;
let G1: number, G2: number, G3: number;

const at = (local: string) => new Date(`${local}+08:00`);

async function ledger(userId: number, kind: string, delta: number, local: string) {
  await ctx.sql`
    INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, created_at)
    VALUES (${randomUUID()}, ${userId}, ${delta}, 0, ${kind}, 'fixture', ${at(local)})`;
}

async function redeem(userId: number, goodsId: number, quantity: number, points: number, local: string) {
  const id = randomUUID();
  await ledger(userId, 'spend', -points, local);
  await ctx.sql`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, created_at)
    VALUES (${id}, ${id}, ${`EX${id.slice(0, 8)}`}, ${userId}, ${goodsId}, ${quantity}, ${points}, ${at(local)})`;
}

const get = (url: string, token = admin.token) => ctx.app.inject({ url, headers: { authorization: `Bearer ${token}` } });
const rollup = (now = NOW) => runRollup(ctx.sql, { timeZone: TZ, recomputeDays: 2, now });

beforeAll(async () => {
  ctx = await createTestContext({ BUSINESS_TIMEZONE: TZ });
  admin = await ctx.admin();
  const ms = await ctx.createMembers(6);
  [A, B, C, D, E] = ms.map((m) => m.id);
  member = ms[5];
  // sign-ups: A and B on 03-01, C on 03-02, D on 03-05, E on 03-08; the sixth member long after
  const signups: Array<[number, string]> = [
    [A, '2026-03-01 09:00'],
    [B, '2026-03-01 23:59'],
    [C, '2026-03-02 00:01'],
    [D, '2026-03-05 12:00'],
    [E, '2026-03-08 12:00'],
    [member.id, '2026-05-20 12:00'],
  ];
  for (const [id, local] of signups) await ctx.sql`UPDATE users SET created_at = ${at(local)} WHERE id = ${id}`;
  G1 = (await ctx.createGoods({ name: 'Mug' })).id;
  G2 = (await ctx.createGoods({ name: 'Cap' })).id;
  G3 = (await ctx.createGoods({ name: 'Pen' })).id;

  await ledger(A, 'earn', 100, '2026-03-01 10:00');
  await ledger(B, 'earn', 50, '2026-03-01 23:30'); // 15:30 UTC on 03-01
  await ledger(C, 'earn', 200, '2026-03-02 00:30'); // 16:30 UTC on 03-01, business day 03-02
  await redeem(A, G1, 1, 30, '2026-03-02 09:00');
  await redeem(A, G2, 2, 20, '2026-03-02 10:00'); // A: two redemptions on one day
  await redeem(B, G1, 1, 40, '2026-03-03 09:00');
  await ledger(A, 'refund', 20, '2026-03-04 09:00');
  await ledger(D, 'earn', 30, '2026-03-05 09:00');
  await redeem(C, G3, 1, 60, '2026-03-05 11:00');
  await ledger(C, 'expire', -50, '2026-03-08 00:10'); // expiry is not member activity
  await ledger(A, 'earn', 10, '2026-03-08 09:00');
  await redeem(B, G1, 1, 10, '2026-03-09 09:00'); // B: a second redemption on a later day
  await ctx.sql`INSERT INTO member_logins (day, user_id) VALUES ('2026-03-09', ${C})`;
  await ledger(D, 'earn', 5, '2026-04-04 09:00'); // D's day 30

  // pushes made in the window: three (one went to two devices), two of them opened
  const [p1] = await ctx.sql<Array<{ id: number }>>`
    INSERT INTO push_records (user_id, device_id, type, title, body, status, created_at, opened_at)
    VALUES (${A}, 1, 't', 'one', 'b', 'sent', ${at('2026-03-02 12:00')}, ${at('2026-03-20 12:00')}) RETURNING id`;
  await ctx.sql`
    INSERT INTO push_records (user_id, device_id, type, title, body, status, created_at, push_id) VALUES
      (${A}, 2, 't', 'one', 'b', 'sent', ${at('2026-03-02 12:00')}, ${p1.id}),
      (${B}, NULL, 't', 'two', 'b', 'sent', ${at('2026-03-03 12:00')}, NULL)`;
  await ctx.sql`
    INSERT INTO push_records (user_id, device_id, type, title, body, status, created_at, opened_at)
    VALUES (${C}, NULL, 't', 'three', 'b', 'sent', ${at('2026-03-09 12:00')}, ${at('2026-03-09 13:00')})`;
  // task periods started in the window: four dated ones, three completed; 'once' has no day
  await ctx.sql`
    INSERT INTO task_progress (task_key, user_id, period_start, progress, completed_at) VALUES
      ('t1', ${A}, '2026-03-02', 1, ${at('2026-03-02 10:00')}),
      ('t1', ${B}, '2026-03-02', 0, NULL),
      ('t1', ${C}, '2026-03-03', 1, ${at('2026-03-03 10:00')}),
      ('t2', ${A}, '2026-03-09', 3, ${at('2026-03-12 10:00')}),
      ('t3', ${C}, 'once', 1, ${at('2026-03-05 10:00')})`;
  await rollup();
});
afterAll(async () => ctx?.close());

const OVERVIEW = '/v1/admin/analytics/overview?from=2026-03-01&to=2026-03-10';

describe('analytics overview against the hand-computed fixture', () => {
  it('counts members: average and peak DAU, MAU, active in the window, sign-ups', async () => {
    const res = await get(OVERVIEW);
    expect(res.statusCode, res.body).toBe(200);
    const o = res.json();
    expect(o).toMatchObject({ from: '2026-03-01', to: '2026-03-10', daysRolledUp: 10, lastDay: '2026-03-10' });
    // DAU 03-01..03-10: 2,2,1,1,2,0,0,1,2,0 → 11 / 10 days; MAU on 03-10: A, B, C, D
    expect(o.members).toEqual({ dauAverage: 1.1, dauPeak: 2, mau: 4, activeInWindow: 4, newMembers: 5 });
  });

  it('sums points issued, spent, expired and refunded, and the outstanding balance at the end', async () => {
    const o = (await get(OVERVIEW)).json();
    // issued 100+50+200+30+10; spent 30+20+40+60+10; outstanding 390 − 160 − 50 + 20
    expect(o.points).toEqual({ issued: 390, spent: 160, expired: 50, refunded: 20, outstanding: 200 });
    expect(o.redemptions).toBe(5);
  });

  it('computes the redemption, expiry and repurchase rates', async () => {
    const o = (await get(OVERVIEW)).json();
    // redeemed: A, B, C; earned: A, B, C, D
    expect(o.redemptionRate).toEqual({ redeemers: 3, earners: 4, rate: 0.75 });
    // the 30 days ending 03-10: 50 expired of 390 issued
    expect(o.expiryRate).toEqual({ days: 30, expired: 50, issued: 390, rate: 50 / 390 });
    // A twice on 03-02, B on 03-03 and 03-09; C once
    expect(o.repurchaseRate).toEqual({ repeatRedeemers: 2, redeemers: 3, rate: 2 / 3 });
  });

  it('computes day 7, 30 and 90 retention of the sign-up cohorts', async () => {
    const o = (await get(OVERVIEW)).json();
    // cohorts A,B (03-01), C (03-02), D (03-05), E (03-08): day 7 A (03-08 earn) and C (03-09
    // login); day 30 D (04-04 earn); day 90 nobody
    expect(o.retention).toEqual([
      { days: 7, cohort: 5, retained: 2, rate: 0.4 },
      { days: 30, cohort: 5, retained: 1, rate: 0.2 },
      { days: 90, cohort: 5, retained: 0, rate: 0 },
    ]);
  });

  it('averages the days from first earn to first redemption', async () => {
    const o = (await get(OVERVIEW)).json();
    // A 03-01 → 03-02 (1), B 03-01 → 03-03 (2), C 03-02 → 03-05 (3)
    expect(o.firstRedemption).toEqual({ members: 3, averageDaysFromFirstEarn: 2 });
  });

  it('computes the task completion and push open rates', async () => {
    const o = (await get(OVERVIEW)).json();
    expect(o.taskCompletionRate).toEqual({ started: 4, completed: 3, rate: 0.75 });
    expect(o.pushOpenRate).toEqual({ pushes: 3, opened: 2, rate: 2 / 3 });
  });

  it('ranks the top goods by quantity', async () => {
    const o = (await get(OVERVIEW)).json();
    expect(o.topGoods).toEqual([
      { goodsId: G1, name: 'Mug', redemptions: 3, quantity: 3, points: 80 },
      { goodsId: G2, name: 'Cap', redemptions: 1, quantity: 2, points: 20 },
      { goodsId: G3, name: 'Pen', redemptions: 1, quantity: 1, points: 60 },
    ]);
  });
});

describe('analytics daily series', () => {
  const series = async (metric: string, from = '2026-03-01', to = '2026-03-10') => {
    const res = await get(`/v1/admin/analytics/daily?metric=${metric}&from=${from}&to=${to}`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json().points as Array<{ day: string; value: number | null }>).map((p) => p.value);
  };

  it('gives one value per business day', async () => {
    expect(await series('dau')).toEqual([2, 2, 1, 1, 2, 0, 0, 1, 2, 0]);
    expect(await series('points_outstanding')).toEqual([150, 300, 260, 280, 250, 250, 250, 210, 200, 200]);
    expect(await series('points_issued', '2026-03-01', '2026-03-02')).toEqual([150, 200]);
    expect(await series('mau', '2026-03-08', '2026-03-09')).toEqual([4, 4]);
    expect(await series('redemption_rate', '2026-03-01', '2026-03-03')).toEqual([0, 1, null]);
    expect(await series('new_members', '2026-03-01', '2026-03-02')).toEqual([2, 1]);
    const res = await get('/v1/admin/analytics/daily?metric=dau&from=2026-03-01&to=2026-03-02');
    expect(res.json()).toEqual({
      metric: 'dau',
      from: '2026-03-01',
      to: '2026-03-02',
      points: [
        { day: '2026-03-01', value: 2 },
        { day: '2026-03-02', value: 2 },
      ],
    });
  });
});

describe('the rollup', () => {
  it('gives the same rows when run again', async () => {
    const before = (await get(OVERVIEW)).json();
    const again = await rollup();
    expect(again).toEqual({ from: '2026-06-09', to: '2026-06-10', days: 2 });
    expect((await get(OVERVIEW)).json()).toEqual(before);
  });

  it('picks up a row persisted late inside its recompute window, and rolls days up to a later now', async () => {
    await ledger(A, 'earn', 7, '2026-06-09 20:00');
    await rollup();
    expect(await (await get('/v1/admin/analytics/daily?metric=points_issued&from=2026-06-09&to=2026-06-09')).json().points).toEqual([
      { day: '2026-06-09', value: 7 },
    ]);
    const later = await rollup(Date.parse('2026-06-13T12:00:00+08:00'));
    expect(later).toEqual({ from: '2026-06-11', to: '2026-06-13', days: 3 });
    const o = (await get('/v1/admin/analytics/overview?from=2026-06-01&to=2026-06-13')).json();
    expect(o.points.outstanding).toBe(200 + 5 + 7);
    expect(o.daysRolledUp).toBe(13);
  });

  it('records a member login as activity of its business day', async () => {
    const [m] = await ctx.sql<Array<{ email: string }>>`SELECT email FROM users WHERE id = ${member.id}`;
    const login = () => ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: m.email, password: 'member-password' } });
    expect((await login()).statusCode).toBe(200);
    expect((await login()).statusCode).toBe(200);
    const rows = await ctx.sql`SELECT day::text AS day FROM member_logins WHERE user_id = ${member.id}`;
    expect(rows).toHaveLength(1);
  });
});

describe('analytics endpoints', () => {
  it('are for admins only', async () => {
    expectError(await get(OVERVIEW, member.token), 403, 'FORBIDDEN');
    expectError(await ctx.app.inject({ url: OVERVIEW }), 401, 'UNAUTHORIZED');
    expectError(await get('/v1/admin/analytics/daily?metric=dau', member.token), 403, 'FORBIDDEN');
  });

  it('refuse a bad window or metric with 400', async () => {
    for (const url of [
      '/v1/admin/analytics/overview?from=2026-03-10&to=2026-03-01',
      '/v1/admin/analytics/overview?from=2026-02-30',
      '/v1/admin/analytics/overview?from=yesterday',
      '/v1/admin/analytics/overview?from=2000-01-01&to=2026-01-01',
      '/v1/admin/analytics/overview?extra=1',
      '/v1/admin/analytics/daily?metric=nope',
      '/v1/admin/analytics/daily',
    ]) {
      expectError(await get(url), 400, 'VALIDATION_FAILED');
    }
  });

  it('default to the 30 days ending today', async () => {
    const res = await get('/v1/admin/analytics/daily?metric=dau');
    expect(res.statusCode).toBe(200);
    const { from, to } = res.json();
    expect(Date.parse(to) - Date.parse(from)).toBe(29 * 86_400_000);
  });
});
