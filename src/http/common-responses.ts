/**
 * The error statuses a route can answer whatever its own handler does, added to every documented
 * route's response schema (so the OpenAPI document lists them, with the shared error body):
 * - 500 INTERNAL: any route, on a bug.
 * - 429 RATE_LIMITED: any route under the global rate limit (not those with `rateLimit: false`).
 * - 503 SERVICE_UNAVAILABLE: any /v1 route, when Redis or Postgres is down or past its timeout.
 * - 400 VALIDATION_FAILED: any route with a body, query or params schema, and any route that
 *   accepts a body (a malformed JSON body); 413 PAYLOAD_TOO_LARGE and 415 UNSUPPORTED_MEDIA_TYPE on
 *   routes that accept a body (src/errors/http-errors.ts maps Fastify's parser errors to them).
 * A status the route already documents keeps its own schema (an error that carries more fields).
 * The added ones are the shared error body open to more fields: responses are serialized from
 * their schema, and a closed one would strip what an error carries (EARN_BURST's 429 says
 * retryAfterSeconds).
 */
import { Type } from '@sinclair/typebox';
import type { RouteOptions } from 'fastify';
import { ErrorSchema } from './schemas.ts';

export const CommonErrorSchema = Type.Object(
  {
    ...ErrorSchema.properties,
    retryAfterSeconds: Type.Optional(Type.Integer({ minimum: 1, description: 'When the refusal ends (also in Retry-After)' })),
  },
  { additionalProperties: true, description: 'The shared error body; some errors carry more fields' },
);

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The statuses `route` can answer beyond its own, in ascending order. */
export function commonStatuses(route: Pick<RouteOptions, 'method' | 'url' | 'schema' | 'config'>): number[] {
  const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
  const acceptsBody = methods.some((m) => WITH_BODY.has(m));
  const schema = (route.schema ?? {}) as Record<string, unknown>;
  const config = (route.config ?? {}) as { rateLimit?: unknown };
  const out = new Set<number>([500]);
  if (config.rateLimit !== false) out.add(429);
  if (route.url.startsWith('/v1/')) out.add(503);
  if (acceptsBody || schema.body || schema.querystring || schema.params) out.add(400);
  if (acceptsBody) {
    out.add(413);
    out.add(415);
  }
  return [...out].sort((a, b) => a - b);
}

/** onRoute hook: documents the common statuses on every route the OpenAPI document shows. */
export function addCommonResponses(route: RouteOptions): void {
  const schema = route.schema as (Record<string, unknown> & { hide?: boolean; response?: Record<string, unknown> }) | undefined;
  if (!schema || schema.hide) return;
  const response = { ...(schema.response ?? {}) };
  for (const status of commonStatuses(route)) {
    if (!(status in response) && !(String(status) in response)) response[status] = CommonErrorSchema;
  }
  route.schema = { ...schema, response };
}
