/**
 * Helpers for the engagement tests: an in-process follower (what the engagement role runs each
 * pass), settling the pipeline around it, ops with a fixed time persisted through the persist
 * batch, and the ledger rows of a member by bizType.
 */
import { randomBytes } from 'node:crypto';
import type { Sql } from '../../src/db/client.ts';
import type { Op } from '../../src/points/op.ts';
import { persistBatch } from '../../src/persistence/persist-batch.ts';
import { EngagementFollower } from '../../src/rewards/follower.ts';
import { PayoutService } from '../../src/rewards/payouts.ts';
import type { Pipeline, TestContext } from '../support/context.ts';

export function followerFor(ctx: TestContext, o: { sql?: Sql; batch?: number } = {}): EngagementFollower {
  const sql = o.sql ?? ctx.sql;
  const payouts = new PayoutService({ sql, points: ctx.app.points, pushes: ctx.app.pushes, expiryDays: 365 });
  return new EngagementFollower({ sql, tz: ctx.env.BUSINESS_TIMEZONE, batch: o.batch ?? 500, payouts, canPay: async () => true });
}

/** Persist what is in flight, follow it, and persist what the follower paid. */
export async function settle(pipeline: Pipeline, follower: EngagementFollower): Promise<void> {
  await pipeline.drain();
  await follower.pass();
  await pipeline.drain();
}

let seq = 0;
/** An op stamped at `at` (ms), written through the persist batch as if relayed from the outbox. */
export async function persistAt(
  sql: Sql,
  o: { opId?: string; userId: number; kind: Op['kind']; delta: number; bizType: string; bizId?: string; at: number },
): Promise<string> {
  const opId = o.opId ?? `t${randomBytes(8).toString('hex')}${++seq}`;
  await persistBatch(sql, [
    {
      opId,
      kind: o.kind,
      userId: o.userId,
      delta: o.delta,
      balanceAfter: 0,
      available: 0,
      bizType: o.bizType,
      bizId: o.bizId ?? '',
      at: o.at,
      h: 'test',
      ...(o.kind === 'earn' ? { expiresAt: o.at + 365 * 86_400_000 } : {}),
      ...(o.bizType === 'redemption' ? { goodsId: 1, quantity: 1, exchangeNo: `PM${opId}` } : {}),
    },
  ]);
  return opId;
}

export async function ledgerOf(sql: Sql, userId: number, bizType: string): Promise<Array<{ opId: string; delta: number; bizId: string | null }>> {
  return sql`SELECT op_id AS "opId", delta, biz_id AS "bizId" FROM ledger_entries
             WHERE user_id = ${userId} AND biz_type = ${bizType} ORDER BY id`;
}

export async function progressOf(sql: Sql, userId: number, taskKey: string): Promise<Record<string, { progress: number; completed: boolean }>> {
  const rows = await sql<Array<{ period: string; progress: number; completed: boolean }>>`
    SELECT period_start AS period, progress, completed_at IS NOT NULL AS completed FROM task_progress
    WHERE user_id = ${userId} AND task_key = ${taskKey}`;
  return Object.fromEntries(rows.map((r) => [r.period, { progress: r.progress, completed: r.completed }]));
}
