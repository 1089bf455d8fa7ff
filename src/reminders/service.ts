/**
 * Reminders: points about to expire (7, 3 and 1 day(s) ahead by default; reminder_rules 'expiry')
 * and, when enabled, a daily check-in nudge (reminder_rules 'checkin'). Due members are found
 * through the expiry index (no scan of all members). Each reminder carries a dedupe key, and
 * push_records.dedupe_key is unique, so a reminder is recorded at most once per member, expiry
 * day and threshold — however many reminder runs race. Members, their lots and device owners are
 * read in bounded pages, so a run's memory does not grow with the number of members or lots.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { businessDate } from '../engagement/business-day.ts';
import type { CheckinService } from '../engagement/checkin.ts';
import type { PushService } from '../push/service.ts';
import { groupByDay, type Balance } from '../points/service.ts';
import { liveLotsPage } from '../points/lots.ts';
import { zsetPageAfter, type ZPosition } from '../redis/zset-page.ts';

const DAY = 86_400_000;
const PAGE = 500;

interface Rules {
  expiry: { enabled: boolean; days: number[] };
  checkin: { enabled: boolean; hourUtc: number };
}

export interface ReminderRunResult {
  expiryReminders: number;
  checkinReminders: number;
  members: number;
}

export class ReminderService {
  private readonly page: number;

  constructor(
    private readonly d: {
      sql: Sql;
      redis: RedisClient;
      keys: Keys;
      pushes: PushService;
      /** The streak a member keeps by checking in today and what that pays (src/engagement/checkin.ts). */
      checkins: Pick<CheckinService, 'nextCheckin'>;
      timeZone: string;
      pageSize?: number;
    },
  ) {
    this.page = d.pageSize ?? PAGE;
  }

  async run(o: { nowMs?: number } = {}): Promise<ReminderRunResult> {
    const now = o.nowMs ?? (await this.redisNow());
    const rules = await this.rules();
    const result: ReminderRunResult = { expiryReminders: 0, checkinReminders: 0, members: 0 };
    if (rules.expiry.enabled && rules.expiry.days.length > 0) {
      const horizon = Math.max(...rules.expiry.days) * DAY;
      for (let p = 0; p < this.d.keys.partitions; p++) {
        let after: ZPosition | null = null;
        do {
          const due = await zsetPageAfter(this.d.redis, this.d.keys.expiryIndex(p), { min: now, max: now + horizon, after, count: this.page });
          result.members += due.length;
          for (const { member } of due) result.expiryReminders += await this.remindExpiry(Number(member), now, rules.expiry.days);
          after = due.length === this.page ? due[due.length - 1] : null;
        } while (after);
      }
    }
    if (rules.checkin.enabled && new Date(now).getUTCHours() >= rules.checkin.hourUtc) {
      result.checkinReminders = await this.remindCheckin(now);
    }
    return result;
  }

  /** One reminder per expiry day: the tightest threshold already reached, if not sent before. */
  private async remindExpiry(userId: number, now: number, days: number[]): Promise<number> {
    const { redis, keys } = this.d;
    const until = now + Math.max(...days) * DAY;
    const byDay = new Map<string, Balance['expiring'][number]>();
    let after: ZPosition | null = null;
    do {
      const page = await liveLotsPage(redis, keys, userId, { now, until, after, limit: this.page });
      for (const day of groupByDay(page.lots)) {
        const known = byDay.get(day.date);
        if (known) known.points += day.points;
        else byDay.set(day.date, day);
      }
      after = page.next;
    } while (after);
    const thresholds = [...days].sort((a, b) => a - b);
    let sent = 0;
    for (const { date: day, points, expiresAt } of byDay.values()) {
      const left = Date.parse(expiresAt) - now;
      const threshold = thresholds.find((d) => left <= d * DAY);
      if (threshold === undefined || points <= 0) continue;
      const r = await this.d.pushes.enqueue(userId, {
        type: 'expiry-reminder',
        title: threshold === 1 ? 'Your points expire tomorrow' : `Your points expire in ${threshold} days`,
        body: `${points} points expire on ${day}. Spend them before they are gone.`,
        data: { points: String(points), expiresOn: day, threshold: String(threshold) },
        dedupeKey: `expiry:${userId}:${day}:${threshold}`,
      });
      if (!r.duplicate) sent++;
    }
    return sent;
  }

  /**
   * Members with a device who have not checked in today (the business day), once per day each; the
   * text names the streak they keep by checking in today and what it pays.
   */
  private async remindCheckin(now: number): Promise<number> {
    const { sql } = this.d;
    const dayName = businessDate(this.d.timeZone, now);
    let sent = 0;
    let after = 0;
    for (;;) {
      const rows = await sql<Array<{ userId: number }>>`
        SELECT DISTINCT user_id AS "userId" FROM devices WHERE user_id > ${after} ORDER BY user_id LIMIT ${this.page}`;
      if (rows.length === 0) break;
      after = rows[rows.length - 1].userId;
      const states = await Promise.all(rows.map((r) => this.d.checkins.nextCheckin(r.userId)));
      for (const [i, r] of rows.entries()) {
        const next = states[i];
        if (next.checkedInToday) continue;
        const res = await this.d.pushes.enqueue(r.userId, {
          type: 'checkin-reminder',
          title: 'Check in today',
          body:
            next.streak >= 2
              ? `${next.streak}-day streak — check in today for ${next.points} points`
              : `Check in today for ${next.points} points`,
          data: { streak: String(next.streak), points: String(next.points) },
          dedupeKey: `checkin:${r.userId}:${dayName}`,
        });
        if (!res.duplicate) sent++;
      }
    }
    return sent;
  }

  private async rules(): Promise<Rules> {
    const rows = await this.d.sql<Array<{ kind: string; enabled: boolean; params: Record<string, unknown> }>>`
      SELECT kind, enabled, params FROM reminder_rules`;
    const get = (kind: string) => rows.find((r) => r.kind === kind);
    const expiry = get('expiry');
    const checkin = get('checkin');
    return {
      expiry: { enabled: expiry?.enabled ?? false, days: ((expiry?.params.days as number[]) ?? []).filter((d) => d > 0) },
      checkin: { enabled: checkin?.enabled ?? false, hourUtc: Number(checkin?.params.hourUtc ?? 9) },
    };
  }

  private async redisNow(): Promise<number> {
    const [sec, usec] = await this.d.redis.time();
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }
}
