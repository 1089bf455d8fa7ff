/**
 * Analytics reads: the overview of a window of business days and one metric per day, answered
 * from the rollup tables alone (src/analytics/rollup.ts). Every formula is in docs/analytics.md;
 * a rate whose denominator is 0 is null.
 */
import type { Sql } from '../db/client.ts';
import { parseWindow, type Window } from './window.ts';
import { padded } from './bits.ts';

export const RETENTION_DAYS = [7, 30, 90] as const;
export const EXPIRY_RATE_DAYS = 30;
export const TOP_GOODS = 10;

export const DAILY_METRICS = [
  'dau',
  'mau',
  'new_members',
  'points_issued',
  'points_spent',
  'points_expired',
  'points_refunded',
  'points_outstanding',
  'redemptions',
  'earners',
  'redeemers',
  'redemption_rate',
  'pushes',
  'pushes_opened',
  'push_open_rate',
  'tasks_started',
  'tasks_completed',
  'task_completion_rate',
] as const;
export type DailyMetric = (typeof DAILY_METRICS)[number];

/** Each daily metric as SQL over an analytics_days row (constants: never input). */
const METRIC_SQL: Record<DailyMetric, string> = {
  dau: 'active_members',
  mau: 'monthly_active',
  new_members: 'new_members',
  points_issued: 'points_issued',
  points_spent: 'points_spent',
  points_expired: 'points_expired',
  points_refunded: 'points_refunded',
  points_outstanding: 'points_outstanding',
  redemptions: 'redemptions',
  earners: 'earners',
  redeemers: 'redeemers',
  redemption_rate: 'redeemers::float8 / nullif(earners, 0)',
  pushes: 'pushes',
  pushes_opened: 'pushes_opened',
  push_open_rate: 'pushes_opened::float8 / nullif(pushes, 0)',
  tasks_started: 'tasks_started',
  tasks_completed: 'tasks_completed',
  task_completion_rate: 'tasks_completed::float8 / nullif(tasks_started, 0)',
};


const ratio = (num: number, den: number) => (den > 0 ? num / den : null);

export class AnalyticsService {
  constructor(
    private readonly sql: Sql,
    private readonly timeZone: string,
  ) {}

  /** from/to as given, or the 30 days ending today (see parseWindow). */
  window(from: string | undefined, to: string | undefined, now = Date.now()): Window {
    return parseWindow(this.timeZone, from, to, now);
  }

  async daily(metric: DailyMetric, w: Window) {
    const rows = await this.sql<Array<{ day: string; value: number | null }>>`
      SELECT day::text AS day, (${this.sql.unsafe(METRIC_SQL[metric])})::float8 AS value
      FROM analytics_days WHERE day BETWEEN ${w.from}::date AND ${w.to}::date ORDER BY day`;
    return { metric, ...w, points: rows };
  }

