/**
 * Points issued, spent and expired by bizType, and the persist lag, counted by the persist worker
 * for the ops a batch actually wrote: a redelivered batch writes nothing new and counts nothing,
 * so each op counts once. Lag: from the op's time (Redis TIME when the script acknowledged it) to
 * the commit.
 */
import type { Op } from '../points/op.ts';
import { persistLag, pointsExpired, pointsIssued, pointsSpent } from './registry.ts';

// bizType is a short fixed word; anything else would be an unbounded label
const bizLabel = (bizType: string) => (/^[a-z][a-z0-9_]{0,31}$/.test(bizType) ? bizType : 'other');

export function countPersisted(ops: Op[], committedAt: number): void {
  for (const o of ops) {
    persistLag.observe(Math.max(0, committedAt - o.at) / 1000);
    const biz_type = bizLabel(o.bizType);
    if (o.kind === 'earn' && o.delta > 0) pointsIssued.inc({ biz_type }, o.delta);
    else if (o.kind === 'spend' && o.delta < 0) pointsSpent.inc({ biz_type }, -o.delta);
    else if (o.kind === 'expire' && o.delta < 0) pointsExpired.inc({ biz_type }, -o.delta);
  }
}
