/**
 * The lottery service for the API (app.lottery), over the services plugin's points service.
 */
import fp from 'fastify-plugin';
import type { Deps } from '../deps.ts';
import { LotteryService } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    lottery: LotteryService;
  }
}

export default fp(
  async (app) => {
    const deps: Deps = { redis: app.redis, keys: app.keys, sql: app.sql, env: app.config };
    app.decorate('lottery', new LotteryService(deps, app.points));
  },
  { name: 'lottery', dependencies: ['config', 'redis', 'db', 'services'] },
);
