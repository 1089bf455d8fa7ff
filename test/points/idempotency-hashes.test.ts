/**
 * The key hash names a member's idempotency record and the request hash is stored in it, for a
 * day: a release that hashed differently would turn every retry across the deploy into a new
 * request (or a 422). These vectors are SHA-256 as the records were first written.
 */
import { describe, expect, it } from 'vitest';
import { keyHash, requestHash } from '../../src/points/idempotency.ts';

describe('idempotency hashes', () => {
  it('keyHash is the first 32 hex of SHA-256(scope NUL key)', () => {
    expect(keyHash('order-42')).toBe('d30a1e70c64c1df9989f9a0ffa18fd8e');
    expect(keyHash('order-42', 'grant')).toBe('e158ada8219086499bfc4e09b0fd1982');
  });

  it('requestHash is the first 16 hex of SHA-256(route LF canonical body), keys sorted', () => {
    expect(requestHash('redeem', { quantity: 2, goodsId: 7 })).toBe('dd92646eac241129');
    expect(requestHash('redeem', { goodsId: 7, quantity: 2, expectedPrice: 100 })).toBe('67b30c45684e91d3');
  });
});
