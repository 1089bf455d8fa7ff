/**
 * Referral codes: 8 Crockford base32 characters (40 random bits from the CSPRNG, 5 bits per
 * character, so every character is uniform). Typed codes are read the Crockford way: any case,
 * hyphens ignored, I and L read as 1, O as 0.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const CODE_PATTERN = /^[0-9A-HJKMNP-TV-Z]{8}$/;

export function newReferralCode(): string {
  const bits = randomBytes(5).reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  let out = '';
  for (let i = 7; i >= 0; i--) out += ALPHABET[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
}

/** The canonical code a member typed, or null when it cannot be one. */
export function normalizeCode(typed: string): string | null {
  const code = typed.trim().toUpperCase().replaceAll('-', '').replace(/[IL]/g, '1').replace(/O/g, '0');
  return CODE_PATTERN.test(code) ? code : null;
}
