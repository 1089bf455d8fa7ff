/**
 * Idempotency keys (Stripe's semantics): the key maps, through the member's idempotency record,
 * to the op it produced; the op id itself is fresh (its time, then 80 random bits). While the
 * record lives (IDEMPOTENCY_TTL_SECONDS) a retry replays the first answer; once it has expired,
 * the same key is a new request with a new, unrelated op id — never an id derived from (member,
 * key), which Postgres's dedupe on op id would silently drop. The request hash (route +
 * canonical body) tells a replay from a key reused for another request.
 */
import { hash as digest } from 'node:crypto';
import { orderedCode, orderedHex } from '../crypto/ordered-id.ts';
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

/**
 * Names a key's record inside its owner's slot. `scope` separates records that share an owner
 * but not a namespace (an admin's grant keys live in the target member's slot).
 */
export function keyHash(key: string, scope = ''): string {
  // crypto.hash: one call, no Hash object (the same digest as createHash, a third of its cost here)
  return digest('sha256', `${scope}\u0000${key}`, 'hex').slice(0, 32);
}

/**
 * A fresh op id: 32 hex characters, the time (12) then 80 random bits (20), so that the indexes
 * keyed by op ids (the ledger's, redemptions', lots', orders', exchange pushes') take new rows in
 * one place (src/crypto/ordered-id.ts).
 */
export function newOpId(): string {
  return orderedHex(10);
}

/**
 * A fresh exchange number: PM + 22 Crockford base32 characters, the time (9) then 65 random bits
 * (13), not derived from the op id.
 */
export function newExchangeNo(): string {
  return orderedCode('PM', 13);
}

export function requestHash(route: string, body: Record<string, unknown>): string {
  const canonical = Object.keys(body)
    .sort()
    .map((k) => `${k}=${JSON.stringify(body[k])}`)
    .join('&');
  return digest('sha256', `${route}\n${canonical}`, 'hex').slice(0, 16);
}
