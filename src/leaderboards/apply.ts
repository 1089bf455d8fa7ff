/**
 * Feeds earn ops into the period boards, once per op id (the leaderboard script dedupes), so the
 * relay can apply a batch again after a crash without double counting.
 */
import type { Redis } from 'ioredis';
import { periodBuckets, type Keys } from '../redis/keys.ts';
import type { Op } from '../points/op.ts';

const DAY_S = 86_400;

/** Rule earns count; admin grants and spends do not. */
export function countsOnBoards(op: Op): boolean {
  return op.kind === 'earn' && op.bizType !== 'grant' && op.delta > 0;
}

export async function applyToBoards(redis: Redis, keys: Keys, ops: Op[]): Promise<number> {
  const pending = ops.filter(countsOnBoards).map((op) => {
    const b = periodBuckets(op.at);
    return redis.pmLeaderboard(
      keys.board('daily', b.daily),
      keys.board('weekly', b.weekly),
      keys.board('monthly', b.monthly),
      keys.board('all', b.all),
      keys.boardSeen(op.opId),
      op.userId,
      op.delta,
      2 * DAY_S,
      8 * DAY_S,
      32 * DAY_S,
      32 * DAY_S,
    );
  });
  const results = await Promise.all(pending);
  return results.reduce((a, b) => a + Number(b), 0);
}
