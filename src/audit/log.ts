/**
 * The one writer of audit_log rows made one at a time: admin actions, security events and config
 * changes. Usable inside the caller's transaction, so an audited change and its row commit
 * together. (The persist worker writes the rows of audited points ops in bulk, from the ops.)
 */
import type postgres from 'postgres';
import type { Sql, Tx } from '../db/client.ts';
import { currentAuditContext, type AuditContext } from './context.ts';

export interface AuditEntry {
  /** `<area>.<verb>`, e.g. goods.create, member.freeze, security.login_failed_burst */
  action: string;
  targetType: string;
  targetId: string | number;
  data?: Record<string, unknown>;
  /** Who acted; defaults to the context's actor (null: the system or an unknown caller). */
  actorId?: number | null;
  /** The op a worker's row belongs to (unique: a redelivered job cannot write it twice). */
  opId?: string;
}

/** Writes one audit row with the context's IP, user agent and request id (the current scope's by default). */
export async function recordAudit(db: Sql | Tx, entry: AuditEntry, ctx: AuditContext = currentAuditContext()): Promise<void> {
  await auditRowIf(db, db`true`, entry, ctx);
}

type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * recordAudit's INSERT as a fragment that writes the row only when `condition` (a boolean SQL
 * fragment) holds: one branch of a statement whose other branches decide whether anything happened
 * (`EXISTS (SELECT 1 FROM done)`), so the change and its row commit in one statement.
 */
export function auditRowIf(db: Sql | Tx, condition: Fragment, entry: AuditEntry, ctx: AuditContext = currentAuditContext()): Fragment {
  const data = db`${db.json((entry.data ?? {}) as postgres.JSONValue)}::jsonb`;
  return auditInsert(db, entry, ctx, db`${String(entry.targetId)}::text`, data, db`WHERE ${condition}`);
}

/**
 * An audit row for each row of a statement's branch `source` (a CTE name), as a fragment: its
 * target id and data are SQL expressions over that row (`targetId`, `data`).
 */
export function auditRowsOf(
  db: Sql | Tx,
  source: string,
  entry: Omit<AuditEntry, 'targetId' | 'data'>,
  targetId: Fragment,
  data: Fragment,
  ctx: AuditContext = currentAuditContext(),
): Fragment {
  return auditInsert(db, entry, ctx, targetId, data, db`FROM ${db(source)}`);
}

function auditInsert(db: Sql | Tx, entry: Omit<AuditEntry, 'targetId' | 'data'>, ctx: AuditContext, targetId: Fragment, data: Fragment, tail: Fragment): Fragment {
  const actorId = entry.actorId !== undefined ? entry.actorId : ctx.actorId;
  return db`
    INSERT INTO audit_log (op_id, actor_id, action, target_type, target_id, data, ip, user_agent, request_id)
    SELECT ${entry.opId ?? null}::text, ${actorId}::bigint, ${entry.action}::text, ${entry.targetType}::text, ${targetId},
           ${data}, ${ctx.ip}::text, ${ctx.userAgent}::text, ${ctx.requestId}::text
    ${tail}`;
}
