/**
 * Start-up checks shared by the start and migrate commands: Redis and Postgres answer, and Redis
 * will not evict. Each failure is one line that says what to do.
 */
import { Cluster, Redis } from 'ioredis';
import postgres from 'postgres';
import { parseClusterNodes } from '../config/addresses.ts';
import { assertRedisSettings, type RedisClient } from '../redis/client.ts';
import type { Env } from '../config/env.ts';

const HINT = 'start it, or run `docker compose up -d postgres redis` (see docker-compose.yml)';

export class PreflightError extends Error {}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

export async function checkRedis(env: Env): Promise<void> {
  const cluster = env.REDIS_CLUSTER_NODES;
  const redis: RedisClient = cluster
    ? new Cluster(parseClusterNodes(cluster), {
        lazyConnect: true,
        clusterRetryStrategy: () => null,
        redisOptions: { maxRetriesPerRequest: 0, connectTimeout: 2000 },
      })
    : new Redis(env.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch {
    redis.disconnect();
    if (cluster && (await clusterDisabled(cluster))) {
      throw new PreflightError(`REDIS_CLUSTER_NODES names ${cluster}, but that Redis runs without cluster support: unset REDIS_CLUSTER_NODES to use REDIS_URL, or point it at a cluster`);
    }
    const where = cluster ? `the Redis Cluster at ${cluster} (REDIS_CLUSTER_NODES)` : redact(env.REDIS_URL);
    throw new PreflightError(`Redis is not reachable at ${where}: ${HINT}`);
  }
  try {
    await assertRedisSettings(redis);
  } catch (err) {
    throw new PreflightError((err as Error).message);
  } finally {
    redis.disconnect();
  }
}

/** Whether the first node REDIS_CLUSTER_NODES names answers, as a Redis with cluster support off. */
async function clusterDisabled(spec: string): Promise<boolean> {
  const [first] = parseClusterNodes(spec);
  const probe = new Redis({ ...first, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return /^cluster_enabled:0/m.test(await probe.info('cluster'));
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export async function checkPostgres(env: Env): Promise<void> {
  const admin = new URL(env.DATABASE_URL);
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
  } catch {
    throw new PreflightError(`Postgres is not reachable at ${redact(env.DATABASE_URL)}: ${HINT}`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Runs fn; a PreflightError or EnvError becomes one line on stderr and exit code 1. */
export async function oneLineErrors(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const e = err as Error;
    if (e instanceof PreflightError || e.name === 'EnvError' || e.message.startsWith('invalid environment')) {
      console.error(`points-mall: ${e.message}`);
      process.exit(1);
    }
    throw err;
  }
}
