/**
 * Tasks: admin definitions (each write audited, inside the transaction of its Idempotency-Key)
 * and a member's tasks with their progress in the current period. Progress itself is written only
 * by the engagement role (src/tasks/progress.ts).
 */
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { periodBounds, periodOf } from './progress.ts';
import type { TaskEvent, TaskFrequency } from './schemas.ts';
import { recordAudit } from '../audit/log.ts';

export interface TaskInput {
  key: string;
  title: string;
  description?: string;
  frequency: TaskFrequency;
  event: TaskEvent;
  target: number;
  reward: number;
  active?: boolean;
  startsAt?: string | null;
  endsAt?: string | null;
}

export type TaskPatch = Partial<Pick<TaskInput, 'title' | 'description' | 'target' | 'reward' | 'active' | 'startsAt' | 'endsAt'>>;

interface TaskRow {
  key: string;
  title: string;
  description: string;
  frequency: TaskFrequency;
  event: TaskEvent;
  target: number;
  reward: number;
  active: boolean;
  startsAt: Date | null;
  endsAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Task extends Omit<TaskRow, 'startsAt' | 'endsAt' | 'createdAt' | 'updatedAt'> {
  startsAt: string | null;
  endsAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface MemberTask {
  key: string;
  title: string;
  description: string;
  frequency: TaskFrequency;
  event: TaskEvent;
  reward: number;
  progress: number;
  target: number;
  status: 'in_progress' | 'completed';
  periodStart: string | null;
  periodEnd: string | null;
}

const COLUMNS = `key, title, description, frequency, event, target, reward, active, starts_at AS "startsAt",
  ends_at AS "endsAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

function present(r: TaskRow): Task {
  return { ...r, startsAt: iso(r.startsAt), endsAt: iso(r.endsAt), createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString() };
}

function checkWindow(startsAt: string | null, endsAt: string | null): void {
  if (startsAt !== null && endsAt !== null && Date.parse(endsAt) <= Date.parse(startsAt)) {
    throw new DomainError('VALIDATION_FAILED', 'endsAt must be after startsAt');
  }
}

export class TaskService {
  constructor(private readonly d: { sql: Sql; tz: string }) {}

  async create(tx: Tx, input: TaskInput, actorId: number): Promise<Task> {
    checkWindow(input.startsAt ?? null, input.endsAt ?? null);
    const [row] = await tx<TaskRow[]>`
      INSERT INTO tasks (key, title, description, frequency, event, target, reward, active, starts_at, ends_at)
      VALUES (${input.key}, ${input.title}, ${input.description ?? ''}, ${input.frequency}, ${input.event}, ${input.target},
              ${input.reward}, ${input.active ?? true}, ${input.startsAt ?? null}, ${input.endsAt ?? null})
      ON CONFLICT (key) DO NOTHING
      RETURNING ${tx.unsafe(COLUMNS)}`;
    if (!row) throw new DomainError('TASK_KEY_TAKEN', `A task with key "${input.key}" exists`);
    await this.audit(tx, actorId, 'task.create', input.key, { ...input });
    return present(row);
  }

  async update(tx: Tx, key: string, patch: TaskPatch, actorId: number): Promise<Task> {
    const [current] = await tx<TaskRow[]>`SELECT ${tx.unsafe(COLUMNS)} FROM tasks WHERE key = ${key} FOR UPDATE`;
    if (!current) throw new DomainError('TASK_NOT_FOUND', `No task with key "${key}"`);
    const startsAt = patch.startsAt !== undefined ? patch.startsAt : iso(current.startsAt);
    const endsAt = patch.endsAt !== undefined ? patch.endsAt : iso(current.endsAt);
    checkWindow(startsAt, endsAt);
    const [row] = await tx<TaskRow[]>`
      UPDATE tasks SET title = ${patch.title ?? current.title}, description = ${patch.description ?? current.description},
        target = ${patch.target ?? current.target}, reward = ${patch.reward ?? current.reward},
        active = ${patch.active ?? current.active}, starts_at = ${startsAt}, ends_at = ${endsAt}, updated_at = now()
      WHERE key = ${key}
      RETURNING ${tx.unsafe(COLUMNS)}`;
    await this.audit(tx, actorId, 'task.update', key, { ...patch });
    return present(row);
  }

  /** Removes the task and its progress; payouts already owed or paid stay (they are history). */
  async remove(tx: Tx, key: string, actorId: number): Promise<{ key: string; deleted: true }> {
    const gone = await tx`DELETE FROM tasks WHERE key = ${key} RETURNING key`;
    if (gone.length === 0) throw new DomainError('TASK_NOT_FOUND', `No task with key "${key}"`);
    await tx`DELETE FROM task_progress WHERE task_key = ${key}`;
    await this.audit(tx, actorId, 'task.delete', key, {});
    return { key, deleted: true };
  }

  async list(): Promise<Task[]> {
    const rows = await this.d.sql<TaskRow[]>`SELECT ${this.d.sql.unsafe(COLUMNS)} FROM tasks ORDER BY key`;
    return rows.map(present);
  }

  async get(key: string): Promise<Task> {
    const [row] = await this.d.sql<TaskRow[]>`SELECT ${this.d.sql.unsafe(COLUMNS)} FROM tasks WHERE key = ${key}`;
    if (!row) throw new DomainError('TASK_NOT_FOUND', `No task with key "${key}"`);
    return present(row);
  }

  /** Active tasks whose window holds `now`, each with the member's progress in the period of `now`. */
  async forMember(userId: number, now = Date.now()): Promise<MemberTask[]> {
    const { sql, tz } = this.d;
    const tasks = await sql<TaskRow[]>`
      SELECT ${sql.unsafe(COLUMNS)} FROM tasks
      WHERE active AND (starts_at IS NULL OR starts_at <= to_timestamp(${now} / 1000.0))
        AND (ends_at IS NULL OR ends_at > to_timestamp(${now} / 1000.0))
      ORDER BY key`;
    if (tasks.length === 0) return [];
    const periods = tasks.map((t) => periodOf(t.frequency, tz, now));
    const progress = await sql<Array<{ taskKey: string; progress: number; completed: boolean }>>`
      SELECT p.task_key AS "taskKey", p.progress, p.completed_at IS NOT NULL AS completed
      FROM task_progress p JOIN unnest(${tasks.map((t) => t.key)}::text[], ${periods}::text[]) AS c(task_key, period_start)
        ON p.task_key = c.task_key AND p.period_start = c.period_start
      WHERE p.user_id = ${userId}`;
    const byKey = new Map(progress.map((p) => [p.taskKey, p]));
    return tasks.map((t, i) => {
      const p = byKey.get(t.key);
      const bounds = periodBounds(t.frequency, tz, periods[i], t);
      return {
        key: t.key,
        title: t.title,
        description: t.description,
        frequency: t.frequency,
        event: t.event,
        reward: t.reward,
        progress: Math.min(p?.progress ?? 0, t.target),
        target: t.target,
        status: p?.completed ? 'completed' : 'in_progress',
        periodStart: iso(bounds.start),
        periodEnd: iso(bounds.end),
      };
    });
  }

  private async audit(tx: Tx, actorId: number, action: string, key: string, data: Record<string, unknown>): Promise<void> {
    await recordAudit(tx, { actorId, action, targetType: 'task', targetId: key, data });
  }
}
