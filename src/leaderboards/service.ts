/**
 * Leaderboards: sorted sets per period in the {lb} slot, fed by the relay from earn ops
 * (src/leaderboards/apply.ts). Usernames come from Postgres, cached in process.
 */
import type { Deps } from '../deps.ts';
import { periodBuckets, type Period } from '../redis/keys.ts';

export class LeaderboardService {
  private names = new Map<number, string>();

  constructor(private readonly deps: Deps) {}

  private async boardKey(period: Period): Promise<string> {
    const [sec] = await this.deps.redis.time();
    return this.deps.keys.board(period, periodBuckets(Number(sec) * 1000, this.deps.env.BUSINESS_TIMEZONE)[period]);
  }

  /**
   * The member's rank and points on each board of a period that the last `days` business days
   * touch, newest first: one entry per day for daily, per week (Monday start) for weekly, per
   * month for monthly. A board the member is not on gives rank null and 0 points.
   */
  async history(period: Exclude<Period, 'all'>, userId: number, days: number) {
    const { redis, keys, env } = this.deps;
    const [sec] = await redis.time();
    const now = Number(sec) * 1000;
    const buckets: string[] = [];
    for (let i = 0; i < days; i++) {
      const b = periodBuckets(now - i * 86_400_000, env.BUSINESS_TIMEZONE)[period];
      if (!buckets.includes(b)) buckets.push(b);
    }
    const p = redis.pipeline();
    for (const b of buckets) p.zrevrank(keys.board(period, b), String(userId)).zscore(keys.board(period, b), String(userId)).zcard(keys.board(period, b));
    const res = ((await p.exec()) ?? []).map(([err, v]) => {
      if (err) throw err;
      return v;
    });
    return {
      period,
      items: buckets.map((bucket, i) => {
        const rank = res[i * 3] as number | null;
        return {
          bucket,
          rank: rank === null ? null : rank + 1,
          points: Number(res[i * 3 + 1] ?? 0),
          members: Number(res[i * 3 + 2]),
        };
      }),
    };
  }

  async top(period: Period, limit: number) {
    const key = await this.boardKey(period);
    const flat = await this.deps.redis.zrevrange(key, 0, limit - 1, 'WITHSCORES');
    const ids: number[] = [];
    for (let i = 0; i < flat.length; i += 2) ids.push(Number(flat[i]));
    const names = await this.usernames(ids);
    return {
      period,
      items: ids.map((userId, i) => ({
        rank: i + 1,
        userId,
        username: names.get(userId) ?? '',
        points: Number(flat[i * 2 + 1]),
      })),
    };
  }

  async me(period: Period, userId: number) {
    const key = await this.boardKey(period);
    const [rank, score, total] = await Promise.all([
      this.deps.redis.zrevrank(key, String(userId)),
      this.deps.redis.zscore(key, String(userId)),
      this.deps.redis.zcard(key),
    ]);
    if (rank === null) return { rank: null, points: 0, topPercent: null };
    return { rank: rank + 1, points: Number(score), topPercent: Math.round(((rank + 1) / total) * 10000) / 100 };
  }

  private async usernames(ids: number[]): Promise<Map<number, string>> {
    const missing = ids.filter((id) => !this.names.has(id));
    if (missing.length > 0) {
      const rows = await this.deps.sql<Array<{ id: number; username: string }>>`
        SELECT id, username FROM users WHERE id = ANY(${missing}::bigint[])`;
      if (this.names.size > 50_000) this.names.clear();
      for (const r of rows) this.names.set(r.id, r.username);
    }
    return this.names;
  }
}
