/**
 * Operations plumbing every route shares: the sale pulse (src/ops/sale-pulse.ts), fed by an
 * onResponse hook on POST /v1/redemptions so the redemption code itself does not change.
 * Counted: 201 (accepted; a replay is not a new redemption) and refusals of a known item
 * (409 SOLD_OUT / LIMIT_EXCEEDED / …, 403, 422, 429, 503); malformed, unauthenticated and
 * unknown-goods requests (400, 401, 404) are not.
 */
import fp from 'fastify-plugin';
import type { onResponseHookHandler } from 'fastify';
import { SalePulse } from './sale-pulse.ts';
import { appendOnResponse } from '../http/route-hooks.ts';

declare module 'fastify' {
  interface FastifyInstance {
    salePulse: SalePulse;
  }
}

const NOT_COUNTED = new Set([400, 401, 404]);

export default fp(
  async (app) => {
    const pulse = new SalePulse(app.redis, app.keys);
    pulse.start();
    app.decorate('salePulse', pulse);
    app.addHook('onClose', () => pulse.stop());
    // on that one route only (declared after this plugin): no other request pays for it
    const count: onResponseHookHandler = (request, reply, done) => {
      const goodsId = (request.body as { goodsId?: unknown } | undefined)?.goodsId;
      const status = reply.statusCode;
      if (typeof goodsId === 'number' && Number.isSafeInteger(goodsId) && goodsId > 0) {
        if (status === 201) {
          if (reply.getHeader('idempotent-replayed') !== 'true') pulse.note(goodsId, true);
        } else if (status >= 400 && !NOT_COUNTED.has(status)) {
          pulse.note(goodsId, false);
        }
      }
      done();
    };
    app.addHook('onRoute', (route) => {
      if (route.url === '/v1/redemptions' && route.method === 'POST') appendOnResponse(route, count);
    });
  },
  { name: 'ops', dependencies: ['config', 'redis'] },
);
