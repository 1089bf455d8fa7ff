/**
 * npm run persist:retry-parked [jobId ...]: gives parked persist batches (all, or the ids given)
 * a fresh set of attempts; the persist workers then write them. Prints what it retried.
 */
import { Queue } from 'bullmq';
import { loadEnv } from '../config/env.ts';
import { createRedis } from '../redis/client.ts';
import { createKeys } from '../redis/keys.ts';
import { PERSIST_QUEUE } from '../queues.ts';
import { listParked, retryParked } from '../persistence/parked.ts';
import { checkRedis, oneLineErrors } from './preflight.ts';

await oneLineErrors(async () => {
  const env = loadEnv();
  await checkRedis(env);
  const keys = createKeys({ prefix: env.REDIS_PREFIX, partitions: env.PARTITIONS, cluster: Boolean(env.REDIS_CLUSTER_NODES) });
  const connection = createRedis(env, 'worker');
  const queue = new Queue(PERSIST_QUEUE, { connection, prefix: keys.queuePrefix(PERSIST_QUEUE) });
  try {
    const ids = process.argv.slice(2);
    const parked = await listParked(queue, 1000);
    const { retried, skipped } = await retryParked(queue, ids.length > 0 ? ids : undefined);
    console.log(`parked persist batches: ${parked.length}; retried ${retried.length}${retried.length ? ` (${retried.join(', ')})` : ''}`);
    if (skipped.length > 0) console.log(`not parked (skipped): ${skipped.join(', ')}`);
  } finally {
    await queue.close();
    connection.disconnect();
  }
});
