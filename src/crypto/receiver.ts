/**
 * Receiver info (name, phone, address) at rest: AES-256-GCM, a random 96-bit nonce per value, the
 * order id as associated data, so an envelope copied onto another order does not open there.
 *
 * Envelope (text, base64url parts): v1.<kid>.<nonce>.<ciphertext>.<tag>
 *   v1          the format; kid the key that sealed it (src/crypto/keyring.ts);
 *   nonce       12 random bytes; tag the 16-byte GCM tag;
 *   associated data: "v1.<kid>.<orderId>" (the header is bound too: a changed kid or version fails).
 * Opening fails — EnvelopeError, whose message never holds the value or the envelope — for a
 * malformed envelope, a key id not in ENCRYPTION_KEYS, or any change to nonce, ciphertext, tag,
 * header or order id.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Keyring } from './keyring.ts';
import { KID_PATTERN } from './keyring.ts';

const VERSION = 'v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const PART = /^[A-Za-z0-9_-]*$/;

export type EnvelopeProblem = 'malformed' | 'unknown_key' | 'authentication_failed';

export class EnvelopeError extends Error {
  constructor(readonly problem: EnvelopeProblem, detail: string) {
    super(`receiver info could not be opened: ${detail}`);
    this.name = 'EnvelopeError';
  }
}

export interface ReceiverInfo {
  name: string;
  phone: string;
  address: string;
}

export class ReceiverCipher {
  constructor(private readonly keys: Keyring) {}

  /** The key id new envelopes carry. */
  get currentKid(): string {
    return this.keys.current.kid;
  }

  encrypt(value: string, orderId: string | number | bigint): string {
    if (typeof value !== 'string') throw new TypeError('receiver info to encrypt must be a string');
    const { kid, key } = this.keys.current;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(kid, orderId));
    const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return [VERSION, kid, b64(nonce), b64(ciphertext), b64(cipher.getAuthTag())].join('.');
  }

  decrypt(envelope: string, orderId: string | number | bigint): string {
    const { kid, nonce, ciphertext, tag } = parse(envelope);
    const k = this.keys.byKid.get(kid);
    if (!k) throw new EnvelopeError('unknown_key', `key id "${kid}" is not in ENCRYPTION_KEYS`);
    const decipher = createDecipheriv('aes-256-gcm', k.key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(kid, orderId));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new EnvelopeError('authentication_failed', 'it was altered, or belongs to another order');
    }
  }

  /** Whether an envelope is sealed with the current key (rotation leaves those alone). */
  isCurrent(envelope: string): boolean {
    return envelope.startsWith(`${VERSION}.${this.keys.current.kid}.`);
  }

  encryptReceiver(r: ReceiverInfo, orderId: string | number | bigint): ReceiverInfo {
    return { name: this.encrypt(r.name, orderId), phone: this.encrypt(r.phone, orderId), address: this.encrypt(r.address, orderId) };
  }

  decryptReceiver(r: ReceiverInfo, orderId: string | number | bigint): ReceiverInfo {
    return { name: this.decrypt(r.name, orderId), phone: this.decrypt(r.phone, orderId), address: this.decrypt(r.address, orderId) };
  }
}

/** The phone as lists show it: the first 3 and last 4 digits (13812345678 → 138****5678); short numbers keep 2. */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/[\s().-]/g, '');
  if (digits.length >= 8) return `${digits.slice(0, 3)}****${digits.slice(-4)}`;
  if (digits.length <= 2) return '*'.repeat(digits.length);
  return `${'*'.repeat(digits.length - 2)}${digits.slice(-2)}`;
}

function aad(kid: string, orderId: string | number | bigint): Buffer {
  const id = String(orderId);
  if (id === '') throw new TypeError('receiver info needs the order id it belongs to');
  return Buffer.from(`${VERSION}.${kid}.${id}`, 'utf8');
}

function parse(envelope: string): { kid: string; nonce: Buffer; ciphertext: Buffer; tag: Buffer } {
  const parts = typeof envelope === 'string' ? envelope.split('.') : [];
  if (parts.length !== 5 || parts[0] !== VERSION || !KID_PATTERN.test(parts[1]) || !parts.slice(2).every((p) => PART.test(p))) {
    throw new EnvelopeError('malformed', `not a ${VERSION} envelope`);
  }
  const [nonce, ciphertext, tag] = parts.slice(2).map((p) => Buffer.from(p, 'base64url'));
  // one spelling per envelope: base64url whose unused bits are set is refused, not read as the same bytes
  if ([nonce, ciphertext, tag].some((b, i) => b64(b) !== parts[2 + i])) throw new EnvelopeError('malformed', 'not canonical base64url');
  if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) throw new EnvelopeError('malformed', 'nonce or tag of the wrong length');
  return { kid: parts[1], nonce, ciphertext, tag };
}

const b64 = (b: Buffer) => b.toString('base64url');
