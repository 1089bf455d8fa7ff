/**
 * Idempotency keys: op id = f(member, key), so a retry lands on the same op record; the request
 * hash (route + canonical body) tells a replay from a key reused for another request.
 */
import { createHash } from 'node:crypto';
import { DomainError } from '../errors/domain-error.ts';

const KEY_PATTERN = /^[A-Za-z0-9_\-:.]{1,128}$/;

export function requireIdempotencyKey(header: string | string[] | undefined): string {
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || key === '') {
    throw new DomainError('IDEMPOTENCY_KEY_REQUIRED', 'The Idempotency-Key header is required for this request');
  }
  if (!KEY_PATTERN.test(key)) {
    throw new DomainError('VALIDATION_FAILED', 'Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 _ - : .');
  }
  return key;
}

export function opIdFor(userId: number, key: string): string {
  return createHash('sha256').update(`${userId}\u0000${key}`).digest('hex').slice(0, 32);
}

export function requestHash(route: string, body: Record<string, unknown>): string {
  const canonical = Object.keys(body)
    .sort()
    .map((k) => `${k}=${JSON.stringify(body[k])}`)
    .join('&');
  return createHash('sha256').update(`${route}\n${canonical}`).digest('hex').slice(0, 16);
}
