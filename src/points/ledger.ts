/**
 * A member's persisted points history, newest first, keyset-paginated.
 */
import { DomainError } from '../errors/domain-error.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import type { Sql } from '../db/client.ts';

export interface LedgerItem {
  opId: string;
  kind: string;
  delta: number;
  balanceAfter: number;
  bizType: string;
  bizId: string | null;
  createdAt: string;
}

export async function listLedger(sql: Sql, userId: number, limit: number, cursor?: string) {
  const after = cursor ? decodeCursor(cursor) : null;
  if (after && !/^\d+$/.test(after.id)) return { items: [], nextCursor: null };
  // ledger ids are bigints well inside 2^53: a larger one was never issued and cannot be bound
  if (after && !Number.isSafeInteger(Number(after.id))) throw new DomainError('VALIDATION_FAILED', 'cursor is not valid');
  const rows = await sql<Array<Omit<LedgerItem, 'createdAt'> & { id: number; createdAt: Date }>>`
    SELECT id, op_id AS "opId", kind, delta, balance_after AS "balanceAfter", biz_type AS "bizType",
           biz_id AS "bizId", created_at AS "createdAt"
    FROM ledger_entries WHERE user_id = ${userId}
    ${after ? sql`AND (created_at, id) < (to_timestamp(${after.ms} / 1000.0), ${Number(after.id)})` : sql``}
    ORDER BY created_at DESC NULLS LAST, id DESC NULLS LAST LIMIT ${limit + 1}`;
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(({ id: _id, createdAt, ...r }) => ({ ...r, createdAt: createdAt.toISOString() })),
    nextCursor: rows.length > limit ? encodeCursor(last.createdAt.getTime(), last.id) : null,
  };
}
