/**
 * Rate limits in Redis (shared by every API process), keyed by member id when the request is
 * authenticated and by IP otherwise. Addresses in RATE_LIMIT_ALLOWLIST (IPs or CIDRs, comma
 * separated) bypass limits — load testers run from one address.
 */
import { BlockList, isIP } from 'node:net';
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import { DomainError } from '../../errors/domain-error.ts';

export function parseAllowList(spec: string): BlockList {
  const list = new BlockList();
  for (const raw of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [addr, bits] = raw.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : isIP(addr) === 4 ? 'ipv4' : null;
    if (!family) throw new Error(`RATE_LIMIT_ALLOWLIST: "${raw}" is not an IP or CIDR`);
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return list;
}

export function isAllowed(list: BlockList, ip: string): boolean {
  const v4mapped = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  const family = isIP(v4mapped) === 6 ? 'ipv6' : 'ipv4';
  return isIP(v4mapped) !== 0 && list.check(v4mapped, family);
}

export default fp(
  async (app) => {
    const allow = parseAllowList(app.config.RATE_LIMIT_ALLOWLIST);
    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler',
      max: app.config.RATE_LIMIT_MAX,
      timeWindow: app.config.RATE_LIMIT_WINDOW_MS,
      redis: app.redis,
      nameSpace: `${app.config.REDIS_PREFIX}:rl:`,
      skipOnError: true,
      allowList: (request: FastifyRequest) => isAllowed(allow, request.ip),
      keyGenerator: (request: FastifyRequest) => (request.userId ? `u${request.userId}` : `ip${request.ip}`),
      errorResponseBuilder: (_req, ctx) =>
        new DomainError('RATE_LIMITED', `Rate limit exceeded, retry in ${Math.ceil(ctx.ttl / 1000)} s`),
    });
  },
  { name: 'rate-limit', dependencies: ['config', 'redis', 'jwt'] },
);
