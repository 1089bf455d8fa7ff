/**
 * The daily rollup the analytics role keeps (docs/analytics.md defines every figure). A run
 * recomputes, in day order, every business day not yet rolled up and the last RECOMPUTE days
 * (ops persist a little after they happen), replacing each day's row whole: running it twice
 * gives the same rows. Pushes and task progress change for longer after their day (a push is
 * opened later, a weekly task completes days after its period starts), so their counts are
 * recomputed for the last SETTLE_DAYS days on every run. Reads (src/analytics/service.ts) touch
 * only these tables, never the ledger.
 */
import type { Sql } from '../db/client.ts';
import { dayFromString, dayNumber, dayString } from '../engagement/business-day.ts';
import { MemberBits, padded } from './bits.ts';

/** Days whose push opens and task progress are recounted on every run. */
export const SETTLE_DAYS = 30;

/** Days of the rolling monthly active window (MAU). */
export const MAU_DAYS = 30;

export interface RollupOptions {
  timeZone: string;
  /** Past days recomputed on every run, today included (>= 1). */
  recomputeDays: number;
  /** Now, for tests. */
  now?: number;
}

export interface RollupReport {
  from: string | null;
  to: string;
  days: number;
}

interface MemberDay {
  userId: number;
  active: boolean;
  earned: boolean;
  issued: number;
  spent: number;
  expired: number;
  refunded: number;
  net: number;
}

const addDays = (day: string, n: number) => dayString(dayFromString(day) + n);

/** Rolls up the days due (see the module header); returns the range it recomputed. */
export async function runRollup(sql: Sql, o: RollupOptions): Promise<RollupReport> {
  const today = dayString(dayNumber(o.timeZone, o.now ?? Date.now()));
  const from = await firstDueDay(sql, o.timeZone, today, o.recomputeDays);
  if (from === null) return { from: null, to: today, days: 0 };
  let days = 0;
  for (let day = from; day <= today; day = addDays(day, 1)) {
    await rollDay(sql, o.timeZone, day);
    days++;
  }
  await settle(sql, o.timeZone, from < addDays(today, 1 - SETTLE_DAYS) ? from : addDays(today, 1 - SETTLE_DAYS));
  return { from, to: today, days };
}

/** The day after the last one rolled up, or the start of the recompute window if earlier; at the first run, the first day with data. */
async function firstDueDay(sql: Sql, tz: string, today: string, recomputeDays: number): Promise<string | null> {
  const window = addDays(today, 1 - Math.max(1, recomputeDays));
  const [last] = await sql<Array<{ day: string | null }>>`SELECT max(day)::text AS day FROM analytics_days`;
  if (last.day !== null) {
    const next = addDays(last.day, 1);
    return next < window ? next : window;
  }
  const [first] = await sql<Array<{ day: string | null }>>`
    SELECT (min(t) AT TIME ZONE ${tz})::date::text AS day FROM (
      SELECT min(created_at) AS t FROM ledger_entries
      UNION ALL SELECT min(created_at) FROM redemptions
      UNION ALL SELECT min(created_at) FROM users WHERE role = 'member'
      UNION ALL SELECT min(day)::timestamp AT TIME ZONE ${tz} FROM member_logins
    ) s`;
  if (first.day === null) return null;
  return first.day < window ? first.day : window;
}

