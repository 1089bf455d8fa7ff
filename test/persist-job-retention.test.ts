/**
 * Completed persist jobs are kept for a while (PERSIST_JOB_OPTIONS.removeOnComplete) so that a
 * relay re-adding the same batch is ignored; once a batch is in Postgres its ops' JSON is dropped
 * from the job, which keeps only their count and still turns a re-add of its id into a no-op.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PersistJobData } from '../workers/persist.ts';
import type { Op } from '../src/points/op.ts';
import { PERSIST_QUEUE } from '../src/queues.ts';
import { createRedis } from '../src/redis/client.ts';
import { waitUntil } from './crash/procs.ts';
import { createTestContext, type Pipeline, type TestContext } from './support/context.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let queue: Queue<PersistJobData>;
beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
  queue = new Queue(PERSIST_QUEUE, { connection: createRedis(ctx.env, 'worker'), prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
});
afterAll(async () => {
  await pipeline?.stop();
  await queue?.close();
  await ctx?.close();
});

describe('completed persist jobs', () => {
  it('keep only how many ops they persisted, and still make a re-add of their id a no-op', async () => {
    const members = await ctx.createMembers(30);
    await Promise.all(members.map((m) => ctx.grant(m.id, 100)));
    await pipeline.drain();
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM ledger_entries`;
    expect(n).toBe(30);

    const stripped = await waitUntil(
      'every completed job stripped of its ops',
      async () => {
        const jobs = await queue.getJobs(['completed']);
        return jobs.length > 0 && jobs.every((j) => j.data.ops.length === 0) && jobs;
      },
      10_000,
    );
    expect(stripped.reduce((sum, j) => sum + (j.data.persisted ?? 0), 0), 'ops counted by the completed jobs').toBe(30);
    const bytes = await ctx.redis.hstrlen(`${ctx.keys.queuePrefix(PERSIST_QUEUE)}:${PERSIST_QUEUE}:${stripped[0].id}`, 'data');
    expect(bytes, 'a stripped job’s data').toBeLessThan(64);

    // a relay that died between the add and the ack re-adds the same batch under the same id
    const ghost: Op = {
      opId: 'f'.repeat(32), kind: 'earn', userId: members[0].id, delta: 7, balanceAfter: 107, available: 107,
      bizType: 'share', bizId: '1', at: Date.now(), h: 'h', expiresAt: Date.now() + 86_400_000,
    };
    await queue.add('persist', { ops: [ghost] }, { jobId: stripped[0].id });
    await pipeline.drain();
    expect(await queue.getJobState(stripped[0].id!)).toBe('completed');
    const [{ ghosts }] = await ctx.sql<Array<{ ghosts: number }>>`SELECT count(*)::int AS ghosts FROM ledger_entries WHERE op_id = ${ghost.opId}`;
    expect(ghosts, 'the re-added batch was not run again').toBe(0);
  });
});