  async overview(w: Window) {
    const sql = this.sql;
    const inWindow = sql`day BETWEEN ${w.from}::date AND ${w.to}::date`;
    const [t] = await sql<
      Array<{
        days: number;
        lastDay: string | null;
        dauAvg: number | null;
        dauMax: number | null;
        issued: number;
        spent: number;
        expired: number;
        refunded: number;
        redemptions: number;
        newMembers: number;
        pushes: number;
        opened: number;
        tasksStarted: number;
        tasksCompleted: number;
        width: number | null;
      }>
    >`
      SELECT count(*)::int AS days, max(day)::text AS "lastDay", avg(active_members)::float8 AS "dauAvg", max(active_members) AS "dauMax",
             coalesce(sum(points_issued), 0)::bigint AS issued, coalesce(sum(points_spent), 0)::bigint AS spent,
             coalesce(sum(points_expired), 0)::bigint AS expired, coalesce(sum(points_refunded), 0)::bigint AS refunded,
             coalesce(sum(redemptions), 0)::bigint AS redemptions, coalesce(sum(new_members), 0)::bigint AS "newMembers",
             coalesce(sum(pushes), 0)::bigint AS pushes, coalesce(sum(pushes_opened), 0)::bigint AS opened,
             coalesce(sum(tasks_started), 0)::bigint AS "tasksStarted", coalesce(sum(tasks_completed), 0)::bigint AS "tasksCompleted",
             max(length(active_bits)) AS width
      FROM analytics_days WHERE ${inWindow}`;
    const [last] = t.lastDay
      ? await sql<Array<{ mau: number; outstanding: number }>>`
          SELECT monthly_active AS mau, points_outstanding AS outstanding FROM analytics_days WHERE day = ${t.lastDay}::date`
      : [{ mau: 0, outstanding: 0 }];

    let sets = { active: 0, earners: 0, redeemers: 0, repeat: 0 };
    if (t.width) {
      const L = t.width;
      // a member redeemed twice in the window: twice on one day, or on a day after an earlier one
      [sets] = await sql<Array<typeof sets>>`
        SELECT coalesce(bit_count(bit_or(a)), 0)::int AS active, coalesce(bit_count(bit_or(e)), 0)::int AS earners,
               coalesce(bit_count(bit_or(r)), 0)::int AS redeemers,
               coalesce(bit_count(bit_or(m | (r & coalesce(prev, ${sql.unsafe(`B'0'::bit(${L})`)})))), 0)::int AS repeat
        FROM (
          SELECT ${padded(sql, 'active_bits', L)} AS a, ${padded(sql, 'earner_bits', L)} AS e, ${padded(sql, 'redeemer_bits', L)} AS r,
                 ${padded(sql, 'repeat_bits', L)} AS m,
                 bit_or(${padded(sql, 'redeemer_bits', L)}) OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev
          FROM analytics_days WHERE ${inWindow}
        ) d`;
    }

    // expiry over the 30 days ending with the window
    const [exp] = await sql<Array<{ expired: number; issued: number }>>`
      SELECT coalesce(sum(points_expired), 0)::bigint AS expired, coalesce(sum(points_issued), 0)::bigint AS issued
      FROM analytics_days WHERE day BETWEEN ${w.to}::date - ${EXPIRY_RATE_DAYS - 1}::int AND ${w.to}::date`;

    const retention = await this.retention(w);

    const [first] = await sql<Array<{ members: number; avg: number | null }>>`
      SELECT count(*)::int AS members, avg(first_redeem_day - first_earn_day)::float8 AS avg FROM analytics_members
      WHERE first_redeem_day BETWEEN ${w.from}::date AND ${w.to}::date AND first_earn_day <= first_redeem_day`;

    const topGoods = await sql<Array<{ goodsId: number; name: string | null; redemptions: number; quantity: number; points: number }>>`
      SELECT s.goods_id AS "goodsId", g.name, s.redemptions, s.quantity, s.points FROM (
        SELECT goods_id, sum(redemptions)::bigint AS redemptions, sum(quantity)::bigint AS quantity, sum(points)::bigint AS points
        FROM analytics_goods_days WHERE ${inWindow} GROUP BY goods_id
        ORDER BY sum(quantity) DESC, sum(redemptions) DESC, goods_id LIMIT ${TOP_GOODS}
      ) s LEFT JOIN goods g ON g.id = s.goods_id
      ORDER BY s.quantity DESC, s.redemptions DESC, s.goods_id`;

    return {
      ...w,
      daysRolledUp: t.days,
      lastDay: t.lastDay,
      members: {
        dauAverage: t.dauAvg,
        dauPeak: t.dauMax,
        mau: last.mau,
        activeInWindow: sets.active,
        newMembers: t.newMembers,
      },
      points: { issued: t.issued, spent: t.spent, expired: t.expired, refunded: t.refunded, outstanding: last.outstanding },
      redemptions: t.redemptions,
      redemptionRate: { redeemers: sets.redeemers, earners: sets.earners, rate: ratio(sets.redeemers, sets.earners) },
      expiryRate: { days: EXPIRY_RATE_DAYS, expired: exp.expired, issued: exp.issued, rate: ratio(exp.expired, exp.issued) },
      repurchaseRate: { repeatRedeemers: sets.repeat, redeemers: sets.redeemers, rate: ratio(sets.repeat, sets.redeemers) },
      retention,
      firstRedemption: { members: first.members, averageDaysFromFirstEarn: first.avg },
      taskCompletionRate: { started: t.tasksStarted, completed: t.tasksCompleted, rate: ratio(t.tasksCompleted, t.tasksStarted) },
      pushOpenRate: { pushes: t.pushes, opened: t.opened, rate: ratio(t.opened, t.pushes) },
      topGoods,
    };
  }

  /** Day-N retention of the members who signed up in the window, over the cohorts whose day N is rolled up. */
  private async retention(w: Window) {
    const sql = this.sql;
    const [{ width }] = await sql<Array<{ width: number | null }>>`
      SELECT max(length(active_bits)) AS width FROM analytics_days
      WHERE day BETWEEN ${w.from}::date AND ${w.to}::date + ${Math.max(...RETENTION_DAYS)}::int`;
    const out = [];
    for (const days of RETENTION_DAYS) {
      const [r] = width
        ? await sql<Array<{ cohort: number; retained: number }>>`
            SELECT coalesce(sum(c.new_members), 0)::int AS cohort,
                   coalesce(sum(bit_count(${padded(sql, 'c.new_bits', width)} & ${padded(sql, 'a.active_bits', width)})), 0)::int AS retained
            FROM analytics_days c JOIN analytics_days a ON a.day = c.day + ${days}::int
            WHERE c.day BETWEEN ${w.from}::date AND ${w.to}::date`
        : [{ cohort: 0, retained: 0 }];
      out.push({ days, cohort: r.cohort, retained: r.retained, rate: ratio(r.retained, r.cohort) });
    }
    return out;
  }
}
