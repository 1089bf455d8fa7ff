/**
 * Postgres for the API: the durable record, never on the redemption hot path.
 */
import fp from 'fastify-plugin';
import { createDb, type Sql } from '../../db/client.ts';

declare module 'fastify' {
  interface FastifyInstance {
    sql: Sql;
  }
}

export default fp(
  async (app) => {
    const handle = createDb(app.config.DATABASE_URL, app.config.DATABASE_POOL, app.config);
    app.decorate('sql', handle.sql);
    app.addHook('onClose', async () => handle.close());
  },
  { name: 'db', dependencies: ['config'] },
);