/** Recomputes one business day's rows (analytics_days, analytics_goods_days) and the first-time facts of its members. */
export async function rollDay(sql: Sql, tz: string, day: string): Promise<void> {
  const lo = sql`(${day}::date::timestamp AT TIME ZONE ${tz})`;
  const hi = sql`((${day}::date + 1)::timestamp AT TIME ZONE ${tz})`;
  const members = await sql<MemberDay[]>`
    SELECT user_id AS "userId",
           bool_or(kind <> 'expire') AS active,
           bool_or(kind = 'earn' AND delta > 0) AS earned,
           coalesce(sum(delta) FILTER (WHERE kind = 'earn'), 0)::bigint AS issued,
           coalesce(-sum(delta) FILTER (WHERE kind = 'spend'), 0)::bigint AS spent,
           coalesce(-sum(delta) FILTER (WHERE kind = 'expire'), 0)::bigint AS expired,
           coalesce(sum(delta) FILTER (WHERE kind = 'refund'), 0)::bigint AS refunded,
           sum(delta)::bigint AS net
    FROM ledger_entries WHERE created_at >= ${lo} AND created_at < ${hi}
    GROUP BY user_id`;
  const logins = await sql<Array<{ userId: number }>>`SELECT user_id AS "userId" FROM member_logins WHERE day = ${day}::date`;
  const redeemed = await sql<Array<{ userId: number; n: number }>>`
    SELECT user_id AS "userId", count(*)::int AS n FROM redemptions
    WHERE source = 'order' AND created_at >= ${lo} AND created_at < ${hi} GROUP BY user_id`;
  const joined = await sql<Array<{ id: number }>>`
    SELECT id FROM users WHERE role = 'member' AND created_at >= ${lo} AND created_at < ${hi}`;
  const [{ maxId }] = await sql<Array<{ maxId: number | null }>>`SELECT max(id) AS "maxId" FROM users`;
  let top = maxId ?? 0;
  for (const list of [members, logins, redeemed]) for (const r of list) if (r.userId > top) top = r.userId;
  const length = top + 1;

  const [prev] = await sql<Array<{ outstanding: number; everEarned: string; everRedeemed: string }>>`
    SELECT points_outstanding AS outstanding, ever_earned_bits::text AS "everEarned", ever_redeemed_bits::text AS "everRedeemed"
    FROM analytics_days WHERE day = ${day}::date - 1`;
  const before = prev
    ? prev.outstanding
    : (await sql<Array<{ s: number }>>`SELECT coalesce(sum(delta), 0)::bigint AS s FROM ledger_entries WHERE created_at < ${lo}`)[0].s;

  const active = new MemberBits(length).addAll(members.filter((m) => m.active).map((m) => m.userId)).addAll(logins.map((l) => l.userId));
  const earners = new MemberBits(length).addAll(members.filter((m) => m.earned).map((m) => m.userId));
  const redeemers = new MemberBits(length).addAll(redeemed.map((r) => r.userId));
  const repeat = new MemberBits(length).addAll(redeemed.filter((r) => r.n >= 2).map((r) => r.userId));
  const fresh = new MemberBits(length).addAll(joined.map((j) => j.id));
  const everEarned = MemberBits.parse(prev?.everEarned, length);
  const everRedeemed = MemberBits.parse(prev?.everRedeemed, length);
  const firstEarners = members.filter((m) => m.earned && !everEarned.has(m.userId)).map((m) => m.userId);
  const firstRedeemers = redeemed.filter((r) => !everRedeemed.has(r.userId)).map((r) => r.userId);
  everEarned.or(earners);
  everRedeemed.or(redeemers);

  // members active on the other days of the rolling month, with today's
  const monthly = MemberBits.parse(null, length).or(active);
  const [{ width }] = await sql<Array<{ width: number | null }>>`
    SELECT max(length(active_bits)) AS width FROM analytics_days WHERE day >= ${day}::date - ${MAU_DAYS - 1}::int AND day < ${day}::date`;
  if (width) {
    const [{ bits }] = await sql<Array<{ bits: string | null }>>`
      SELECT bit_or(${padded(sql, 'active_bits', width)})::text AS bits FROM analytics_days
      WHERE day >= ${day}::date - ${MAU_DAYS - 1}::int AND day < ${day}::date`;
    monthly.or(MemberBits.parse(bits, length));
  }

  const sum = (f: (m: MemberDay) => number) => members.reduce((a, m) => a + f(m), 0);
  const net = sum((m) => m.net);
  await sql.begin(async (tx) => {
    await tx`
      INSERT INTO analytics_days (day, active_members, monthly_active, new_members, earners, redeemers, points_issued, points_spent,
        points_expired, points_refunded, points_net, points_outstanding, redemptions, active_bits, new_bits, earner_bits,
        redeemer_bits, repeat_bits, ever_earned_bits, ever_redeemed_bits, computed_at)
      VALUES (${day}::date, ${active.count()}, ${monthly.count()}, ${joined.length}, ${earners.count()}, ${redeemers.count()},
        ${sum((m) => m.issued)}, ${sum((m) => m.spent)}, ${sum((m) => m.expired)}, ${sum((m) => m.refunded)}, ${net}, ${before + net},
        ${redeemed.reduce((a, r) => a + r.n, 0)}, ${active.toString()}::varbit, ${fresh.toString()}::varbit, ${earners.toString()}::varbit,
        ${redeemers.toString()}::varbit, ${repeat.toString()}::varbit, ${everEarned.toString()}::varbit, ${everRedeemed.toString()}::varbit, now())
      ON CONFLICT (day) DO UPDATE SET
        active_members = excluded.active_members, monthly_active = excluded.monthly_active, new_members = excluded.new_members,
        earners = excluded.earners, redeemers = excluded.redeemers, points_issued = excluded.points_issued,
        points_spent = excluded.points_spent, points_expired = excluded.points_expired, points_refunded = excluded.points_refunded,
        points_net = excluded.points_net, points_outstanding = excluded.points_outstanding, redemptions = excluded.redemptions,
        active_bits = excluded.active_bits, new_bits = excluded.new_bits, earner_bits = excluded.earner_bits,
        redeemer_bits = excluded.redeemer_bits, repeat_bits = excluded.repeat_bits, ever_earned_bits = excluded.ever_earned_bits,
        ever_redeemed_bits = excluded.ever_redeemed_bits, computed_at = excluded.computed_at`;
    await tx`DELETE FROM analytics_goods_days WHERE day = ${day}::date`;
    await tx`
      INSERT INTO analytics_goods_days (day, goods_id, redemptions, quantity, points)
      SELECT ${day}::date, goods_id, count(*), sum(quantity), sum(points_spent) FROM redemptions
      WHERE source = 'order' AND created_at >= ${lo} AND created_at < ${hi} GROUP BY goods_id`;
    // a first day only moves earlier: recomputing a day, or a later one, never loses it
    await tx`
      INSERT INTO analytics_members (user_id, first_earn_day)
      SELECT u, ${day}::date FROM unnest(${firstEarners}::bigint[]) AS u
      ON CONFLICT (user_id) DO UPDATE SET first_earn_day = LEAST(coalesce(analytics_members.first_earn_day, excluded.first_earn_day), excluded.first_earn_day)`;
    await tx`
      INSERT INTO analytics_members (user_id, first_redeem_day)
      SELECT u, ${day}::date FROM unnest(${firstRedeemers}::bigint[]) AS u
      ON CONFLICT (user_id) DO UPDATE SET first_redeem_day = LEAST(coalesce(analytics_members.first_redeem_day, excluded.first_redeem_day), excluded.first_redeem_day)`;
  });
}

/** Recounts pushes (opened or not) and task periods (completed or not) for the rolled days from `from` on. */
async function settle(sql: Sql, tz: string, from: string): Promise<void> {
  await sql`
    WITH p AS (
      SELECT (created_at AT TIME ZONE ${tz})::date AS day, count(*)::int AS n, count(opened_at)::int AS opened
      FROM push_records WHERE push_id IS NULL AND created_at >= (${from}::date::timestamp AT TIME ZONE ${tz})
      GROUP BY 1
    ), t AS (
      SELECT period_start::date AS day, count(*)::int AS n, count(completed_at)::int AS completed
      FROM task_progress WHERE period_start ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' AND period_start >= ${from}
      GROUP BY 1
    )
    UPDATE analytics_days a SET pushes = coalesce(p.n, 0), pushes_opened = coalesce(p.opened, 0),
      tasks_started = coalesce(t.n, 0), tasks_completed = coalesce(t.completed, 0)
    FROM analytics_days x LEFT JOIN p ON p.day = x.day LEFT JOIN t ON t.day = x.day
    WHERE a.day = x.day AND x.day >= ${from}::date`;
}
