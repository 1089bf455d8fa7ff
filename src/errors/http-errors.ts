/**
 * The one table from domain error codes to HTTP statuses, and the error handler that writes
 * every error as { statusCode, code, error, message, requestId }. 4xx pass their message
 * through; 5xx say "Internal Server Error" and log the cause with the request id.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, type ErrorCode } from './domain-error.ts';

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  IDEMPOTENCY_KEY_REQUIRED: 400,
  REFERRAL_CODE_INVALID: 400,
  RISK_RULE_INVALID: 400,
  POINTS_TO_USE_INVALID: 400,
  RECEIVER_REQUIRED: 400,
  TRANSFER_TO_SELF: 400,
  UNAUTHORIZED: 401,
  INVALID_CREDENTIALS: 401,
  WEBHOOK_STALE: 401,
  WEBHOOK_SIGNATURE_INVALID: 401,
  FORBIDDEN: 403,
  ACCOUNT_FROZEN: 403,
  NOT_FOUND: 404,
  RULE_NOT_FOUND: 404,
  GOODS_NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  REDEMPTION_NOT_FOUND: 404,
  DEVICE_NOT_FOUND: 404,
  PUSH_NOT_FOUND: 404,
  CAMPAIGN_NOT_FOUND: 404,
  HOLD_NOT_FOUND: 404,
  LOTTERY_NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  COUPON_NOT_FOUND: 404,
  PAYMENT_NOT_FOUND: 404,
  ORDER_NOT_FOUND: 404,
  CATEGORY_NOT_FOUND: 404,
  GOODS_CAMPAIGN_NOT_FOUND: 404,
  EXPERIMENT_NOT_FOUND: 404,
  EMAIL_TAKEN: 409,
  USERNAME_TAKEN: 409,
  DAILY_LIMIT_REACHED: 409,
  INSUFFICIENT_POINTS: 409,
  SOLD_OUT: 409,
  LIMIT_EXCEEDED: 409,
  SALE_NOT_ACTIVE: 409,
  RESERVATION_EXPIRED: 409,
  PUSH_NOT_DEAD: 409,
  ALREADY_CHECKED_IN: 409,
  HOLD_SETTLED: 409,
  HOLD_EXPIRED: 409,
  LOTTERY_NOT_ACTIVE: 409,
  LOTTERY_COOLDOWN: 409,
  TASK_KEY_TAKEN: 409,
  COUPON_NOT_ACTIVE: 409,
  PAYMENT_AMOUNT_MISMATCH: 409,
  ORDER_STATE_CONFLICT: 409,
  TRANSFER_LIMIT_REACHED: 409,
  PRICE_CHANGED: 409,
  HOT_BUCKETS_LOCKED: 409,
  GOODS_NOT_ORDERABLE: 409,
  CATEGORY_TAKEN: 409,
  CATEGORY_IN_USE: 409,
  EXPERIMENT_KEY_TAKEN: 409,
  EXPERIMENT_NOT_RUNNING: 409,
  EXPERIMENT_STATE_CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  TOO_MANY_LOGIN_ATTEMPTS: 429,
  EXPORT_BUSY: 429,
  INTERNAL: 500,
  SERVICE_UNAVAILABLE: 503,
};

/** Fastify's own 4xx errors, by their FST_ code, mapped to ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

export const ErrorBodyJsonSchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
    requestId: { type: 'string' },
  },
} as const;

function classify(err: FastifyError | DomainError | Error): { status: number; code: ErrorCode; message: string } {
  if (err instanceof DomainError) return { status: STATUS_BY_CODE[err.code], code: err.code, message: err.message };
  const fe = err as FastifyError;
  if (fe.validation) return { status: 400, code: 'VALIDATION_FAILED', message: fe.message };
  if (fe.statusCode === 429) return { status: 429, code: 'RATE_LIMITED', message: fe.message };
  if (fe.code && FASTIFY_CODES[fe.code]) {
    const code = FASTIFY_CODES[fe.code];
    return { status: STATUS_BY_CODE[code], code, message: fe.message };
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, code: 'VALIDATION_FAILED', message: fe.message };
  }
  if (isRedisUnavailable(err) || isPostgresUnavailable(err) || isTimeout(err)) {
    return { status: 503, code: 'SERVICE_UNAVAILABLE', message: 'Temporarily unavailable, retry shortly' };
  }
  return { status: 500, code: 'INTERNAL', message: 'Internal Server Error' };
}

/**
 * Redis down, or full under noeviction: the request wrote nothing and can be retried. On a
 * cluster also a failover in progress: slots down (CLUSTERDOWN), a master turned replica
 * (READONLY), a slot map being refreshed (redirections, slots cache), a node still loading.
 */
