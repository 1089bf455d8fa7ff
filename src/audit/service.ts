/**
 * Reading and trimming the audit trail: the admin query (newest first, keyset-paginated by id)
 * and the retention that deletes rows older than AUDIT_RETENTION_DAYS in bounded batches.
 */
import type { Sql } from '../db/client.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import { DomainError } from '../errors/domain-error.ts';

export interface AuditRow {
  id: number;
  opId: string | null;
  actorId: number | null;
  action: string;
  targetType: string;
  targetId: string;
  data: Record<string, unknown>;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  createdAt: string;
}

export interface AuditQuery {
  /** a user id, or `system` for rows no user made (workers, the CLI, anonymous callers) */
  actor?: string;
  action?: string;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

/** Rows one retention statement deletes: short transactions, no long lock on the table. */
export const RETENTION_BATCH = 5_000;

export class AuditService {
  constructor(private readonly sql: Sql) {}

  async list(q: AuditQuery): Promise<{ items: AuditRow[]; nextCursor: string | null }> {
    const { sql } = this;
    if (q.from && q.to && new Date(q.from) >= new Date(q.to)) throw new DomainError('VALIDATION_FAILED', '`from` must be before `to`');
    const before = q.cursor ? cursorId(q.cursor) : null;
    const actor = q.actor === undefined ? undefined : q.actor === 'system' ? null : Number(q.actor);
    const rows = await sql<Array<Omit<AuditRow, 'createdAt'> & { createdAt: Date }>>`
      SELECT id, op_id AS "opId", actor_id AS "actorId", action, target_type AS "targetType", target_id AS "targetId",
             data, ip, user_agent AS "userAgent", request_id AS "requestId", created_at AS "createdAt"
      FROM audit_log WHERE true
      ${actor === undefined ? sql`` : actor === null ? sql`AND actor_id IS NULL` : sql`AND actor_id = ${actor}`}
      ${q.action ? sql`AND action = ${q.action}` : sql``}
      ${q.from ? sql`AND created_at >= ${new Date(q.from)}` : sql``}
      ${q.to ? sql`AND created_at < ${new Date(q.to)}` : sql``}
      ${before !== null ? sql`AND id < ${before}` : sql``}
      ORDER BY id DESC LIMIT ${q.limit + 1}`;
    const page = rows.slice(0, q.limit);
    return {
      items: page.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() })),
      nextCursor: rows.length > q.limit ? encodeCursor(0, page[page.length - 1].id) : null,
    };
  }

  /**
   * Deletes rows older than `days`, oldest first, `batch` rows per statement, until none is left
   * or `maxBatches` ran (the next run goes on). Returns how many went.
   */
  async purgeOlderThan(days: number, batch = RETENTION_BATCH, maxBatches = 100): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < maxBatches; i++) {
      const gone = await this.sql`
        DELETE FROM audit_log WHERE id IN (
          SELECT id FROM audit_log WHERE created_at < now() - make_interval(days => ${days})
          ORDER BY created_at LIMIT ${batch})`;
      deleted += gone.count;
      if (gone.count < batch) break;
    }
    return deleted;
  }
}

function cursorId(cursor: string): number {
  const id = Number(decodeCursor(cursor).id);
  if (!Number.isSafeInteger(id) || id < 1) throw new DomainError('VALIDATION_FAILED', 'cursor is not valid');
  return id;
}
