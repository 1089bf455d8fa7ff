/**
 * Ids that begin with their creation time (ms) and end with CSPRNG bytes. Every index on such an
 * id takes new rows in one place — its right edge, or where "now" falls among older keys of other
 * shapes — a few hot pages, instead of at random pages all over it: on tables of millions of rows
 * random keys made each persist batch dirty pages across the whole index, and after every
 * checkpoint write each of them whole to the WAL (bench/id-order.ts measures both shapes on aged
 * tables). The price: a page split by ascending keys among older ones stays half full, so such
 * indexes grow faster than under random keys (1.17× there). The random part keeps the ids
 * unguessable and unique without coordination between processes: ids of the same millisecond
 * differ by it alone.
 */
import { poolBytes, randomHex } from './random-pool.ts';

export const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** 12 hex characters of the time (fixed width until the year 10889) + `randomBytes` bytes as hex. */
export function orderedHex(randomBytes: number, now = Date.now()): string {
  return now.toString(16).padStart(12, '0') + randomHex(randomBytes);
}

/**
 * `prefix` + 9 Crockford base32 characters of the time (45 bits: fixed width until the year 3084)
 * + `randomChars` random Crockford characters (5 bits each).
 */
export function orderedCode(prefix: string, randomChars: number, now = Date.now()): string {
  let time = '';
  for (let t = now, i = 0; i < 9; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  let out = prefix + time;
  // 256 is a multiple of 32: a byte's low 5 bits are uniform
  for (const b of poolBytes(randomChars)) out += CROCKFORD[b & 31];
  return out;
}
