/**
 * Rebuild of the transfers' Redis state from Postgres (part of npm run rebuild, run once the
 * outbox has drained): the completer's pending sets — every transfer whose debit is persisted and
 * whose credit is not (with the outbox drained, a credit not persisted was never made, or was lost
 * with Redis) — and each sender's transfers of their latest business day, which the daily maximum
 * counts.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { TransferSpec } from './service.ts';
import { slotPipeline } from '../redis/slot-pipeline.ts';

/** As lua/transfer-debit-8.lua keeps a sender's day: two days covers any business day still open. */
const DAY_STATE_TTL_MS = 172_800_000;

export async function rebuildTransfers(sql: Sql, redis: RedisClient, keys: Keys): Promise<{ pendingTransfers: number; transferDays: number }> {
  const clear = slotPipeline(redis);
  for (let p = 0; p < keys.partitions; p++) clear.del(keys.transfersPending(p), keys.transfersPendingData(p));
  await clear.exec();

  const pending = await sql<Array<{ id: string; from: number; to: number; toUsername: string; amount: number; note: string | null;
                                     parts: Array<[number, number]>; day: number; at: number }>>`
    SELECT t.id, t.from_user_id AS from, t.to_user_id AS to, u.username AS "toUsername", t.amount, t.note, t.parts, t.day,
           round(extract(epoch FROM t.created_at) * 1000)::bigint AS at
    FROM transfers t JOIN users u ON u.id = t.to_user_id WHERE t.completed_at IS NULL ORDER BY t.created_at`;
  const tx = slotPipeline(redis);
  for (const r of pending) {
    const spec: TransferSpec = {
      id: r.id, from: r.from, to: r.to, toUsername: r.toUsername, amount: r.amount, parts: r.parts, at: r.at, day: r.day,
      ...(r.note !== null ? { note: r.note } : {}),
    };
    tx.zadd(keys.transfersPendingOf(r.from), r.at, r.id);
    tx.hset(keys.transfersPendingDataOf(r.from), r.id, JSON.stringify(spec));
  }

  const days = await sql<Array<{ userId: number; day: number; sent: number; last: number }>>`
    SELECT DISTINCT ON (from_user_id) from_user_id AS "userId", day, SUM(amount)::bigint AS sent,
           round(extract(epoch FROM max(created_at)) * 1000)::bigint AS last
    FROM transfers WHERE created_at > now() - make_interval(secs => ${DAY_STATE_TTL_MS / 1000})
    GROUP BY from_user_id, day ORDER BY from_user_id, day DESC`;
  const now = Date.now();
  for (const d of days) {
    tx.del(keys.transferDay(d.userId));
    tx.hset(keys.transferDay(d.userId), 'day', d.day, 'sent', d.sent);
    tx.pexpire(keys.transferDay(d.userId), Math.max(1, DAY_STATE_TTL_MS - (now - d.last)));
  }
  await tx.exec();
  return { pendingTransfers: pending.length, transferDays: days.length };
}
