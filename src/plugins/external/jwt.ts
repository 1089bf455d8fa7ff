/**
 * JWT (HS256 only, algorithms pinned) and the authenticate / requireAdmin hooks. Verification is
 * local: no database on the hot path.
 */
import fp from 'fastify-plugin';
import jwt from '@fastify/jwt';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../../errors/domain-error.ts';
import { VerifiedTokens } from '../../auth/verified-tokens.ts';

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
      // verified tokens are cached below (src/auth/verified-tokens.ts), not by fast-jwt
      verify: { algorithms: ['HS256'] },
    });
    // a flash sale's members re-present the same token every request
    const verified = new VerifiedTokens<TokenClaims & { exp?: number; nbf?: number }>(100_000);
    app.decorateRequest('userId', 0);
    const authenticate = async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      if (!header) throw new DomainError('UNAUTHORIZED', 'Missing bearer token');
      // the plugin's global verifier (HS256 pinned, expiry checked), called directly:
      // request.jwtVerify() decodes the token and merges options on every request first
      const m = BEARER.exec(header);
      if (!m) throw new DomainError('UNAUTHORIZED', 'Invalid or expired token');
      const token = m[1];
      let claims = verified.get(token);
      if (!claims) {
        try {
          claims = app.jwt.verify<TokenClaims & { exp?: number; nbf?: number }>(token);
        } catch {
          throw new DomainError('UNAUTHORIZED', 'Invalid or expired token');
        }
        verified.remember(token, claims);
      }
      request.user = claims;
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
