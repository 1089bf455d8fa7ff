/**
 * Task progress from what the system recorded: ledger ops and member events, as the engagement
 * role follows them (src/rewards/follower.ts). Each followed row is turned into occurrences
 * (event, amount, member, time), counted into the task's period of the row's time in
 * BUSINESS_TIMEZONE, and a period reaching its target is marked completed once and owes its
 * reward (a payout, slot `task:<key>:<member>:<period>`), in the transaction that advances the
 * follower's watermark.
 */
import type { Tx } from '../db/client.ts';
import { dayFromString, dayStartMs, periodsOf } from '../engagement/business-day.ts';
import { REVERSAL_BIZ_TYPES } from '../referrals/rules.ts';
import { insertPayouts, type PayoutInput } from '../rewards/payouts.ts';
import type { TaskEvent, TaskFrequency } from './schemas.ts';

/** A persisted ledger row, as the follower reads it. */
export interface FollowedOp {
  id: number;
  opId: string;
  userId: number;
  kind: string;
  delta: number;
  bizType: string;
  bizId: string | null;
  /** created_at, ms */
  at: number;
}

export interface FollowedEvent {
  id: number;
  userId: number;
  type: string;
  ref: string | null;
  at: number;
}

export interface Occurrence {
  userId: number;
  event: TaskEvent;
  amount: number;
  at: number;
}

const ACTION_EVENTS: ReadonlySet<string> = new Set(['checkin', 'share', 'review']);
/** Earns that are not earning: a task's own reward (tasks would feed each other) and refunds. */
const NOT_EARNED: ReadonlySet<string> = new Set(['task', 'refund']);
/**
 * Points moved between members are neither earned nor spent: two members passing points back and
 * forth would otherwise complete each other's earn and spend tasks.
 */
const MOVED: ReadonlySet<string> = new Set(['transfer_in', 'transfer_out']);
/** Points taken back (a refunded order's purchase earn): not spending by the member. */
const TAKEN_BACK: ReadonlySet<string> = new Set(['clawback']);

export function occurrencesOfOp(op: FollowedOp): Occurrence[] {
  const out: Occurrence[] = [];
  const at = { userId: op.userId, at: op.at };
  if (MOVED.has(op.bizType)) return out;
  if (op.kind === 'earn') {
    if (ACTION_EVENTS.has(op.bizType)) out.push({ ...at, event: op.bizType as TaskEvent, amount: 1 });
    if (!NOT_EARNED.has(op.bizType) && op.delta > 0) out.push({ ...at, event: 'earn_points', amount: op.delta });
  } else if (op.kind === 'spend' && !REVERSAL_BIZ_TYPES.has(op.bizType) && !TAKEN_BACK.has(op.bizType)) {
    if (op.bizType === 'redemption') out.push({ ...at, event: 'redeem', amount: 1 });
    if (op.delta < 0) out.push({ ...at, event: 'spend_points', amount: -op.delta });
  }
  return out;
}

export function occurrencesOfEvent(e: FollowedEvent): Occurrence[] {
  if (e.type === 'profile_complete' || e.type === 'invite') {
    return [{ userId: e.userId, event: e.type === 'invite' ? 'invite' : 'profile_complete', amount: 1, at: e.at }];
  }
  return [];
}

/** The period a moment falls in: the business day, the Monday of its week, or 'once'. */
export function periodOf(frequency: TaskFrequency, tz: string, ms: number): string {
  if (frequency === 'once') return 'once';
  const p = periodsOf(tz, ms);
  return frequency === 'daily' ? p.day : p.week;
}

/** Where a period starts and ends (instants); a once task's period is its own window. */
export function periodBounds(
  frequency: TaskFrequency,
  tz: string,
  period: string,
  window: { startsAt: Date | null; endsAt: Date | null },
): { start: Date | null; end: Date | null } {
  if (frequency === 'once') return { start: window.startsAt, end: window.endsAt };
  const first = dayFromString(period);
  const days = frequency === 'daily' ? 1 : 7;
  return { start: new Date(dayStartMs(tz, first)), end: new Date(dayStartMs(tz, first + days)) };
}

interface ActiveTask {
  key: string;
  title: string;
  frequency: TaskFrequency;
  event: TaskEvent;
  reward: number;
  startsAt: Date | null;
  endsAt: Date | null;
}

const inWindow = (t: ActiveTask, ms: number) =>
  (t.startsAt === null || t.startsAt.getTime() <= ms) && (t.endsAt === null || ms < t.endsAt.getTime());

/**
 * Counts the occurrences into their tasks' periods (active tasks whose window holds the
 * occurrence's time) and records the completions they cause. Returns how many periods completed.
 */
export async function applyTaskProgress(tx: Tx, tz: string, occurrences: Occurrence[]): Promise<number> {
  if (occurrences.length === 0) return 0;
  const tasks = await tx<ActiveTask[]>`
    SELECT key, title, frequency, event, reward, starts_at AS "startsAt", ends_at AS "endsAt" FROM tasks WHERE active`;
  const byEvent = new Map<string, ActiveTask[]>();
  for (const t of tasks) byEvent.set(t.event, [...(byEvent.get(t.event) ?? []), t]);
  const counts = new Map<string, { taskKey: string; userId: number; period: string; amount: number }>();
  for (const o of occurrences) {
    for (const t of byEvent.get(o.event) ?? []) {
      if (!inWindow(t, o.at)) continue;
      const period = periodOf(t.frequency, tz, o.at);
      const id = `${t.key}\u0000${o.userId}\u0000${period}`;
      const c = counts.get(id) ?? { taskKey: t.key, userId: o.userId, period, amount: 0 };
      c.amount += o.amount;
      counts.set(id, c);
    }
  }
  if (counts.size === 0) return 0;
  const rows = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, c]) => c);
  const keys = rows.map((r) => r.taskKey);
  const users = rows.map((r) => r.userId);
  const periods = rows.map((r) => r.period);
  await tx`
    INSERT INTO task_progress (task_key, user_id, period_start, progress)
    SELECT * FROM unnest(${keys}::text[], ${users}::bigint[], ${periods}::text[], ${rows.map((r) => r.amount)}::bigint[])
    ON CONFLICT (task_key, user_id, period_start) DO UPDATE
      SET progress = task_progress.progress + EXCLUDED.progress, updated_at = now()`;
  const done = await tx<Array<{ taskKey: string; userId: number; period: string; reward: number; title: string }>>`
    UPDATE task_progress p SET completed_at = now()
    FROM tasks t, unnest(${keys}::text[], ${users}::bigint[], ${periods}::text[]) AS c(task_key, user_id, period_start)
    WHERE p.task_key = c.task_key AND p.user_id = c.user_id AND p.period_start = c.period_start
      AND t.key = p.task_key AND p.completed_at IS NULL AND p.progress >= t.target
    RETURNING p.task_key AS "taskKey", p.user_id AS "userId", p.period_start AS period, t.reward, t.title`;
  const payouts: PayoutInput[] = done.map((d) => ({
    slot: `task:${d.taskKey}:${d.userId}:${d.period}`,
    userId: d.userId,
    bizType: 'task',
    bizId: d.taskKey,
    direction: 'credit',
    points: d.reward,
    rule: true,
    push: { type: 'task', title: 'Task complete', body: `${d.title}: +{points} points` },
  }));
  await insertPayouts(tx, payouts);
  return done.length;
}
