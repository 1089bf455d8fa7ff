/**
 * Expiry: finds members with lots past their expiry through each partition's expiry index
 * (member -> earliest lot expiry; no scan of all members) and expires their lots with one script
 * per member. Charges never spend an expired lot, so a late run costs nothing but freshness.
 */
import type { Deps } from '../deps.ts';

export interface ExpireRunResult {
  members: number;
  points: number;
  lots: number;
  ms: number;
}

export class ExpiryService {
  constructor(private readonly deps: Pick<Deps, 'redis' | 'keys'>) {}

  /** Expires everything due at `nowMs` (Redis TIME when omitted), partition by partition. */
  async expireDue(o: { nowMs?: number; batch?: number } = {}): Promise<ExpireRunResult> {
    const { redis, keys } = this.deps;
    const started = Date.now();
    const batch = o.batch ?? 500;
    let now = o.nowMs;
    if (now === undefined) {
      const [sec, usec] = await redis.time();
      now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    }
    const total: ExpireRunResult = { members: 0, points: 0, lots: 0, ms: 0 };
    for (let p = 0; p < keys.partitions; p++) {
      for (;;) {
        const due = await redis.zrangebyscore(keys.expiryIndex(p), '-inf', now, 'LIMIT', 0, batch);
        if (due.length === 0) break;
        const replies = await Promise.all(due.map((uid) => this.expireMember(Number(uid), o.nowMs)));
        for (const [, points, lots] of replies) {
          total.points += Number(points);
          total.lots += Number(lots);
        }
        total.members += due.length;
        if (due.length < batch) break;
      }
    }
    total.ms = Date.now() - started;
    return total;
  }

  expireMember(userId: number, nowMs?: number): Promise<number[]> {
    const { redis, keys } = this.deps;
    return redis.pmExpire(
      keys.account(userId),
      keys.lotsByExpiry(userId),
      keys.lotRemaining(userId),
      keys.outboxOf(userId),
      keys.expiryIndexOf(userId),
      userId,
      nowMs ?? '',
    );
  }
}
