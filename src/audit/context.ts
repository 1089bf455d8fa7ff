/**
 * Who did it and from where: the audit context of a request (actor, IP, user agent, request id),
 * and the scope that carries it to the audit rows a request's write produces.
 *
 * Admin writes reach the audit through a dozen domain services, each taking `(tx, actorId, …)`;
 * threading three more values through every one of them (and every future one) would make the
 * audit the business of each domain. Instead the one place every admin write passes through
 * (src/admin/idempotency.ts) runs the write inside this scope, and recordAudit reads it. Outside a
 * scope (workers, the CLI) the context is the system's: no actor, IP, user agent or request id.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface AuditContext {
  /** The user acting (an admin, or a member for their own security events); null for the system. */
  actorId: number | null;
  /** request.ip: the peer, or the X-Forwarded-For client a TRUST_PROXY peer vouches for. */
  ip: string | null;
  userAgent: string | null;
  /** The request id (the one in logs and in every error body). */
  requestId: string | null;
}

export const SYSTEM_CONTEXT: AuditContext = Object.freeze({ actorId: null, ip: null, userAgent: null, requestId: null });

/** The longest user agent kept: the header is the caller's to fill. */
const MAX_USER_AGENT = 512;

interface RequestLike {
  id: string;
  ip: string;
  userId?: number;
  headers: Record<string, string | string[] | undefined>;
}

/** The audit context of a request; the actor is the authenticated user, if any. */
export function auditContextOf(request: RequestLike): AuditContext {
  const ua = request.headers['user-agent'];
  const userAgent = (Array.isArray(ua) ? ua[0] : ua)?.slice(0, MAX_USER_AGENT) ?? null;
  return { actorId: request.userId ? request.userId : null, ip: request.ip || null, userAgent, requestId: request.id };
}

/** The context as an audited op carries it to the persist worker, which writes the op's audit row. */
export function opContext(ctx: AuditContext): { ip?: string; ua?: string; rid?: string } {
  // absent rather than null: the op is JSON that Lua decodes and encodes again
  return { ...(ctx.ip ? { ip: ctx.ip } : {}), ...(ctx.userAgent ? { ua: ctx.userAgent } : {}), ...(ctx.requestId ? { rid: ctx.requestId } : {}) };
}

const scope = new AsyncLocalStorage<AuditContext>();

/** Runs fn with ctx as the context of every audit row it records. */
export function withAuditContext<T>(ctx: AuditContext, fn: () => Promise<T>): Promise<T> {
  return scope.run(ctx, fn);
}

/** The context of the scope this runs in; the system's outside any. */
export function currentAuditContext(): AuditContext {
  return scope.getStore() ?? SYSTEM_CONTEXT;
}
