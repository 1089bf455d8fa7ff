/**
 * npm run rebuild: reconstructs Redis from Postgres after Redis was lost. Run it with the API
 * stopped; workers may stay up (they only see an empty outbox). A progress bar on stderr when it
 * is a terminal (members, then the remaining stages); the summary line on stdout.
 */
import { loadEnv } from '../config/env.ts';
import { createDb } from '../db/client.ts';
import { createRedis } from '../redis/client.ts';
import { createKeys } from '../redis/keys.ts';
import { rebuildFromPostgres } from '../recovery/rebuild.ts';
import { checkPostgres, checkRedis, oneLineErrors } from './preflight.ts';
import { progressBar } from './progress.ts';

await oneLineErrors(async () => {
  const env = loadEnv();
  await checkRedis(env);
  await checkPostgres(env);
  const db = createDb(env.DATABASE_URL, 2, env);
  const redis = createRedis(env, 'worker');
  try {
    const keys = createKeys({ prefix: env.REDIS_PREFIX, partitions: env.PARTITIONS, cluster: Boolean(env.REDIS_CLUSTER_NODES) });
    const bar = progressBar('rebuild');
    const r = await rebuildFromPostgres(db.sql, redis, keys, {
      idempotencyTtlSeconds: env.IDEMPOTENCY_TTL_SECONDS,
      timeZone: env.BUSINESS_TIMEZONE,
      onProgress: (p) => bar.update(p.done, p.total, p.stage.padEnd(12)),
    }).finally(() => bar.stop());
    console.log(
      `rebuilt ${r.members} members (${r.lots} lots), ${r.goods} goods, ${r.lotteries} lotteries ` +
        `(${r.drawStates} member draw states), ${r.pendingTransfers} transfers to credit ` +
        `(${r.transferDays} senders' daily totals), ${r.opRecords} op records, ` +
        `${r.boardEntries} leaderboard entries in ${r.ms} ms`,
    );
  } finally {
    redis.disconnect();
    await db.close();
  }
});
