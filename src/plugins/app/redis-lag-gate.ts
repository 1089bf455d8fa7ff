/**
 * Refuses writes while Redis is behind Postgres, or while an admin rebuild runs (maintenance
 * flag in Redis), (restored from an older snapshot, failed over to
 * a lagging replica): answering from such a Redis could spend points already spent or sell stock
 * already sold. Checked at start and every LAG_CHECK_MS; while behind, /health/ready is 503 and
 * every mutating /v1 call is 503 SERVICE_UNAVAILABLE with Retry-After, until reconcile has rolled
 * Redis forward (src/recovery/roll-forward.ts).
 */
import fp from 'fastify-plugin';
import { DomainError } from '../../errors/domain-error.ts';
import { redisLag } from '../../recovery/watermark.ts';

declare module 'fastify' {
  interface FastifyInstance {
    redisLag: { behind: boolean; maintenance: boolean; partitions: number[]; checkedAt: number; refresh(): Promise<void> };
  }
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export default fp(
  async (app) => {
    const state = {
      behind: false,
      maintenance: false,
      partitions: [] as number[],
      checkedAt: 0,
      async refresh() {
        try {
          const [lag, flag] = await Promise.all([redisLag(app.redis, app.keys, app.sql), app.redis.get(app.keys.maintenance())]);
          state.maintenance = flag !== null;
          state.partitions = lag.map((l) => l.partition);
          state.behind = lag.length > 0;
          state.checkedAt = Date.now();
          if (state.behind) app.log.warn({ lag }, 'Redis is behind Postgres: writes refused until rolled forward');
        } catch (err) {
          // Redis or Postgres unreachable: the health check reports that; keep the last verdict
          app.log.debug({ err }, 'redis lag check failed');
        }
      },
    };
    app.decorate('redisLag', state);
    await state.refresh();
    const timer = setInterval(() => void state.refresh(), app.config.LAG_CHECK_MS);
    timer.unref();
    app.addHook('onClose', async () => clearInterval(timer));
    app.addHook('onRequest', async (request) => {
      if ((state.behind || state.maintenance) && WRITES.has(request.method) && request.url.startsWith('/v1/')) {
        throw new DomainError('SERVICE_UNAVAILABLE', 'Points are being brought up to date after a Redis recovery; retry shortly');
      }
    });
  },
  { name: 'redis-lag-gate', dependencies: ['config', 'redis', 'db'] },
);
