/**
 * The relay reads every partition's outbox in one pass. A read that fails (a partition whose
 * master is failing over answers MOVED or CLUSTERDOWN; here a real Redis error: the stream key
 * holds a string, WRONGTYPE) must not hold up the other partitions, nor strand what their reads
 * delivered: XREADGROUP '>' hands an entry to the group once, so entries read in a pass that is
 * then dropped sit pending until XAUTOCLAIM takes them back, RELAY_CLAIM_IDLE_MS (30 s) later.
 * Seen in the cluster failover test: 62 acknowledged ops waited out its 30 s drain. The same holds
 * right after a reconnect, when the relay re-reads its own pending entries partition by partition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELAY_GROUP } from '../src/queues.ts';
import type { RedisClient } from '../src/redis/client.ts';
import { waitUntil } from './crash/procs.ts';
import { createTestContext, type Pipeline, type TestContext } from './support/context.ts';

let ctx: TestContext;
let pipeline: Pipeline;
beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
});
afterAll(async () => {
  await pipeline?.stop();
  await ctx?.close();
});

const persisted = async (userIds: number[]) =>
  Number((await ctx.sql`SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = ANY(${userIds}::bigint[])`)[0].n);

describe('relay: one partition failing', () => {
  it('relays the other partitions meanwhile (a reconnect included), strands nothing they delivered, and takes the partition up again once it answers', async () => {
    const { redis, keys } = ctx;
    const members = await ctx.createMembers(40);
    const [broken] = members;
    const stream = keys.outboxOf(broken.id);
    const others = members.filter((m) => keys.outboxOf(m.id) !== stream).map((m) => m.id);
    expect(others.length).toBeGreaterThan(20);
    const before = await persisted(others);

    // the partition's outbox answers every read with an error; then the relay's connection drops
    // and comes back, after which it re-reads its own pending entries first (from '0')
    await redis.del(stream);
    await redis.set(stream, 'not a stream');
    const relayConn = (pipeline.relay as unknown as { o: { redis: RedisClient } }).o.redis;
    relayConn.disconnect(true);
    try {
      await Promise.all(others.map((id) => ctx.grant(id, 10)));
      // inside the 30 s after which XAUTOCLAIM would take stranded entries back
      await waitUntil('the other partitions relayed and persisted', async () => (await persisted(others)) === before + others.length, 20_000, 50);
    } finally {
      await redis.del(stream);
      await redis.xgroup('CREATE', stream, RELAY_GROUP, '0', 'MKSTREAM');
    }
    // and the partition itself, once it answers again
    const mine = await persisted([broken.id]);
    await ctx.grant(broken.id, 10);
    await waitUntil('the repaired partition relayed and persisted', async () => (await persisted([broken.id])) === mine + 1, 20_000, 50);
  });
});
