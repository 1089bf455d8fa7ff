/**
 * Redis connections. Connections that run write scripts ('api', 'writer') fail fast and never
 * resend a command across a reconnect: a write must not reach a restarted Redis before the write
 * gate has checked it (src/recovery/redis-gate.ts), which also sends write scripts only while the
 * connection is ready (so none waits in the offline queue). The offline queue itself stays on:
 * with it off, ioredis's auto-pipelining throws "Stream isn't writeable" out of a timer (an
 * uncaught exception) when a pipeline runs during a reconnect. The API's connection
 * auto-pipelines concurrent requests and bounds each command (a stalled Redis answers nothing and
 * closes nothing: without a bound a request hangs; the rejection is a 503). BullMQ's connections
 * ('worker') retry forever and wait as long as a command takes, as BullMQ requires.
 */
import { Redis } from 'ioredis';
import { registerScripts } from './scripts.ts';

export type RedisRole = 'api' | 'writer' | 'worker';

export function createRedis(url: string, role: RedisRole, o: { commandTimeoutMs?: number; autoPipelining?: boolean } = {}): Redis {
  const writes = role !== 'worker';
  const redis = new Redis(url, {
    maxRetriesPerRequest: writes ? 1 : null,
    // BullMQ's blocking commands would trip a timeout: only the API's commands are bounded
    commandTimeout: role === 'api' ? o.commandTimeoutMs : undefined,
    // the relay's connection too: a pass's reads of every partition go out in one write
    enableAutoPipelining: o.autoPipelining ?? role === 'api',
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: !writes,
    lazyConnect: false,
  });
  // connection errors surface on the commands that hit them; ioredis reconnects on its own
  redis.on('error', () => {});
  if (writes) redis.on('close', () => rejectUnanswered(redis));
  registerScripts(redis);
  return redis;
}

type CommandDeque = { length: number; shift(): { command: { reject(err: Error): void } } | undefined };

/**
 * ioredis keeps the commands that were in flight when a connection closed (prevCommandQueue) and,
 * with autoResendUnfulfilledCommands off, discards them at the reconnect without settling their
 * promises: a request awaiting one would hang forever. Fail them as the closed connection they
 * met instead (a 503 at the API; the client retries with its Idempotency-Key). ioredis assigns
 * the queue before it emits 'close'.
 */
function rejectUnanswered(redis: Redis): void {
  const queue = (redis as unknown as { prevCommandQueue?: CommandDeque | null }).prevCommandQueue;
  for (let item = queue?.shift(); item; item = queue?.shift()) item.command.reject(new Error('Connection is closed.'));
}

/** Resolves once the connection is ready; rejects after `timeoutMs` saying where Redis was expected. */
export function redisReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis at ${redis.options.host}:${redis.options.port} not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
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
