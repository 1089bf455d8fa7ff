/**
 * Assignment by hash into 1,000 buckets walked by cumulative weight: deterministic, the bucket
 * boundaries where the weights put them, and the split over 10,000 members within a chi-square
 * tolerance of the weights (with the very function the route uses).
 */
import { describe, expect, it } from 'vitest';
import { assignVariant, bucketOf, BUCKETS, variantIndexForBucket } from '../../src/experiments/assign.ts';
import { chiSquarePValue, chiSquareStatistic } from '../../src/experiments/stats.ts';

const MEMBERS = 10_000;

function split(key: string, weights: number[]): number[] {
  const variants = weights.map((weight, i) => ({ name: `v${i}`, weight }));
  const counts = weights.map(() => 0);
  for (let id = 1; id <= MEMBERS; id++) counts[Number(assignVariant(id, key, variants).name.slice(1))]++;
  return counts;
}

function pValueAgainst(counts: number[], weights: number[]): number {
  const total = weights.reduce((s, w) => s + w, 0);
  const n = counts.reduce((s, c) => s + c, 0);
  return chiSquarePValue(chiSquareStatistic(counts, weights.map((w) => (n * w) / total)), counts.length - 1);
}

describe('buckets', () => {
  it('a member and a key always give the same bucket, in 0..999; another key gives another spread', () => {
    for (const id of [1, 2, 42, 1_000_000]) {
      const b = bucketOf(id, 'points_prompt');
      expect(b).toBe(bucketOf(id, 'points_prompt'));
      expect(Number.isInteger(b) && b >= 0 && b < BUCKETS).toBe(true);
    }
    const a = Array.from({ length: 100 }, (_, i) => bucketOf(i + 1, 'one'));
    const b = Array.from({ length: 100 }, (_, i) => bucketOf(i + 1, 'two'));
    expect(a).not.toEqual(b);
  });

  it('the buckets themselves are uniform over 10,000 members (chi-square, 999 degrees of freedom)', () => {
    const counts = new Array<number>(BUCKETS).fill(0);
    for (let id = 1; id <= MEMBERS; id++) counts[bucketOf(id, 'points_prompt')]++;
    const p = chiSquarePValue(chiSquareStatistic(counts, counts.map(() => MEMBERS / BUCKETS)), BUCKETS - 1);
    expect(p).toBeGreaterThan(0.001);
  });

  it('walks the buckets by cumulative weight', () => {
    // 50/50: buckets 0..499 → first, 500..999 → second
    expect([0, 499, 500, 999].map((b) => variantIndexForBucket(b, [50, 50]))).toEqual([0, 0, 1, 1]);
    // 1:3 → 250 buckets, then 750
    expect([0, 249, 250, 999].map((b) => variantIndexForBucket(b, [1, 3]))).toEqual([0, 0, 1, 1]);
    // 20/30/50 → 0..199, 200..499, 500..999
    expect([199, 200, 499, 500].map((b) => variantIndexForBucket(b, [20, 30, 50]))).toEqual([0, 1, 1, 2]);
    const owned = [0, 0, 0];
    for (let b = 0; b < BUCKETS; b++) owned[variantIndexForBucket(b, [1, 1, 1])]++;
    expect(owned).toEqual([334, 333, 333]);
    expect(() => variantIndexForBucket(0, [0, 0])).toThrow(RangeError);
  });
});

describe('the split over 10,000 members', () => {
  const cases: Array<{ key: string; weights: number[] }> = [
    { key: 'points_prompt', weights: [50, 50] },
    { key: 'three_way', weights: [20, 30, 50] },
    { key: 'skewed', weights: [1, 9] },
    { key: 'many', weights: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1] },
  ];
  for (const { key, weights } of cases) {
    it(`${key} ${weights.join('/')} matches the weights (chi-square p > 0.001, every share within 2.5 points)`, () => {
      const counts = split(key, weights);
      const total = weights.reduce((s, w) => s + w, 0);
      expect(counts.reduce((s, c) => s + c, 0)).toBe(MEMBERS);
      expect(pValueAgainst(counts, weights), `counts ${counts.join('/')}`).toBeGreaterThan(0.001);
      counts.forEach((c, i) => expect(Math.abs(c / MEMBERS - weights[i] / total), `variant ${i}: ${c}`).toBeLessThan(0.025));
    });
  }

  it('the tolerance has teeth: a split off by five points fails it', () => {
    expect(pValueAgainst([5_500, 4_500], [50, 50])).toBeLessThan(0.001);
  });
});
