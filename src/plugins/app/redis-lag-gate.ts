/**
 * The API's Redis write gate (src/recovery/redis-gate.ts): closed from start until Redis is
 * verified against Postgres, closed again the moment the connection drops, and re-checked every
 * LAG_CHECK_MS. While closed — Redis restarted and not yet checked, or behind Postgres (restored
 * from an older snapshot, failed over to a lagging replica) — and while an admin rebuild runs
 * (maintenance flag), /health/ready is 503 and every mutating /v1 call is 503 SERVICE_UNAVAILABLE
 * with Retry-After; write scripts refuse on their own as well, so a request that passed the hook
 * before the connection dropped cannot write either.
 */
import fp from 'fastify-plugin';
import { gateClosed, gateWrites, RedisGate } from '../../recovery/redis-gate.ts';

declare module 'fastify' {
  interface FastifyInstance {
    redisGate: RedisGate;
    maintenance: { on: boolean; refresh(): Promise<void> };
  }
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export default fp(
  async (app) => {
    const gate = new RedisGate({ redis: app.redis, keys: app.keys, sql: app.sql, log: app.log });
    gate.watch(app.redis);
    gateWrites(app.redis, gate);
    app.decorate('redisGate', gate);
    const maintenance = {
      on: false,
      async refresh() {
        try {
          maintenance.on = (await app.redis.get(app.keys.maintenance())) !== null;
        } catch (err) {
          app.log.debug({ err }, 'maintenance flag check failed');
        }
      },
    };
    app.decorate('maintenance', maintenance);
    await Promise.all([gate.check(), maintenance.refresh()]);
    gate.start(app.config.LAG_CHECK_MS);
    const timer = setInterval(() => void maintenance.refresh(), app.config.LAG_CHECK_MS);
    timer.unref();
    app.addHook('onClose', async () => {
      gate.stop();
      clearInterval(timer);
    });
    const closed = () => (!gate.writable || maintenance.on ? gateClosed() : undefined);
    // a callback hook, not an async one: an open gate (every request but a few) costs no promise
    app.addHook('onRequest', (request, _reply, done) => {
      if (!WRITES.has(request.method) || !request.url.startsWith('/v1/')) return done();
      // closed for want of a verdict (a check that failed, a reconnect): a write asks for a fresh
      // check (one at a time, shared) instead of waiting for the next scheduled one
      if (gate.state === 'unverified') {
        gate.check().then(() => done(closed()), done);
        return;
      }
      done(closed());
    });
  },
  { name: 'redis-lag-gate', dependencies: ['config', 'redis', 'db'] },
);
