/**
 * Reminders: points about to expire (7, 3 and 1 day(s) ahead by default; reminder_rules 'expiry')
 * and, when enabled, a daily check-in nudge (reminder_rules 'checkin'). Due members are found
 * through the expiry index (no scan of all members). Each reminder carries a dedupe key, and
 * push_records.dedupe_key is unique, so a reminder is recorded at most once per member, expiry
 * day and threshold — however many reminder runs race.
 */
import type { Redis } from 'ioredis';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { PushService } from '../push/service.ts';
import { groupByDay, parseBalanceReply } from '../points/service.ts';

const DAY = 86_400_000;

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
  constructor(private readonly d: { sql: Sql; redis: Redis; keys: Keys; pushes: PushService }) {}

  async run(o: { nowMs?: number } = {}): Promise<ReminderRunResult> {
    const now = o.nowMs ?? (await this.redisNow());
    const rules = await this.rules();
    const result: ReminderRunResult = { expiryReminders: 0, checkinReminders: 0, members: 0 };
    if (rules.expiry.enabled && rules.expiry.days.length > 0) {
      const horizon = Math.max(...rules.expiry.days) * DAY;
      for (let p = 0; p < this.d.keys.partitions; p++) {
        const due = await this.d.redis.zrangebyscore(this.d.keys.expiryIndex(p), `(${now}`, now + horizon);
        result.members += due.length;
        for (const uid of due) result.expiryReminders += await this.remindExpiry(Number(uid), now, rules.expiry.days);
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
    const horizon = Math.max(...days) * DAY;
    const reply = await redis.pmBalance(keys.account(userId), keys.lotsByExpiry(userId), keys.lotRemaining(userId), horizon, now);
    const live = parseBalanceReply(reply);
    if (!live) return 0;
    const thresholds = [...days].sort((a, b) => a - b);
    let sent = 0;
    for (const { date: day, points, expiresAt } of groupByDay(live.lots)) {
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

  /** Members with a device who have not checked in today (UTC), once per day each. */
  private async remindCheckin(now: number): Promise<number> {
    const { redis, keys, sql } = this.d;
    const today = Math.floor(now / DAY);
    const dayName = new Date(now).toISOString().slice(0, 10);
    let sent = 0;
    let after = 0;
    for (;;) {
      const rows = await sql<Array<{ userId: number }>>`
        SELECT DISTINCT user_id AS "userId" FROM devices WHERE user_id > ${after} ORDER BY user_id LIMIT 1000`;
      if (rows.length === 0) break;
      after = rows[rows.length - 1].userId;
      const days = await Promise.all(rows.map((r) => redis.hget(keys.dailyCap(r.userId, 'checkin'), 'day')));
      for (const [i, r] of rows.entries()) {
        if (Number(days[i]) === today) continue;
        const res = await this.d.pushes.enqueue(r.userId, {
          type: 'checkin-reminder',
          title: 'Check in today',
          body: 'Your daily check-in points are waiting.',
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
