/**
 * The encryption keys of receiver info: ENCRYPTION_KEYS = "kid:base64key,kid:base64key,…", each
 * key 32 bytes (AES-256), the first one encrypting, every one decrypting (so keys rotate: put the
 * new key first, run `npm run rotate-keys`, then drop the old one). Key ids name the key inside
 * each envelope. Problems are reported by position and key id, never with key material.
 */
export interface Key {
  kid: string;
  key: Buffer;
}

export interface Keyring {
  /** The key new envelopes are sealed with. */
  current: Key;
  byKid: ReadonlyMap<string, Key>;
}

export const KID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

export class KeyringError extends Error {}

export function parseEncryptionKeys(spec: string): Keyring {
  const entries = spec.split(',').map((e) => e.trim());
  if (entries.length === 0 || entries.every((e) => e === '')) throw new KeyringError('no key given');
  const keys: Key[] = [];
  for (const [i, entry] of entries.entries()) {
    const at = `entry ${i + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) throw new KeyringError(`${at} is not "kid:base64key"`);
    const kid = entry.slice(0, colon);
    const material = entry.slice(colon + 1);
    if (!KID_PATTERN.test(kid)) throw new KeyringError(`${at}: the key id must be 1-32 characters of A-Z a-z 0-9 _ -`);
    if (!BASE64.test(material)) throw new KeyringError(`${at} ("${kid}"): the key is not base64`);
    const key = Buffer.from(material, 'base64');
    if (key.length !== 32) throw new KeyringError(`${at} ("${kid}"): the key is ${key.length} bytes, AES-256 needs 32`);
    if (keys.some((k) => k.kid === kid)) throw new KeyringError(`${at}: key id "${kid}" is listed twice`);
    keys.push({ kid, key });
  }
  return { current: keys[0], byKid: new Map(keys.map((k) => [k.kid, k])) };
}
