/**
 * Rebuild of the lotteries' Redis state from Postgres (part of npm run rebuild, run once the
 * outbox has drained): each lottery's settings and prizes, each limited prize's units left =
 * allocated stock − persisted wins (holds are dropped: a hold never charged gave nothing, and a
 * charged one's draw is persisted), and the members' cooldowns and daily counts from their recent
 * draws in lotteries that have either (each draw row carries the business day it counted on).
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { LOTTERY_COLUMNS, persistedWins, PRIZE_COLUMNS, writeLottery, type LotteryRow, type PrizeRow } from './store.ts';
import { slotPipeline } from '../redis/slot-pipeline.ts';

/** A member's draw state lives at least this long (as lua/lottery-draw-7.lua sets it): the daily count's day. */
const STATE_TTL_MS = 172_800_000;

export async function rebuildLotteries(sql: Sql, redis: RedisClient, keys: Keys): Promise<{ lotteries: number; drawStates: number }> {
  const rows = await sql<LotteryRow[]>`SELECT ${sql.unsafe(LOTTERY_COLUMNS)} FROM lotteries ORDER BY id`;
  const prizes = await sql<PrizeRow[]>`
    SELECT ${sql.unsafe(PRIZE_COLUMNS)} FROM lottery_prizes WHERE NOT retired ORDER BY lottery_id, position`;
  const wins = await persistedWins(sql, rows.map((r) => r.id));
  for (const row of rows) {
    await redis.del(keys.lottery(row.id), keys.lotteryStock(row.id), keys.lotteryHolds(row.id), keys.lotteryHoldDeadlines(row.id));
    const own = prizes.filter((p) => p.lotteryId === row.id);
    if (own.length === 0) continue;
    await writeLottery(redis, keys, { row, prizes: own, wins: wins.get(row.id) ?? new Map() }, false);
  }

  const recent = await sql<Array<{ userId: number; lotteryId: number; day: number; n: number; last: number; cooldownMs: number }>>`
    SELECT d.user_id AS "userId", d.lottery_id AS "lotteryId", d.day, count(*)::int AS n,
           round(extract(epoch FROM max(d.created_at)) * 1000)::bigint AS last, l.cooldown_seconds::bigint * 1000 AS "cooldownMs"
    FROM lottery_draws d JOIN lotteries l ON l.id = d.lottery_id
    WHERE (l.cooldown_seconds > 0 OR l.daily_draw_limit IS NOT NULL)
      AND d.created_at > now() - make_interval(secs => greatest(${STATE_TTL_MS / 1000}, l.cooldown_seconds))
    GROUP BY d.user_id, d.lottery_id, d.day, l.cooldown_seconds`;
  const states = new Map<string, { userId: number; lotteryId: number; day: number; n: number; last: number; cooldownMs: number }>();
  for (const r of recent) {
    const key = `${r.userId}:${r.lotteryId}`;
    const s = states.get(key);
    if (!s) states.set(key, { ...r });
    else {
      s.last = Math.max(s.last, r.last);
      if (r.day > s.day) Object.assign(s, { day: r.day, n: r.n });
    }
  }
  const now = Date.now();
  const tx = slotPipeline(redis);
  for (const s of states.values()) {
    const key = keys.drawState(s.userId, s.lotteryId);
    tx.del(key);
    tx.hset(key, 'last', s.last, 'day', s.day, 'n', s.n);
    tx.pexpire(key, Math.max(1, Math.max(s.cooldownMs, STATE_TTL_MS) - (now - s.last)));
  }
  await tx.exec();
  return { lotteries: rows.length, drawStates: states.size };
}