function isRedisUnavailable(err: Error): boolean {
  const m = err.message ?? '';
  return (
    m.startsWith('OOM ') ||
    m.startsWith('CLUSTERDOWN') ||
    // a slot moved (a failover): refused by the node that no longer serves it, so not executed;
    // ioredis follows a redirection itself except inside a pipeline whose replies are mixed
    m.startsWith('MOVED ') ||
    m.startsWith('ASK ') ||
    m.startsWith('TRYAGAIN') ||
    m.startsWith('READONLY') ||
    m.startsWith('LOADING') ||
    m.includes('Too many Cluster redirections') ||
    m.includes('Failed to refresh slots cache') ||
    m.includes('None of startup nodes is available') ||
    m.includes('Cluster isn\'t ready') ||
    m.includes('OOM command not allowed') ||
    m.includes('Connection is closed') ||
    // a pipeline (replica-wait.ts sends WAIT in one) cut off by its connection closing
    m.includes('Command aborted due to connection close') ||
    m.includes('max retries per request') ||
    m.includes('ECONNREFUSED') ||
    m.includes("Stream isn't writeable")
  );
}

/**
 * Postgres unreachable (down, restarting, connection cut): postgres.js connection errors, socket
 * errors, and the server's own shutdown / not-yet-up / connection-failure states (SQLSTATE 57P0x,
 * class 08). Only the Postgres-backed routes (history, catalog, admin) hit it; retryable.
 */
const PG_UNAVAILABLE = new Set([
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH',
  '57P01', '57P02', '57P03',
]);

function isPostgresUnavailable(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (PG_UNAVAILABLE.has(code) || /^08[0-9A-Z]{3}$/.test(code));
}

/**
 * A bound ran out: Postgres cancelled a statement past DATABASE_STATEMENT_TIMEOUT_MS (57014) or a
 * lock wait past DATABASE_LOCK_TIMEOUT_MS (55P03), or Redis did not answer within
 * REDIS_COMMAND_TIMEOUT_MS. Overload or contention, not a bug in the request: 503 with
 * Retry-After. A Redis command that timed out may still run later: a retry with the same
 * Idempotency-Key then replays it instead of applying it twice.
 */
function isTimeout(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return code === '57014' || code === '55P03' || err.message === 'Command timed out';
}

export function sendError(request: FastifyRequest, reply: FastifyReply, err: Error): FastifyReply {
  const { status, code, message } = classify(err);
  // a 4xx may carry what the client needs to act on it (today's check-in, seconds to wait)
  const details = err instanceof DomainError && status < 500 ? err.details : undefined;
  if (status >= 500) request.log.error({ err, code }, 'request failed');
  if (status === 503) reply.header('retry-after', '1');
  // a refusal that ends at a known time (a lottery cooldown) says when, in the body and the header
  const retryAfter = err instanceof DomainError ? err.details?.retryAfterSeconds : undefined;
  if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
  return reply.code(status).type('application/json').send({
    ...details,
    statusCode: status,
    code,
    error: STATUS_CODES[status] ?? 'Error',
    message,
    requestId: String(request.id),
    ...(typeof retryAfter === 'number' ? { retryAfterSeconds: retryAfter } : {}),
  });
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => sendError(request, reply, err));
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new DomainError('NOT_FOUND', `Route ${request.method} ${request.url} not found`)),
  );
}
