/**
 * The optional bearer token of /metrics (METRICS_TOKEN), for the API and the workers' endpoint.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when no token is configured, or the Authorization header carries exactly it. */
export function metricsAuthorized(header: string | undefined, token: string | undefined): boolean {
  if (!token) return true;
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  // compared as digests: equal lengths, so the comparison leaks neither content nor length
  return m !== null && timingSafeEqual(digest(m[1]), digest(token));
}
