/**
 * The statistics behind experiment results: the normal CDF, the chi-square survival function (both
 * from the regularized incomplete gamma function, accurate to ~1e-14, so p-values far in the tail
 * stay meaningful), and the two-proportion z-test with a 95% confidence interval of the difference.
 * Pure functions, no I/O.
 */

/** The 0.975 quantile of the standard normal: a two-sided 95% interval is ± this many standard errors. */
export const Z_975 = 1.959963984540054;

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0];
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

const EPS = 1e-15;
const MAX_ITER = 1000;

/** Q(a, x) = Γ(a, x) / Γ(a): the series below a + 1, Lentz's continued fraction above. */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) throw new RangeError(`gammaQ needs a > 0 and x >= 0 (got ${a}, ${x})`);
  if (x === 0) return 1;
  const lnPrefix = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < MAX_ITER; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * EPS) break;
    }
    return 1 - sum * Math.exp(lnPrefix);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITER; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(lnPrefix) * h;
}

/** erfc(x) = Q(1/2, x²) for x ≥ 0, reflected below. */
export function erfc(x: number): number {
  return x >= 0 ? gammaQ(0.5, x * x) : 2 - gammaQ(0.5, x * x);
}

/** P(Z ≤ z) for a standard normal Z. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** P(|Z| ≥ |z|): the two-sided p-value of a z statistic (computed in the tail, not as 1 − Φ). */
export function twoSidedP(z: number): number {
  return erfc(Math.abs(z) / Math.SQRT2);
}

/** Pearson's statistic Σ (observed − expected)² / expected. */
export function chiSquareStatistic(observed: readonly number[], expected: readonly number[]): number {
  if (observed.length !== expected.length) throw new RangeError('observed and expected differ in length');
  let stat = 0;
  for (let i = 0; i < observed.length; i++) stat += (observed[i] - expected[i]) ** 2 / expected[i];
  return stat;
}

/** P(X ≥ stat) for X chi-square with df degrees of freedom. */
export function chiSquarePValue(stat: number, df: number): number {
  return gammaQ(df / 2, stat / 2);
}

export interface ProportionComparison {
  /** Treatment rate minus control rate. */
  difference: number;
  /** 95% Wald interval of the difference (unpooled standard error). */
  ciLow: number;
  ciHigh: number;
  /** Difference over the control rate; null when the control rate is 0. */
  relative: number | null;
  /** z of the two-proportion test (pooled standard error); 0 when the pooled rate is 0 or 1. */
  z: number;
  /** Two-sided p-value of z. */
  pValue: number;
}

/**
 * The two-proportion z-test of treatment (x1 of n1) against control (x0 of n0). Null when either
 * group is empty: there is nothing to compare.
 */
export function compareProportions(x0: number, n0: number, x1: number, n1: number): ProportionComparison | null {
  if (n0 <= 0 || n1 <= 0) return null;
  const p0 = x0 / n0;
  const p1 = x1 / n1;
  const difference = p1 - p0;
  const se = Math.sqrt((p0 * (1 - p0)) / n0 + (p1 * (1 - p1)) / n1);
  const pooled = (x0 + x1) / (n0 + n1);
  const sePooled = Math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1));
  // both groups all-converted or none-converted: no evidence of a difference either way
  const z = sePooled > 0 ? difference / sePooled : 0;
  return {
    difference,
    ciLow: difference - Z_975 * se,
    ciHigh: difference + Z_975 * se,
    relative: p0 > 0 ? difference / p0 : null,
    z,
    pValue: twoSidedP(z),
  };
}
