/**
 * JWT (HS256 only, algorithms pinned) and the authenticate / requireAdmin hooks. Verification is
 * local: no database on the hot path.
 */
import fp from 'fastify-plugin';
import jwt from '@fastify/jwt';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../../errors/domain-error.ts';

export interface TokenClaims {
  sub: string;
  role: 'member' | 'admin';
  username: string;
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: TokenClaims;
    user: TokenClaims;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
  interface FastifyRequest {
    userId: number;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

export default fp(
  async (app) => {
    await app.register(jwt, {
      secret: app.config.JWT_SECRET,
      sign: { algorithm: 'HS256', expiresIn: app.config.JWT_EXPIRES_IN },
      // verified tokens are cached: a flash sale's members re-present the same token every request
      verify: { algorithms: ['HS256'], cache: 100_000 },
    });
    app.decorateRequest('userId', 0);
    const authenticate = async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      if (!header) throw new DomainError('UNAUTHORIZED', 'Missing bearer token');
      // the plugin's global verifier (HS256 pinned, expiry checked, verified tokens cached), called
      // directly: request.jwtVerify() decodes the token and merges options on every request first
      const m = BEARER.exec(header);
      try {
        if (!m) throw new Error('not a bearer token');
        request.user = app.jwt.verify<TokenClaims>(m[1]);
      } catch {
        throw new DomainError('UNAUTHORIZED', 'Invalid or expired token');
      }
      const id = Number(request.user.sub);
      if (!Number.isSafeInteger(id) || id <= 0) throw new DomainError('UNAUTHORIZED', 'Invalid token subject');
      request.userId = id;
    };
    app.decorate('authenticate', authenticate);
    app.decorate('requireAdmin', async (request: FastifyRequest) => {
      await authenticate(request);
      if (request.user.role !== 'admin') throw new DomainError('FORBIDDEN', 'Admin role required');
    });
  },
  { name: 'jwt', dependencies: ['config'] },
);
