/**
 * The transfer service for the API (app.transfers), over the services plugin's points service.
 */
import fp from 'fastify-plugin';
import type { Deps } from '../deps.ts';
import { TransferService } from './service.ts';

declare module 'fastify' {
  interface FastifyInstance {
    transfers: TransferService;
  }
}

export default fp(
  async (app) => {
    const deps: Deps = { redis: app.redis, keys: app.keys, sql: app.sql, env: app.config };
    app.decorate('transfers', new TransferService(deps, app.points, app.engagement, app.log));
  },
  { name: 'transfers', dependencies: ['config', 'redis', 'db', 'services'] },
);
