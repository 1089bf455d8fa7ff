import { describe, expect, it } from 'vitest';
import { CROCKFORD, orderedCode, orderedHex } from '../../src/crypto/ordered-id.ts';
import { newExchangeNo, newOpId } from '../../src/points/idempotency.ts';
import { newOrderNo } from '../../src/orders/service.ts';

const decodeCrockford = (s: string) => [...s].reduce((n, c) => n * 32 + CROCKFORD.indexOf(c), 0);

describe('time-ordered ids', () => {
  it('op ids are 32 hex characters: the creation ms, then 80 random bits', () => {
    const before = Date.now();
    const id = newOpId();
    const after = Date.now();
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const ms = parseInt(id.slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it('exchange and order numbers carry the creation ms in 9 Crockford characters, then 13 random ones', () => {
    const before = Date.now();
    const ex = newExchangeNo();
    const od = newOrderNo();
    const after = Date.now();
    expect(ex).toMatch(/^PM[0-9A-HJKMNP-TV-Z]{22}$/);
    expect(od).toMatch(/^OD[0-9A-HJKMNP-TV-Z]{22}$/);
    for (const code of [ex, od]) {
      const ms = decodeCrockford(code.slice(2, 11));
      expect(ms).toBeGreaterThanOrEqual(before);
      expect(ms).toBeLessThanOrEqual(after);
    }
  });

  it('sort by creation time, as text, whatever their random part (and keep their width far ahead)', () => {
    const times = [0, 1, 31, 32, 1_700_000_000_000, 1_796_000_000_000, 1_796_000_000_001, 4_102_444_800_000, 2 ** 45 - 1];
    for (const [make, width] of [
      [(t: number) => orderedHex(10, t), 32],
      [(t: number) => orderedCode('PM', 13, t), 24],
    ] as const) {
      const ids = times.map((t) => make(t));
      expect(ids.every((id) => id.length === width)).toBe(true);
      expect([...ids].sort()).toEqual(ids);
      // Postgres compares text by the database's collation: the same order there
      for (let i = 1; i < ids.length; i++) expect(ids[i - 1].localeCompare(ids[i], 'en-US')).toBe(-1);
    }
  });

  it('differ within one millisecond by their random part alone', () => {
    const now = Date.now();
    const hex = new Set(Array.from({ length: 50_000 }, () => orderedHex(10, now)));
    const codes = new Set(Array.from({ length: 50_000 }, () => orderedCode('PM', 13, now)));
    expect(hex.size).toBe(50_000);
    expect(codes.size).toBe(50_000);
    // every random character position takes every value: the low 5 bits of CSPRNG bytes
    const seen = Array.from({ length: 13 }, () => new Set<string>());
    for (const c of codes) for (let i = 0; i < 13; i++) seen[i].add(c[11 + i]);
    expect(seen.every((s) => s.size === 32)).toBe(true);
  });
});
