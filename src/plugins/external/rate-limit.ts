/**
 * Rate limits in Redis (shared by every API process), keyed by member id when the request is
 * authenticated and by IP otherwise. Addresses in RATE_LIMIT_ALLOWLIST (IPs or CIDRs, comma
 * separated) bypass limits — load testers run from one address.
 */
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import { DomainError } from '../../errors/domain-error.ts';
import { isListed, parseAddressList } from '../../config/addresses.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** True for addresses in RATE_LIMIT_ALLOWLIST: exempt from every per-IP limit. */
    exemptFromIpLimits: (ip: string) => boolean;
  }
}

export default fp(
  async (app) => {
    const allow = parseAddressList(app.config.RATE_LIMIT_ALLOWLIST);
    const exempt = (ip: string) => isListed(allow, ip);
    app.decorate('exemptFromIpLimits', exempt);
    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler',
      max: app.config.RATE_LIMIT_MAX,
      timeWindow: app.config.RATE_LIMIT_WINDOW_MS,
      redis: app.redis,
      nameSpace: `${app.config.REDIS_PREFIX}:rl:`,
      skipOnError: true,
      allowList: (request: FastifyRequest) => exempt(request.ip),
      keyGenerator: (request: FastifyRequest) => (request.userId ? `u${request.userId}` : `ip${request.ip}`),
      errorResponseBuilder: (_req, ctx) =>
        new DomainError('RATE_LIMITED', `Rate limit exceeded, retry in ${Math.ceil(ctx.ttl / 1000)} s`),
    });
  },
  { name: 'rate-limit', dependencies: ['config', 'redis', 'jwt'] },
);
