/**
 * Deletes every key under a prefix (SCAN + UNLINK, in pages): for tests, benches and lifecycle
 * tools that own a prefix. Never used on a live deployment's prefix.
 */
import type { Redis } from 'ioredis';

export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
    cursor = next;
    if (found.length > 0) await redis.unlink(...found);
  } while (cursor !== '0');
}
