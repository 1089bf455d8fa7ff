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
    return this.deps.keys.board(period, periodBuckets(Number(sec) * 1000)[period]);
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
