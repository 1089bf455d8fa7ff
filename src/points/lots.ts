/**
 * A member's live lots (expiry after `now`) read in bounded pages, earliest expiry first, and the
 * opaque cursor that resumes a listing. Read from TypeScript, not by a script: a listing needs no
 * atomicity, and a lot spent between the two reads of a page is left out.
 */
import { DomainError } from '../errors/domain-error.ts';
import type { RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import { zsetPageAfter, type ZPosition } from '../redis/zset-page.ts';
import type { Lot } from './service.ts';

export interface LotsPage {
  lots: Lot[];
  /** Where the next page starts; null on the last page. */
  next: ZPosition | null;
}

export async function liveLotsPage(
  redis: RedisClient,
  keys: Keys,
  userId: number,
  o: { now: number; until?: number; after: ZPosition | null; limit: number },
): Promise<LotsPage> {
  const positions = await zsetPageAfter(redis, keys.lotsByExpiry(userId), {
    min: o.now,
    max: o.until ?? '+inf',
    after: o.after,
    count: o.limit + 1,
  });
  const page = positions.slice(0, o.limit);
  if (page.length === 0) return { lots: [], next: null };
  const remaining = await redis.hmget(keys.lotRemaining(userId), ...page.map((p) => p.member));
  const lots: Lot[] = [];
  for (const [i, p] of page.entries()) {
    const left = Number(remaining[i] ?? 0);
    if (left > 0) lots.push({ id: p.member, remaining: left, expiresAt: new Date(p.score).toISOString() });
  }
  return { lots, next: positions.length > o.limit ? page[page.length - 1] : null };
}

export function encodeLotCursor(p: ZPosition): string {
  return Buffer.from(`${p.score}:${p.member}`).toString('base64url');
}

export function decodeLotCursor(cursor: string): ZPosition {
  const m = /^(\d{1,15}):([\x21-\x7e]{1,128})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new DomainError('VALIDATION_FAILED', 'cursor is not valid');
  return { score: Number(m[1]), member: m[2] };
}
