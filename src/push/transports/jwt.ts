/**
 * Compact JWS signing for the provider credentials (FCM's RS256 assertion, APNs's ES256 provider
 * token). Only signing: we never verify tokens from providers.
 */
import { sign, type KeyObject } from 'node:crypto';

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function signJwt(header: { alg: 'RS256' | 'ES256' } & Record<string, string>, claims: object, key: KeyObject): string {
  const input = Buffer.from(`${b64url(header)}.${b64url(claims)}`);
  // JWS wants ECDSA signatures as raw r||s, not the DER node:crypto produces by default
  const signature =
    header.alg === 'ES256' ? sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' }) : sign('sha256', input, key);
  return `${input.toString()}.${signature.toString('base64url')}`;
}
