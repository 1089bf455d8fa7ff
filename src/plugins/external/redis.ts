/**
 * Redis for the API: one fail-fast, auto-pipelined connection with the Lua scripts loaded, and the
 * key layout. Refuses to start unless Redis (every master of a cluster) runs with
 * maxmemory-policy noeviction.
 */
import fp from 'fastify-plugin';
import type { RedisClient } from '../../redis/client.ts';
import { assertRedisSettings, createRedis, redisReady } from '../../redis/client.ts';
import { createKeys, type Keys } from '../../redis/keys.ts';

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient;
    keys: Keys;
  }
}

export default fp(
  async (app) => {
    const redis = createRedis(app.config, 'api', { commandTimeoutMs: app.config.REDIS_COMMAND_TIMEOUT_MS });
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
    await redisReady(redis);
    await assertRedisSettings(redis);
    app.decorate<RedisClient>('redis', redis);
    const { REDIS_PREFIX: prefix, PARTITIONS: partitions, REDIS_CLUSTER_NODES: nodes } = app.config;
    app.decorate('keys', createKeys({ prefix, partitions, cluster: Boolean(nodes) }));
  },
  { name: 'redis', dependencies: ['config'] },
);
