/**
 * The alarm for an op Postgres would drop: an op id already in the ledger arriving with other
 * content. Redelivery of the same op (a relay or persist retry) is normal and not an alarm; the
 * same id carrying another member, amount, kind or time is — Redis applied it, the ledger's
 * ON CONFLICT (op_id) DO NOTHING would have hidden it. Recorded in op_conflicts (one row per op
 * id), logged by the persist worker, counted on /metrics.
 */
import type postgres from 'postgres';
import type { Sql, Tx } from '../db/client.ts';
import type { Op } from '../points/op.ts';

export interface OpConflict {
  opId: string;
  incoming: Op;
  existing: { userId: number; delta: number; kind: string; at: number };
}

/** Of `dupes` (ops whose insert hit an existing op_id), those whose stored row is another op. */
export async function findConflicts(tx: Tx, dupes: Op[]): Promise<OpConflict[]> {
  if (dupes.length === 0) return [];
  const rows = await tx<Array<{ opId: string; userId: number; delta: number; kind: string; at: number }>>`
    SELECT op_id AS "opId", user_id AS "userId", delta, kind,
           round(extract(epoch FROM created_at) * 1000)::bigint AS at
    FROM ledger_entries WHERE op_id = ANY(${dupes.map((o) => o.opId)}::text[])`;
  const byId = new Map(rows.map((r) => [r.opId, r]));
  const out: OpConflict[] = [];
  for (const op of dupes) {
    const e = byId.get(op.opId);
    if (!e) continue;
    if (e.userId !== op.userId || e.delta !== op.delta || e.kind !== op.kind || e.at !== op.at) {
      out.push({ opId: op.opId, incoming: op, existing: { userId: e.userId, delta: e.delta, kind: e.kind, at: e.at } });
    }
  }
  return out;
}

export async function recordConflicts(tx: Tx, conflicts: OpConflict[]): Promise<void> {
  // rare (never expected): one row at a time keeps the JSON typed as objects
  for (const c of conflicts) {
    await tx`
      INSERT INTO op_conflicts (op_id, incoming, existing)
      VALUES (${c.opId}, ${tx.json(c.incoming as unknown as postgres.JSONValue)}, ${tx.json(c.existing)})
      ON CONFLICT (op_id) DO NOTHING`;
  }
}

export async function countOpConflicts(sql: Sql): Promise<number> {
  const [{ n }] = await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM op_conflicts`;
  return n;
}
