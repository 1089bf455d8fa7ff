/**
 * The statistics module against reference values (tables of the normal and chi-square
 * distributions, closed forms) and a two-proportion test computed by hand.
 */
import { describe, expect, it } from 'vitest';
import { chiSquarePValue, chiSquareStatistic, compareProportions, erfc, gammaQ, lnGamma, normalCdf, twoSidedP, Z_975 } from '../../src/experiments/stats.ts';

describe('normal distribution', () => {
  it('matches the table of the standard normal CDF', () => {
    const cases: Array<[number, number]> = [
      [0, 0.5],
      [-1, 0.15865525393145707],
      [1, 0.8413447460685429],
      [1.6448536269514722, 0.95],
      [Z_975, 0.975],
      [3, 0.9986501019683699],
      [-3, 0.0013498980316301035],
    ];
    for (const [z, p] of cases) expect(normalCdf(z), `Φ(${z})`).toBeCloseTo(p, 13);
  });

  it('keeps precision in the far tail, where 1 − Φ(z) would round to 0', () => {
    // P(|Z| ≥ 8) = 1.2441921148543639e-15
    expect(twoSidedP(8) / 1.2441921148543639e-15).toBeCloseTo(1, 9);
    expect(twoSidedP(-8)).toBe(twoSidedP(8));
    expect(twoSidedP(Z_975)).toBeCloseTo(0.05, 14);
    expect(twoSidedP(0)).toBe(1);
  });

  it('erfc and ln Γ agree with their closed forms', () => {
    expect(erfc(0)).toBe(1);
    expect(erfc(1)).toBeCloseTo(0.15729920705028513, 14);
    expect(erfc(-1)).toBeCloseTo(2 - 0.15729920705028513, 14);
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 13);
    expect(lnGamma(10)).toBeCloseTo(Math.log(362_880), 12);
    expect(lnGamma(1)).toBeCloseTo(0, 14);
  });

  it('refuses arguments outside the incomplete gamma function’s domain', () => {
    expect(() => gammaQ(0, 1)).toThrow(RangeError);
    expect(() => gammaQ(1, -1)).toThrow(RangeError);
    expect(gammaQ(3, 0)).toBe(1);
  });
});

describe('chi-square distribution', () => {
  it('matches the 5% critical values of the table', () => {
    const critical: Array<[number, number]> = [
      [1, 3.841458820694124],
      [2, 5.991464547107979],
      [3, 7.814727903251179],
      [9, 16.918977604620448],
      [999, 1073.6426506574246],
    ];
    for (const [df, x] of critical) expect(chiSquarePValue(x, df), `df ${df}`).toBeCloseTo(0.05, 10);
  });

  it('with 2 degrees of freedom is exp(−x/2), exactly', () => {
    for (const x of [0.1, 1, 7, 30]) expect(chiSquarePValue(x, 2)).toBeCloseTo(Math.exp(-x / 2), 14);
  });

  it('sums (observed − expected)² / expected', () => {
    // (48−50)²/50 + (52−50)²/50 = 0.16; (10−20)²/20 + (30−20)²/20 = 10
    expect(chiSquareStatistic([48, 52], [50, 50])).toBeCloseTo(0.16, 14);
    expect(chiSquareStatistic([10, 30], [20, 20])).toBe(10);
    expect(() => chiSquareStatistic([1], [1, 2])).toThrow(RangeError);
  });
});

describe('two-proportion z-test', () => {
  it('equals the hand computation: 20/200 against 34/200', () => {
    // p0 = 0.10, p1 = 0.17, difference 0.07, relative 0.07 / 0.10 = 0.7
    // pooled 54/400 = 0.135; SE = √(0.135 · 0.865 · (1/200 + 1/200)) = √0.00116775 = 0.034172357…
    // z = 0.07 / 0.034172357 = 2.04843931…; p = erfc(2.04843931 / √2) = 0.04051697…
    // unpooled SE = √(0.1 · 0.9 / 200 + 0.17 · 0.83 / 200) = √0.0011555 = 0.033992646…
    // 95% CI = 0.07 ± 1.959964 · 0.033992646 = [0.00337564, 0.13662436]
    const t = compareProportions(20, 200, 34, 200)!;
    expect(t.difference).toBeCloseTo(0.07, 14);
    expect(t.relative).toBeCloseTo(0.7, 14);
    expect(t.z).toBeCloseTo(2.04843931276202, 12);
    expect(t.pValue).toBeCloseTo(0.04051697280293331, 12);
    expect(t.ciLow).toBeCloseTo(0.0033756375841985, 12);
    expect(t.ciHigh).toBeCloseTo(0.1366243624158015, 12);
  });

  it('is symmetric: swapping the groups flips the sign, not the p-value', () => {
    const a = compareProportions(20, 200, 34, 200)!;
    const b = compareProportions(34, 200, 20, 200)!;
    expect(b.z).toBeCloseTo(-a.z, 12);
    expect(b.pValue).toBeCloseTo(a.pValue, 14);
  });

  it('has no answer for an empty group, and no evidence when nobody (or everybody) converted', () => {
    expect(compareProportions(0, 0, 1, 10)).toBeNull();
    expect(compareProportions(1, 10, 0, 0)).toBeNull();
    expect(compareProportions(0, 10, 0, 20)).toMatchObject({ difference: 0, z: 0, pValue: 1, relative: null, ciLow: 0, ciHigh: 0 });
    expect(compareProportions(10, 10, 20, 20)).toMatchObject({ difference: 0, z: 0, pValue: 1, relative: 0 });
  });
});
