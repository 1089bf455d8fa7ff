/**
 * Operator surfaces: the admin console's files at /console (console/, a client of the public API),
 * the console session cookie that opens the queue dashboard to a browser, the dashboard itself
 * at /admin/queues (src/ops/queue-board.ts), and the sale pulse the live flash-sale panel reads.
 */
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fastifyStatic from '@fastify/static';
import { errors, IdParamsSchema } from '../http/schemas.ts';
import { CONSOLE_COOKIE, CONSOLE_COOKIE_PATH } from './admin-session.ts';
import { registerQueueBoard } from './queue-board.ts';

export const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

/** The console's pages load nothing but their own files and call nothing but this origin. */
const CONSOLE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const SessionSchema = Type.Object({
  expiresAt: Type.String({ format: 'date-time', description: "When the cookie (and the token in it) expires" }),
  queueDashboard: Type.String({ description: 'Where the cookie opens the queue dashboard' }),
});

const PulseSchema = Type.Object({
  goodsId: Type.Integer(),
  seconds: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time', description: 'The start of the second (API host clock)' }),
      accepted: Type.Integer({ description: 'Redemptions answered 201 (replays not counted)' }),
      rejected: Type.Integer({ description: 'Redemptions refused for this item: 409 (sold out, limits, price), 403, 422, 429, 503' }),
    }),
    { description: 'The last `seconds` whole seconds, oldest first; counts reach Redis within half a second' },
  ),
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  await registerQueueBoard(app);

  await app.register(async (scoped) => {
    scoped.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', CONSOLE_CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      return payload;
    });
    await scoped.register(fastifyStatic, {
      root: CONSOLE_DIR,
      prefix: '/console/',
      // the queue dashboard registers its own copy of the plugin, with the decorator
      decorateReply: false,
      index: 'index.html',
      cacheControl: false,
    });
    scoped.get('/console', { schema: { hide: true } }, (_request, reply) => reply.redirect('/console/'));
  });

  const secure = (protocol: string) => (protocol === 'https' ? '; Secure' : '');

  app.post(
    '/v1/auth/console-session',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['auth'],
        operationId: 'openConsoleSession',
        summary: "Put the caller's admin token in an HttpOnly, SameSite=Strict cookie that opens the queue dashboard (/admin/queues) in a browser",
        security: [{ bearer: [] }],
        response: { 200: SessionSchema, ...errors(401, 403, 503) },
      },
    },
    async (request, reply) => {
      const token = (request.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
      const { exp } = app.jwt.decode<{ exp?: number }>(token) ?? {};
      const expiresAtMs = (exp ?? Math.floor(Date.now() / 1000) + 3600) * 1000;
      const maxAge = Math.max(0, Math.floor((expiresAtMs - Date.now()) / 1000));
      reply.header(
        'set-cookie',
        `${CONSOLE_COOKIE}=${token}; Path=${CONSOLE_COOKIE_PATH}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure(request.protocol)}`,
      );
      return { expiresAt: new Date(expiresAtMs).toISOString(), queueDashboard: CONSOLE_COOKIE_PATH };
    },
  );

  app.delete(
    '/v1/auth/console-session',
    {
      schema: {
        tags: ['auth'],
        operationId: 'closeConsoleSession',
        summary: 'Clear the console cookie (signing out of the queue dashboard)',
        security: [],
        response: { 204: Type.Null({ description: 'Cleared (whether or not there was one)' }), ...errors(503) },
      },
    },
    async (request, reply) => {
      reply.header('set-cookie', `${CONSOLE_COOKIE}=; Path=${CONSOLE_COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict${secure(request.protocol)}`);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/admin/goods/:id/pulse',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        operationId: 'getGoodsPulse',
        summary: 'Redemptions of a goods item accepted and refused per second, over the last seconds (the live flash-sale panel)',
        security: [{ bearer: [] }],
        params: IdParamsSchema,
        querystring: Type.Object({ seconds: Type.Integer({ minimum: 1, maximum: 60, default: 10 }) }, { additionalProperties: false }),
        response: { 200: PulseSchema, ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({
      goodsId: request.params.id,
      seconds: await app.salePulse.read(request.params.id, request.query.seconds),
    }),
  );
};

export default routes;
