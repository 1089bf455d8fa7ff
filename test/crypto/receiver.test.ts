/**
 * Receiver info envelopes (src/crypto/receiver.ts): AES-256-GCM round trips, a fresh nonce per
 * value, anything altered refused (ciphertext, tag, nonce, header, the order id it belongs to),
 * key ids unknown or swapped refused, errors that never carry the value; the phone mask.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseEncryptionKeys } from '../../src/crypto/keyring.ts';
import { EnvelopeError, maskPhone, ReceiverCipher } from '../../src/crypto/receiver.ts';

const k1 = `k1:${randomBytes(32).toString('base64')}`;
const k2 = `k2:${randomBytes(32).toString('base64')}`;
const cipher = new ReceiverCipher(parseEncryptionKeys(k1));
const ORDER = 'order-8f3a';
const ADDRESS = '上海市浦东新区世纪大道 100 号 12F';

/** Replaces part i (0-based) of an envelope. */
function withPart(envelope: string, i: number, f: (part: string) => string): string {
  const parts = envelope.split('.');
  parts[i] = f(parts[i]);
  return parts.join('.');
}

/** Flips one bit of a base64url part's bytes and re-encodes it. */
const flip = (part: string, byte = 0) => {
  const b = Buffer.from(part, 'base64url');
  b[byte] ^= 1;
  return b.toString('base64url');
};

function refusal(f: () => unknown): EnvelopeError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(EnvelopeError);
    return err as EnvelopeError;
  }
  throw new Error('the envelope was opened');
}

