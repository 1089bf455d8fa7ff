/**
 * Replicated acknowledgements (REDIS_WAIT_REPLICAS > 0): every write script is followed by
 * `WAIT <replicas> <timeout>` on the connection that ran it, and its answer is released only once
 * that many replicas hold the write. A failover to such a replica then loses nothing that was
 * acknowledged. WAIT covers every earlier write of its connection, so it must go to the node that
 * ran the script: it is sent in a pipeline with a read of the script's first key, which ioredis
 * routes to the node serving that key's slot (a single Redis: the one connection).
 *
 * A WAIT that times out short of its replicas turns the answer into a 503: the write happened on
 * the master but is not durable yet, so it is not acknowledged. The client retries with its
 * Idempotency-Key; the retry replays the stored result and waits again, so it is acknowledged
 * exactly when it has reached the replicas.
 */
import { DomainError } from '../errors/domain-error.ts';
import type { RedisClient } from './client.ts';
import { VARIADIC_COMMANDS, WRITE_COMMANDS } from './scripts.ts';

export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

/** Waits for `replicas` replicas to hold every write sent so far on the node serving `key`. */
export async function waitForReplicas(redis: RedisClient, key: string, w: ReplicaWait): Promise<void> {
  const replies = await redis.pipeline().exists(key).wait(w.replicas, w.timeoutMs).exec();
  const [err, acked] = replies?.[1] ?? [new Error('no reply to WAIT'), 0];
  if (err) throw err;
  if (Number(acked) < w.replicas) {
    throw new DomainError(
      'SERVICE_UNAVAILABLE',
      `The write reached ${Number(acked)} of ${w.replicas} Redis replica(s) within ${w.timeoutMs} ms; retry with the same Idempotency-Key`,
    );
  }
}

/** Wraps every write script of this connection so it resolves only after WAIT (see above). */
export function replicateWrites<R extends RedisClient>(redis: R, w: ReplicaWait): R {
  const target = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of WRITE_COMMANDS) {
    const original = target[name];
    if (typeof original !== 'function') continue;
    const firstKey = VARIADIC_COMMANDS.has(name) ? 1 : 0;
    target[name] = function (this: unknown, ...args: unknown[]) {
      // ioredis copies these methods onto the pipelines it builds: a pipeline runs the original
      if (this !== redis) return original.apply(this, args);
      return (original.apply(this, args) as Promise<unknown>).then(async (reply) => {
        await waitForReplicas(redis, String(args[firstKey]), w);
        return reply;
      });
    };
  }
  return redis;
}
