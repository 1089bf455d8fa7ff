/**
 * Opaque keyset cursors for (created_at, id) ordered history pages.
 */
import { DomainError } from '../errors/domain-error.ts';

export function encodeCursor(ms: number, id: string | number): string {
  return Buffer.from(`${ms}:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { ms: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString();
  const m = /^(\d{1,15}):([A-Za-z0-9]{1,64})$/.exec(text);
  if (!m) throw new DomainError('VALIDATION_FAILED', 'cursor is not valid');
  return { ms: Number(m[1]), id: m[2] };
}
