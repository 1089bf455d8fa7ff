/**
 * BullMQ queues the API produces to or reads (pushes, broadcasts, admin jobs, the persist queue's
 * counts): each on a copy of the API's fail-fast connection, so no request waits on a Redis that
 * is away. BullMQ's connection setup asks Redis its version once (INFO) and remembers the
 * outcome for the queue's life: under that command timeout a slow Redis at boot would leave the
 * queue failing every later call, so the API skips the check (the worker processes, whose
 * connections wait, make it). Connection errors are logged, never thrown out of the emitter.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export interface ApiQueue<T> {
  queue: Queue<T>;
  close(): Promise<void>;
}

export function apiQueue<T = unknown>(
  redis: Redis,
  name: string,
  prefix: string,
  onError: (err: Error) => void = () => {},
): ApiQueue<T> {
  const connection = redis.duplicate({ enableAutoPipelining: false, enableOfflineQueue: true, autoResendUnfulfilledCommands: true });
  const queue = new Queue<T>(name, { connection, prefix, skipWaitingForReady: true, skipVersionCheck: true });
  queue.on('error', onError);
  return {
    queue,
    async close() {
      await queue.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
