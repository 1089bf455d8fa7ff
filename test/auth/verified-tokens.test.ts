/**
 * The verified-token cache (src/auth/verified-tokens.ts): an entry never outlives its token's
 * expiry or its maximum age, tokens with a not-before or without an expiry are never kept, and
 * the map stays within its bound.
 */
import { describe, expect, it } from 'vitest';
import { VerifiedTokens } from '../../src/auth/verified-tokens.ts';

type Claims = { sub: string; exp?: number; nbf?: number };
const T0 = 1_800_000_000_000;

describe('VerifiedTokens', () => {
  it('answers a remembered token until just before its exp, then forgets it', () => {
    const cache = new VerifiedTokens<Claims>(10);
    const claims = { sub: '1', exp: T0 / 1000 + 60 };
    cache.remember('tok', claims, T0);
    expect(cache.get('tok', T0)).toBe(claims);
    expect(cache.get('tok', T0 + 59_999)).toBe(claims);
    expect(cache.get('tok', T0 + 60_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('answers no longer than its maximum age, whatever the exp', () => {
    const cache = new VerifiedTokens<Claims>(10, 1_000);
    cache.remember('tok', { sub: '1', exp: T0 / 1000 + 3600 }, T0);
    expect(cache.get('tok', T0 + 999)).toBeDefined();
    expect(cache.get('tok', T0 + 1_000)).toBeUndefined();
  });

  it('keeps no token without an exp, with a not-before, or already expired', () => {
    const cache = new VerifiedTokens<Claims>(10);
    cache.remember('no-exp', { sub: '1' }, T0);
    cache.remember('nbf', { sub: '1', exp: T0 / 1000 + 60, nbf: T0 / 1000 - 1 }, T0);
    cache.remember('expired', { sub: '1', exp: T0 / 1000 }, T0);
    expect(cache.size).toBe(0);
    for (const t of ['no-exp', 'nbf', 'expired']) expect(cache.get(t, T0)).toBeUndefined();
  });

  it('answers only the exact token: a token differing in one character is a miss', () => {
    const cache = new VerifiedTokens<Claims>(10);
    cache.remember('aaa.bbb.ccc', { sub: '1', exp: T0 / 1000 + 60 }, T0);
    expect(cache.get('aaa.bbb.ccd', T0)).toBeUndefined();
    expect(cache.get('aaa.bbb.cc', T0)).toBeUndefined();
  });

  it('holds at most max entries, dropping the oldest', () => {
    const cache = new VerifiedTokens<Claims>(3);
    for (let i = 0; i < 5; i++) cache.remember(`t${i}`, { sub: String(i), exp: T0 / 1000 + 60 }, T0);
    expect(cache.size).toBe(3);
    expect(cache.get('t0', T0)).toBeUndefined();
    expect(cache.get('t1', T0)).toBeUndefined();
    expect(cache.get('t4', T0)?.sub).toBe('4');
    // remembering a token it holds again does not evict another
    cache.remember('t4', { sub: '4', exp: T0 / 1000 + 60 }, T0);
    expect(cache.size).toBe(3);
    expect(cache.get('t2', T0)?.sub).toBe('2');
  });

  it('with max 0 keeps nothing', () => {
    const cache = new VerifiedTokens<Claims>(0);
    cache.remember('tok', { sub: '1', exp: T0 / 1000 + 60 }, T0);
    expect(cache.get('tok', T0)).toBeUndefined();
  });
});
