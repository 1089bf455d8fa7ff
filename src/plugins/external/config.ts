/**
 * Makes the validated config available as app.config.
 */
import fp from 'fastify-plugin';
import type { Env } from '../../config/env.ts';

declare module 'fastify' {
  interface FastifyInstance {
    config: Env;
  }
}

export default fp<{ env: Env }>(
  async (app, opts) => {
    app.decorate('config', opts.env);
  },
  { name: 'config' },
);
