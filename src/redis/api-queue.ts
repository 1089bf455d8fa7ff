/**
 * BullMQ queues the API produces to or reads (pushes, broadcasts, admin jobs, the persist queue's
 * counts): each on a copy of the API's fail-fast connection, so no request waits on a Redis that
 * is away. BullMQ's connection setup asks Redis its version once (INFO) and remembers the
 * outcome for the queue's life: under that command timeout a slow Redis at boot would leave the
 * queue failing every later call, so the API skips the check (the worker processes, whose
 * connections wait, make it). Connection errors are logged, never thrown out of the emitter.
 */
import { Queue } from 'bullmq';
import { isCluster, type RedisClient } from './client.ts';

export interface ApiQueue<T> {
  queue: Queue<T>;
  close(): Promise<void>;
}

/** The copy of the API's connection a queue (or a group of queues that share it) runs on. */
export function apiQueueConnection(redis: RedisClient): RedisClient {
  if (isCluster(redis)) {
    const redisOptions = { ...redis.options.redisOptions, autoResendUnfulfilledCommands: true };
    return redis.duplicate(undefined, { enableAutoPipelining: false, enableOfflineQueue: true, redisOptions });
  }
  return redis.duplicate({ enableAutoPipelining: false, enableOfflineQueue: true, autoResendUnfulfilledCommands: true });
}

/** A queue on `connection` with the API's options; closing the queue leaves the connection open. */
export function apiQueueOn<T = unknown>(connection: RedisClient, name: string, prefix: string): Queue<T> {
  return new Queue<T>(name, { connection, prefix, skipWaitingForReady: true, skipVersionCheck: true });
}

export function apiQueue<T = unknown>(
  redis: RedisClient,
  name: string,
  prefix: string,
  onError: (err: Error) => void = () => {},
): ApiQueue<T> {
  const connection = apiQueueConnection(redis);
  const queue = apiQueueOn<T>(connection, name, prefix);
  queue.on('error', onError);
  return {
    queue,
    async close() {
      await queue.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
