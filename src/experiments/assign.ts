/**
 * Variant assignment: a member's bucket in an experiment is a hash of the experiment key and the
 * member id into 1,000 buckets; the buckets are walked by cumulative weight. The same member and
 * key always land in the same bucket, so the assignment is deterministic across processes; it is
 * stored at the first exposure, so later weight changes move only members not yet assigned.
 */
import { createHash } from 'node:crypto';

export const BUCKETS = 1000;

export interface WeightedVariant {
  name: string;
  weight: number;
}

/** 0..999. SHA-256 rather than a fast hash: sequential member ids must spread evenly. */
export function bucketOf(memberId: number, experimentKey: string): number {
  return createHash('sha256').update(`${experimentKey}:${memberId}`).digest().readUInt32BE(0) % BUCKETS;
}

/**
 * The variant whose share of the 1,000 buckets holds `bucket`: variant i owns the buckets b with
 * cum(i-1) ≤ b·W/1000 < cum(i), W the total weight (integer arithmetic, no rounding drift).
 */
export function variantIndexForBucket(bucket: number, weights: readonly number[]): number {
  const total = weights.reduce((s, w) => s + w, 0);
  if (!(total > 0)) throw new RangeError('weights must sum to more than 0');
  const scaled = bucket * total;
  let cumulative = 0;
  for (let i = 0; i < weights.length; i++) {
    cumulative += weights[i];
    if (scaled < cumulative * BUCKETS) return i;
  }
  return weights.length - 1;
}

/** The variant a member would be given now (the route stores it at the first exposure). */
export function assignVariant<V extends WeightedVariant>(memberId: number, experimentKey: string, variants: readonly V[]): V {
  return variants[variantIndexForBucket(bucketOf(memberId, experimentKey), variants.map((v) => v.weight))];
}
