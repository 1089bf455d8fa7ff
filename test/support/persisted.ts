/**
 * Checks shared by the tests that run the relay and persist roles their own way (real processes,
 * several relays, kills): waiting for the outbox and the persist queue to drain, and asserting
 * that the ledger and the balances hold exactly the ops the services acknowledged.
 */
import type { Queue } from 'bullmq';
import type { RedisClient } from '../../src/redis/client.ts';
import { expect } from 'vitest';
import type { Sql } from '../../src/db/client.ts';
import type { Keys } from '../../src/redis/keys.ts';
import { waitUntil } from '../crash/procs.ts';

/** An op a service call acknowledged: whose, and by how much it moved the balance. */
export interface AckedOp {
  userId: number;
  delta: number;
}

export async function outboxLength(redis: RedisClient, keys: Keys): Promise<number> {
  const lens = await Promise.all(Array.from({ length: keys.partitions }, (_, p) => redis.xlen(keys.outbox(p))));
  return lens.reduce((a, b) => a + b, 0);
}

/** Waits until every outbox stream is empty and no persist job is waiting, active or delayed. */
export async function waitForDrain(redis: RedisClient, keys: Keys, queue: Queue, timeoutMs = 45_000): Promise<void> {
  await waitUntil(
    'the outbox and the persist queue to drain',
    async () => {
      const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
      return (await outboxLength(redis, keys)) + Object.values(counts).reduce((a, b) => a + b, 0) === 0;
    },
    timeoutMs,
    100,
  );
}

/**
 * The ledger holds every acknowledged op exactly once, with its member and delta, and nothing
 * else; no persist job was given up.
 */
export async function expectLedgerExactlyOnce(sql: Sql, queue: Queue, acked: Map<string, AckedOp>): Promise<void> {
  expect((await queue.getFailed()).map((j) => `${j.id}: ${j.failedReason}`), 'persist jobs given up').toEqual([]);
  const ledger = await sql<Array<{ opId: string; userId: number; delta: number; n: number }>>`
    SELECT op_id AS "opId", min(user_id)::bigint AS "userId", sum(delta)::bigint AS delta, count(*)::int AS n
    FROM ledger_entries GROUP BY op_id`;
  expect(ledger.filter((r) => r.n !== 1).map((r) => `${r.opId} x${r.n}`), 'ops written more than once').toEqual([]);
  const inLedger = new Map(ledger.map((r) => [r.opId, r]));
  expect([...acked.keys()].filter((id) => !inLedger.has(id)), 'acknowledged ops missing from the ledger').toEqual([]);
  expect(ledger.filter((r) => !acked.has(r.opId)).map((r) => r.opId), 'ledger rows never acknowledged').toEqual([]);
  const wrong = [...acked].filter(([id, a]) => Number(inLedger.get(id)!.userId) !== a.userId || Number(inLedger.get(id)!.delta) !== a.delta);
  expect(wrong, 'ledger rows with another member or delta than acknowledged').toEqual([]);
}

/** Per member: Redis balance = Postgres mirror = the sum of the member's acknowledged deltas. */
export async function expectBalancesMatch(
  sql: Sql,
  redis: RedisClient,
  keys: Keys,
  memberIds: number[],
  acked: Map<string, AckedOp>,
): Promise<void> {
  const expected = new Map<number, number>();
  for (const a of acked.values()) expected.set(a.userId, (expected.get(a.userId) ?? 0) + a.delta);
  const mirror = new Map(
    (
      await sql<Array<{ userId: number; available: number }>>`
        SELECT user_id AS "userId", available FROM point_accounts WHERE user_id = ANY(${memberIds}::bigint[])`
    ).map((r) => [Number(r.userId), Number(r.available)]),
  );
  const mismatched: unknown[] = [];
  for (const id of memberIds) {
    const live = Number(await redis.hget(keys.account(id), 'avail'));
    const want = expected.get(id) ?? 0;
    if (live !== want || mirror.get(id) !== want) mismatched.push({ member: id, expected: want, redis: live, postgres: mirror.get(id) });
  }
  expect(mismatched, 'balances vs acknowledged ops').toEqual([]);
}
