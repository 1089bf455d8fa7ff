/**
 * Issue 6, item 11: persist jobs must not serialize on a row every batch takes. Every relay job
 * covers all partitions, so a per-partition watermark row upserted by each batch made concurrent
 * batches (of different members) wait for each other's commit.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { persistBatch } from '../../src/persistence/persist-batch.ts';
import type { Op } from '../../src/points/op.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

function earnOp(userId: number, n: number): Op {
  return {
    opId: `c${userId}x${n}`.padEnd(32, '0'), kind: 'earn', userId, delta: 5, balanceAfter: 5 * (n + 1), available: 5 * (n + 1),
    bizType: 'share', bizId: '1', at: Date.now(), h: 'h', expiresAt: Date.now() + 86_400_000,
  };
}

describe('concurrent persist batches', () => {
  it('of different members over the same partitions do not wait for each other', async () => {
    const members = await ctx.createMembers(8);
    const a = members.slice(0, 4).map((m, i) => earnOp(m.id, i));
    const b = members.slice(4).map((m, i) => earnOp(m.id, i));
    const marksA = { 0: '1000-0', 1: '1000-1', 2: '1000-2' };
    const marksB = { 0: '2000-0', 1: '2000-1', 2: '2000-2' };
    // a second connection pool, so batch A's transaction stays open while B runs
    const other = postgres(`${ctx.env.DATABASE_URL}`, { max: 2, onnotice: () => {}, connection: { lock_timeout: 3000 } });
    try {
      let bDone = false;
      await ctx.sql.begin(async (tx) => {
        await tx`SELECT 1`;
        // batch A is written but not committed
        const { writeBatch } = await import('../../src/persistence/persist-batch.ts');
        await writeBatch(tx, a, marksA);
        const started = Date.now();
        await persistBatch(other as never, b, marksB);
        bDone = true;
        expect(Date.now() - started).toBeLessThan(2000);
      });
      expect(bDone).toBe(true);
    } finally {
      await other.end();
    }
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM ledger_entries`;
    expect(n).toBe(8);
  });
});
