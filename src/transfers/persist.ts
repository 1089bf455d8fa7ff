/**
 * The persist worker's part for transfers, run for the ops a batch inserted for the first time:
 * each transfer's row from whichever of its two ops comes first (both carry the transfer), and
 * `completed_at` from its credit op. The two ops live in two partitions and may reach Postgres in
 * either order, or in one batch.
 */
import type { Tx } from '../db/client.ts';
import type { Op } from '../points/op.ts';
import type { TransferOp } from './service.ts';

export async function upsertTransfers(tx: Tx, ops: Op[]): Promise<void> {
  const rows = new Map<string, { t: NonNullable<TransferOp['transfer']>; completedAt: number | null }>();
  for (const o of ops as TransferOp[]) {
    if (!o.transfer || (o.bizType !== 'transfer_out' && o.bizType !== 'transfer_in')) continue;
    const row = rows.get(o.transfer.id) ?? { t: o.transfer, completedAt: null };
    if (o.bizType === 'transfer_in') row.completedAt = o.at;
    rows.set(o.transfer.id, row);
  }
  if (rows.size === 0) return;
  const ids = [...rows.keys()].sort();
  const v = ids.map((id) => rows.get(id)!);
  await tx`
    INSERT INTO transfers (id, from_user_id, to_user_id, amount, note, parts, day, created_at, completed_at)
    SELECT t.id, t.from_user_id, t.to_user_id, t.amount, t.note, t.parts::jsonb, t.day, to_timestamp(t.at / 1000.0),
           CASE WHEN t.completed_at IS NULL THEN NULL ELSE to_timestamp(t.completed_at / 1000.0) END
    FROM unnest(${ids}::text[], ${v.map((r) => r.t.from)}::bigint[], ${v.map((r) => r.t.to)}::bigint[],
                ${v.map((r) => r.t.amount)}::bigint[], ${v.map((r) => r.t.note ?? null)}::text[],
                ${v.map((r) => JSON.stringify(r.t.parts))}::text[], ${v.map((r) => r.t.day)}::int[],
                ${v.map((r) => r.t.at)}::bigint[], ${v.map((r) => r.completedAt)}::bigint[])
      AS t(id, from_user_id, to_user_id, amount, note, parts, day, at, completed_at)
    ORDER BY t.id
    ON CONFLICT (id) DO UPDATE SET completed_at = COALESCE(transfers.completed_at, EXCLUDED.completed_at)`;
}
