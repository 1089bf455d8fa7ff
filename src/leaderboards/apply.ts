/**
 * Feeds earn ops into the period boards, once per outbox entry, so a relay can apply a batch again
 * after a crash (or two relays can hold the same entry in turn) without double counting.
 *
 * The dedupe state is bounded by design: each partition's applied set ({lb}:applied:<p>) records
 * the stream ids of entries put on the boards, and forgetSettled() drops every id the relay group
 * has settled — below its oldest pending entry, or up to its last delivered entry when nothing is
 * pending. A settled entry was acknowledged (and deleted) and is never delivered again, so
 * forgetting it cannot let it count twice; the sets hold only the entries in flight.
 */
import type { RedisClient } from '../redis/client.ts';
import { BOARD_TTL_S, periodBuckets, type Keys } from '../redis/keys.ts';
import type { Op } from '../points/op.ts';
import { RELAY_GROUP } from '../queues.ts';


/**
 * Credits that are not earned by the member's activity stay off the boards: an operator's grant,
 * a lottery prize (points bought with points), points coming back (refunds) or handed over
 * (transfers). The rebuild uses the same list.
 */
export const OFF_BOARD_BIZ_TYPES = ['grant', 'lottery_prize', 'refund', 'transfer_in'] as const;

/** Earns count, but for the credits above; spends do not. */
export function countsOnBoards(op: Op): boolean {
  return op.kind === 'earn' && op.delta > 0 && !(OFF_BOARD_BIZ_TYPES as readonly string[]).includes(op.bizType);
}

/** Most ops in one leaderboard call (ARGV stays a few thousand entries). */
const OPS_PER_CALL = 500;

/**
 * Applies the ops read from one partition's outbox (each carrying its stream id); returns how many
 * counted. One script call per set of boards the ops fall on (a pass normally spans one day, so
 * one call), at most OPS_PER_CALL ops each.
 */
export async function applyToBoards(redis: RedisClient, keys: Keys, partition: number, ops: Op[], timeZone = 'UTC'): Promise<number> {
  const applied = keys.boardApplied(partition);
  const groups = new Map<string, { boards: string[]; args: Array<string | number> }>();
  for (const op of ops) {
    if (!countsOnBoards(op)) continue;
    if (!op.sid) throw new Error(`op ${op.opId} has no outbox stream id: boards dedupe by it`);
    const b = periodBuckets(op.at, timeZone);
    const id = `${b.daily}|${b.weekly}|${b.monthly}|${b.all}`;
    let g = groups.get(id);
    if (!g) {
      g = { boards: [keys.board('daily', b.daily), keys.board('weekly', b.weekly), keys.board('monthly', b.monthly), keys.board('all', b.all)], args: [] };
      groups.set(id, g);
    }
    g.args.push(op.userId, op.delta, op.sid);
  }
  const calls: Array<Promise<number>> = [];
  for (const g of groups.values()) {
    for (let i = 0; i < g.args.length; i += OPS_PER_CALL * 3) {
      calls.push(
        redis.pmLeaderboard(
          ...g.boards, applied,
          BOARD_TTL_S.daily, BOARD_TTL_S.weekly, BOARD_TTL_S.monthly,
          ...g.args.slice(i, i + OPS_PER_CALL * 3),
        ),
      );
    }
  }
  const results = await Promise.all(calls);
  return results.reduce((a, b) => a + Number(b), 0);
}

/**
 * Drops from the partitions' applied sets every entry the relay group has settled. Call it after
 * acknowledging. The bound is read in one step from the stream; entries delivered after that
 * read are above it, so the removal may run later without racing them.
 */
export async function forgetSettled(redis: RedisClient, keys: Keys, partitions: number[]): Promise<void> {
  await Promise.all(
    partitions.map(async (p) => {
      const bound = await settledBound(redis, keys.outbox(p));
      if (bound) await forgetBelow(redis, keys.boardApplied(p), bound);
    }),
  );
}

interface Bound {
  id: string;
  /** true: the bound entry itself is settled too. */
  inclusive: boolean;
}

async function settledBound(redis: RedisClient, stream: string): Promise<Bound | null> {
  const replies = await redis.multi().xpending(stream, RELAY_GROUP).xinfo('GROUPS', stream).exec();
  if (!replies) return null;
  for (const [err] of replies) if (err) throw err;
  const [count, oldest] = replies[0][1] as [number, string | null];
  if (Number(count) > 0 && oldest) return { id: oldest, inclusive: false };
  for (const group of replies[1][1] as string[][]) {
    const info = new Map<string, string>();
    for (let i = 0; i + 1 < group.length; i += 2) info.set(String(group[i]), String(group[i + 1]));
    if (info.get('name') === RELAY_GROUP) return { id: info.get('last-delivered-id') ?? '0-0', inclusive: true };
  }
  return null;
}

async function forgetBelow(redis: RedisClient, set: string, bound: Bound): Promise<void> {
  const ms = bound.id.split('-')[0];
  // ids in an older millisecond go by score; the bound's own millisecond is compared id by id
  const replies = await redis.pipeline().zremrangebyscore(set, '-inf', `(${ms}`).zrangebyscore(set, ms, ms).exec();
  if (!replies) return;
  for (const [err] of replies) if (err) throw err;
  const settled = (replies[1][1] as string[]).filter((id) => {
    const c = compareStreamIds(id, bound.id);
    return c < 0 || (c === 0 && bound.inclusive);
  });
  if (settled.length > 0) await redis.zrem(set, ...settled);
}

function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}
