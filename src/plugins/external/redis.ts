/**
 * Redis for the API: one fail-fast, auto-pipelined connection with the Lua scripts loaded, and the
 * key layout. Refuses to start unless Redis runs with maxmemory-policy noeviction.
 */
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { assertNoEviction, createRedis, redisReady } from '../../redis/client.ts';
import { createKeys, type Keys } from '../../redis/keys.ts';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
    keys: Keys;
  }
}

export default fp(
  async (app) => {
    const redis = createRedis(app.config.REDIS_URL, 'api', { commandTimeoutMs: app.config.REDIS_COMMAND_TIMEOUT_MS });
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
    await redisReady(redis);
    await assertNoEviction(redis);
    app.decorate('redis', redis);
    app.decorate('keys', createKeys({ prefix: app.config.REDIS_PREFIX, partitions: app.config.PARTITIONS }));
  },
  { name: 'redis', dependencies: ['config'] },
);