describe('envelopes', () => {
  it('round-trip any text, with the order id as associated data', () => {
    for (const value of ['Zhang San', '13812345678', ADDRESS, '', 'a'.repeat(2000)]) {
      const envelope = cipher.encrypt(value, ORDER);
      expect(envelope).toMatch(/^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{22}$/);
      expect(cipher.decrypt(envelope, ORDER)).toBe(value);
    }
    expect(cipher.decrypt(cipher.encrypt('x', 42), '42')).toBe('x');
  });

  it('seal the same value differently each time (a random 96-bit nonce per value)', () => {
    const envelopes = Array.from({ length: 200 }, () => cipher.encrypt('13812345678', ORDER));
    expect(new Set(envelopes).size).toBe(200);
    expect(new Set(envelopes.map((e) => e.split('.')[2])).size).toBe(200);
    expect(Buffer.from(envelopes[0].split('.')[2], 'base64url')).toHaveLength(12);
  });

  it('refuse an altered ciphertext, tag or nonce, another order id, and a changed header', () => {
    const envelope = cipher.encrypt(ADDRESS, ORDER);
    expect(refusal(() => cipher.decrypt(withPart(envelope, 3, (p) => flip(p, 5)), ORDER)).problem).toBe('authentication_failed');
    expect(refusal(() => cipher.decrypt(withPart(envelope, 4, flip), ORDER)).problem).toBe('authentication_failed');
    expect(refusal(() => cipher.decrypt(withPart(envelope, 2, flip), ORDER)).problem).toBe('authentication_failed');
    expect(refusal(() => cipher.decrypt(envelope, 'order-8f3b')).problem).toBe('authentication_failed');
    const shorter = (p: string) => Buffer.from(p, 'base64url').subarray(0, -1).toString('base64url');
    expect(refusal(() => cipher.decrypt(withPart(envelope, 3, shorter), ORDER)).problem).toBe('authentication_failed');
    expect(refusal(() => cipher.decrypt(withPart(envelope, 0, () => 'v2'), ORDER)).problem).toBe('malformed');
    expect(refusal(() => cipher.decrypt(withPart(envelope, 4, (p) => p.slice(0, 10)), ORDER)).problem).toBe('malformed');
    expect(refusal(() => cipher.decrypt(ADDRESS, ORDER)).problem).toBe('malformed');
    // the same tag bytes spelled another way: 16 bytes leave the last of 22 characters 4 unused
    // low bits, zero when canonical
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const respelled = withPart(envelope, 4, (p) => p.slice(0, -1) + ALPHABET[ALPHABET.indexOf(p.at(-1)!) | 1]);
    expect(Buffer.from(respelled.split('.')[4], 'base64url')).toEqual(Buffer.from(envelope.split('.')[4], 'base64url'));
    expect(refusal(() => cipher.decrypt(respelled, ORDER)).problem).toBe('malformed');
  });

  it('refuse a key id not in ENCRYPTION_KEYS, and an envelope relabelled with another key id', () => {
    const both = new ReceiverCipher(parseEncryptionKeys(`${k2},${k1}`));
    const sealedK1 = cipher.encrypt(ADDRESS, ORDER);
    expect(both.decrypt(sealedK1, ORDER)).toBe(ADDRESS);
    const onlyK2 = new ReceiverCipher(parseEncryptionKeys(k2));
    expect(refusal(() => onlyK2.decrypt(sealedK1, ORDER)).problem).toBe('unknown_key');
    expect(refusal(() => both.decrypt(withPart(sealedK1, 1, () => 'k2'), ORDER)).problem).toBe('authentication_failed');
    expect(refusal(() => cipher.decrypt(withPart(sealedK1, 1, () => 'k 1'), ORDER)).problem).toBe('malformed');
  });

  it('seal with the first key, open with any listed one', () => {
    const both = new ReceiverCipher(parseEncryptionKeys(`${k2},${k1}`));
    expect(both.currentKid).toBe('k2');
    const envelope = both.encrypt('Li Si', ORDER);
    expect(envelope.startsWith('v1.k2.')).toBe(true);
    expect(both.isCurrent(envelope)).toBe(true);
    expect(both.isCurrent(cipher.encrypt('Li Si', ORDER))).toBe(false);
    expect(refusal(() => cipher.decrypt(envelope, ORDER)).problem).toBe('unknown_key');
  });

  it('say what failed without the value, the envelope or the key', () => {
    const envelope = cipher.encrypt(ADDRESS, ORDER);
    const errors = [
      refusal(() => cipher.decrypt(withPart(envelope, 4, flip), ORDER)),
      refusal(() => cipher.decrypt(envelope, 'another-order')),
      refusal(() => cipher.decrypt(ADDRESS, ORDER)),
      refusal(() => new ReceiverCipher(parseEncryptionKeys(k2)).decrypt(envelope, ORDER)),
    ];
    for (const err of errors) {
      const text = `${err.message} ${String(err.stack)}`;
      for (const secret of [ADDRESS, '浦东', envelope, envelope.split('.')[3], k1.slice(3)]) expect(text).not.toContain(secret);
    }
    expect(() => cipher.encrypt(13812345678 as unknown as string, ORDER)).toThrow(/must be a string/);
    expect(() => cipher.encrypt('13812345678', '')).toThrow(/order id/);
    try {
      cipher.encrypt('13812345678', '');
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('13812345678');
    }
  });

  it('seal and open a whole receiver', () => {
    const receiver = { name: 'Wang Wu', phone: '13987654321', address: ADDRESS };
    const sealed = cipher.encryptReceiver(receiver, ORDER);
    expect(Object.values(sealed).every((v) => v.startsWith('v1.k1.'))).toBe(true);
    expect(cipher.decryptReceiver(sealed, ORDER)).toEqual(receiver);
    expect(() => cipher.decryptReceiver(sealed, 'another-order')).toThrow(EnvelopeError);
  });
});

describe('maskPhone', () => {
  it('keeps the first 3 and the last 4 digits of a phone number', () => {
    expect(maskPhone('13812345678')).toBe('138****5678');
    expect(maskPhone('138 1234 5678')).toBe('138****5678');
    expect(maskPhone('+86 138-1234-5678')).toBe('+86****5678');
    expect(maskPhone('02112345678')).toBe('021****5678');
    expect(maskPhone('1234567')).toBe('*****67');
    expect(maskPhone('12')).toBe('**');
    expect(maskPhone('')).toBe('');
  });
});
