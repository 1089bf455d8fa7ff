/**
 * Bounded keyset pages over a sorted set in Redis's own order (score, then member bytes), for
 * readers that must not pull a whole set in one reply (a member's lots, a partition's expiry
 * index). A page resumes after the last (score, member) it returned, so members added or removed
 * between pages neither shift nor repeat the rest, as an offset would.
 */
import type { RedisClient } from './client.ts';

export interface ZPosition {
  score: number;
  member: string;
}

/**
 * Up to `count` entries with min < score <= max that come after `after`, in order. Members are
 * ASCII (ids), so JavaScript's string order is Redis's byte order for ties on one score.
 */
export async function zsetPageAfter(
  redis: RedisClient,
  key: string,
  o: { min: number; max: number | '+inf'; after: ZPosition | null; count: number },
): Promise<ZPosition[]> {
  const resume = o.after !== null && o.after.score > o.min ? o.after : null;
  const from = resume ? String(resume.score) : `(${o.min}`;
  const out: ZPosition[] = [];
  // entries sharing the resume score and sorting up to its member were on earlier pages: skipped
  // here, they cost another round trip only when more than `count` of them share one score
  for (let offset = 0; ; offset += o.count) {
    const raw = await redis.zrangebyscore(key, from, o.max, 'WITHSCORES', 'LIMIT', offset, o.count);
    for (let i = 0; i < raw.length; i += 2) {
      const entry = { member: raw[i], score: Number(raw[i + 1]) };
      if (resume && entry.score === resume.score && entry.member <= resume.member) continue;
      out.push(entry);
      if (out.length === o.count) return out;
    }
    if (raw.length < o.count * 2) return out;
  }
}
