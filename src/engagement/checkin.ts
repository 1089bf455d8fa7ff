/**
 * Daily check-in with streaks (lua/checkin-6.lua; the check-ins of one turn of the event loop in
 * one call, lua/checkin-many-n.lua): once per business day, points by streak length (settings in
 * engagement_settings 'checkin', cached in EngagementConfig) times the tier and campaign
 * multipliers. The member's history is the ledger (bizType 'checkin', bizId = the
 * business day number); the streak state lives in the member's slot and is rebuilt from the ledger.
 */
import { DomainError } from '../errors/domain-error.ts';
import type { Deps } from '../deps.ts';
import { newOpId } from '../points/idempotency.ts';
import type { PointsService } from '../points/service.ts';
import type { RequestContext } from '../risk/rules.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import { CHECKIN_SCRIPT, ScriptBatcher } from '../redis/script-batch.ts';
import { dayFromString, dayNumber, dayStartMs, dayString, offsetMs } from './business-day.ts';
import type { CheckinSettings, EngagementConfig } from './config.ts';

const DAY_MS = 86_400_000;

export interface CheckinResult {
  day: string;
  streak: number;
  points: number;
  available: number;
}

export interface CheckinMonth {
  month: string;
  days: string[];
  streak: number;
  longestStreak: number;
  checkedInToday: boolean;
}

interface RawResult {
  day: number;
  streak?: number;
  points?: number;
  available?: number;
}

/** Points a check-in pays for a streak of `streak` days, before multipliers. */
export function checkinPoints(rules: CheckinSettings, streak: number): number {
  let points = rules.base;
  let reached = 0;
  for (const b of rules.streakBonuses) {
    if (streak >= b.days && b.days > reached) {
      points = b.points;
      reached = b.days;
    }
  }
  return points;
}

export class CheckinService {
  /** The check-ins of one turn of the event loop, run in one script call. */
  private readonly batch: ScriptBatcher;

  constructor(
    private readonly deps: Deps,
    private readonly points: PointsService,
    private readonly config: EngagementConfig,
  ) {
    this.batch = new ScriptBatcher(deps.redis, CHECKIN_SCRIPT, deps.env.SCRIPT_BATCH_MAX);
  }

  /** Checks the member in for today; ALREADY_CHECKED_IN (with today's result) the second time. */
  async checkIn(userId: number, nowMs?: number, ctx: RequestContext = {}): Promise<CheckinResult> {
    const { keys, env } = this.deps;
    const rules = this.config.checkin;
    const now = nowMs ?? Date.now();
    const reply = await this.points.withHydration(userId, () =>
      this.batch.run(
        [
          keys.account(userId),
          keys.lotsByExpiry(userId),
          keys.lotRemaining(userId),
          keys.streak(userId),
          keys.outboxOf(userId),
          keys.expiryIndexOf(userId),
        ],
        [
          newOpId(),
          userId,
          nowMs ?? '',
          offsetMs(env.BUSINESS_TIMEZONE, now),
          JSON.stringify({ base: rules.base, bonuses: rules.streakBonuses, expiryMs: rules.expiryDays * DAY_MS }),
          this.config.multipliers('checkin', { rule: true, lifetime: true }, now),
          '{}',
          this.points.riskSpec('checkin', true, ctx),
        ],
      ),
    );
    const code = Number(reply[0]);
    if (code === ScriptCode.AlreadyCheckedIn) {
      const today = await this.present(userId, JSON.parse(String(reply[1])) as RawResult);
      throw new DomainError('ALREADY_CHECKED_IN', `Already checked in today (${today.day})`, { today });
    }
    if (code !== 1) throw scriptError(code);
    return this.present(userId, JSON.parse(String(reply[1])) as RawResult);
  }

  /** A stored result lacks what a rebuild could not know (the balance then): filled from now. */
  private async present(userId: number, r: RawResult): Promise<CheckinResult> {
    const available = r.available ?? (await this.points.balance(userId)).available;
    return { day: dayString(r.day), streak: r.streak ?? 1, points: r.points ?? 0, available };
  }

  /** The member's check-ins in a month ('YYYY-MM' in BUSINESS_TIMEZONE) and the streak today. */
  async month(userId: number, month: string): Promise<CheckinMonth> {
    const { sql, redis, keys, env } = this.deps;
    const first = dayFromString(`${month}-01`);
    const [y, m] = month.split('-').map(Number);
    const next = dayFromString(new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 10));
    const rows = await sql<Array<{ day: string }>>`
      SELECT DISTINCT biz_id AS day FROM ledger_entries
      WHERE user_id = ${userId} AND biz_type = 'checkin'
        AND created_at >= to_timestamp(${dayStartMs(env.BUSINESS_TIMEZONE, first) - DAY_MS} / 1000.0)
        AND created_at < to_timestamp(${dayStartMs(env.BUSINESS_TIMEZONE, next) + DAY_MS} / 1000.0)`;
    const days = new Set(rows.map((r) => Number(r.day)).filter((d) => d >= first && d < next));
    const [last, streak, longest] = await redis.hmget(keys.streak(userId), 'last', 'streak', 'longest');
    const today = dayNumber(env.BUSINESS_TIMEZONE, Date.now());
    // today's check-in may not be persisted yet: the live state knows it
    if (last !== null && Number(last) >= first && Number(last) < next) days.add(Number(last));
    const current = last !== null && Number(last) >= today - 1 ? Number(streak) : 0;
    return {
      month,
      days: [...days].sort((a, b) => a - b).map(dayString),
      streak: current,
      longestStreak: Number(longest ?? 0),
      checkedInToday: last !== null && Number(last) === today,
    };
  }

  /** For the check-in reminder: the streak kept if the member checks in today, and what that pays. */
  async nextCheckin(userId: number): Promise<{ streak: number; points: number; checkedInToday: boolean }> {
    const { redis, keys, env } = this.deps;
    const [last, streak] = await redis.hmget(keys.streak(userId), 'last', 'streak');
    const today = dayNumber(env.BUSINESS_TIMEZONE, Date.now());
    const checkedInToday = last !== null && Number(last) === today;
    const next = last !== null && Number(last) === today - 1 ? Number(streak) + 1 : 1;
    return { streak: checkedInToday ? Number(streak) : next, points: checkinPoints(this.config.checkin, next), checkedInToday };
  }
}
