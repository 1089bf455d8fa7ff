/**
 * Redis connections. The API's connection fails fast (a request must not hang on a dead or
 * stalled Redis) and auto-pipelines concurrent requests; worker connections retry forever and
 * wait as long as a command takes, as BullMQ requires (its blocking commands would trip a timeout).
 */
import { Redis } from 'ioredis';
import { registerScripts } from './scripts.ts';

export type RedisRole = 'api' | 'worker';

export function createRedis(url: string, role: RedisRole, o: { commandTimeoutMs?: number } = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: role === 'api' ? 1 : null,
    // A stalled Redis (paused, swapping, a slow script) answers nothing and closes nothing; without
    // a per-command bound a request hangs until the client gives up. Its rejection is a 503.
    commandTimeout: role === 'api' ? o.commandTimeoutMs : undefined,
    enableAutoPipelining: role === 'api',
    enableOfflineQueue: true,
    lazyConnect: false,
  });
  // connection errors surface on the commands that hit them; ioredis reconnects on its own
  redis.on('error', () => {});
  registerScripts(redis);
  return redis;
}

/** Redis must never evict: an evicted balance or reservation would be silent data loss. */
export async function assertNoEviction(redis: Redis): Promise<void> {
  const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
  const policy = reply[1];
  if (policy !== 'noeviction') {
    throw new Error(
      `Redis maxmemory-policy is "${policy}"; Points Mall needs "noeviction" (evicting a balance or ` +
        'reservation would silently lose data). Run: redis-cli CONFIG SET maxmemory-policy noeviction',
    );
  }
}
