/**
 * GET /metrics (Prometheus text; the HTTP request histogram is fed by src/metrics/http-hook.ts).
 * The answer is this process's registry (or, with API_PROCESSES > 1, every API process's, summed
 * by the primary) followed by the shared-state metrics read once for this scrape. With
 * METRICS_TOKEN set, /metrics wants `Authorization: Bearer <token>` (401 otherwise).
 */
import fp from 'fastify-plugin';
import { DomainError } from '../errors/domain-error.ts';
import { apiQueueConnection, apiQueueOn } from '../redis/api-queue.ts';
import { ADMIN_JOBS_QUEUE, PERSIST_QUEUE } from '../queues.ts';
import { BROADCAST_QUEUE, PUSH_QUEUE } from '../push/jobs.ts';
import { clusterMetrics, inCluster, joinCluster } from './cluster.ts';
import { registry } from './registry.ts';
import { StateMetrics } from './state.ts';
import { metricsAuthorized } from './token.ts';

export default fp(
  async (app) => {
    // the queues' counts on one fail-fast connection of their own (src/redis/api-queue.ts)
    const connection = apiQueueConnection(app.redis);
    const queues = Object.fromEntries(
      [PERSIST_QUEUE, PUSH_QUEUE, BROADCAST_QUEUE, ADMIN_JOBS_QUEUE].map((name) => {
        const queue = apiQueueOn(connection, name, app.keys.queuePrefix(name));
        queue.on('error', () => {});
        return [name, queue];
      }),
    );
    app.addHook('onClose', async () => {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await connection.quit().catch(() => connection.disconnect());
    });
    const state = new StateMetrics({ redis: app.redis, keys: app.keys, sql: app.sql, gate: app.redisGate, queues });
    const clustered = app.config.API_PROCESSES > 1 && inCluster();
    if (clustered) joinCluster();

    app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true } }, async (request, reply) => {
      if (!metricsAuthorized(request.headers.authorization, app.config.METRICS_TOKEN)) {
        reply.header('www-authenticate', 'Bearer');
        throw new DomainError('UNAUTHORIZED', '/metrics wants the bearer token set in METRICS_TOKEN');
      }
      const [own, shared] = await Promise.all([clustered ? clusterMetrics() : registry.metrics(), state.metrics()]);
      return reply.type(registry.contentType).send(`${own.trimEnd()}\n\n${shared}`);
    });
  },
  { name: 'metrics', dependencies: ['config', 'redis', 'db', 'redis-lag-gate'] },
);
