/**
 * Who may open the operator pages a browser navigates to (the queue dashboard): an admin's bearer
 * token, or the same JWT in the HttpOnly console cookie that POST /v1/auth/console-session sets
 * (a browser sends no Authorization header when it follows a link). Either way the token's
 * signature, expiry and admin role are checked on every request.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainError } from '../errors/domain-error.ts';

export const CONSOLE_COOKIE = 'pm_console';
/** The cookie goes only to the pages that accept it. */
export const CONSOLE_COOKIE_PATH = '/admin/queues';

/** The value of one cookie from a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Throws UNAUTHORIZED (no valid token) or FORBIDDEN (not an admin); sets request.userId. */
export async function requireAdminOrConsoleCookie(app: FastifyInstance, request: FastifyRequest): Promise<void> {
  if (request.headers.authorization) return app.requireAdmin(request, undefined as never);
  const token = cookieValue(request.headers.cookie, CONSOLE_COOKIE);
  if (!token) throw new DomainError('UNAUTHORIZED', 'Sign in to the console (/console) or send an admin bearer token');
  let claims: { sub: string; role: string };
  try {
    claims = app.jwt.verify(token);
  } catch {
    throw new DomainError('UNAUTHORIZED', 'Invalid or expired console session');
  }
  const id = Number(claims.sub);
  if (!Number.isSafeInteger(id) || id <= 0) throw new DomainError('UNAUTHORIZED', 'Invalid token subject');
  if (claims.role !== 'admin') throw new DomainError('FORBIDDEN', 'Admin role required');
  request.userId = id;
}
