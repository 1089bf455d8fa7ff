/**
 * Scheduled tasks run from BullMQ job schedulers, one run at a time per task even with several
 * worker processes competing for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../workers/logger.ts';
import { startScheduledTask, withTaskLock } from '../workers/scheduled-task.ts';
import { createRedis } from '../src/redis/client.ts';
import { createTestContext, type TestContext } from './support/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('scheduled tasks', () => {
  it('never overlaps runs of one task across competing schedulers', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const run = async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      runs++;
      await sleep(250); // longer than the schedule interval: overruns are the hard case
      running--;
    };
    const log = createLogger('silent', 'test');
    const conns = [createRedis(ctx.env.REDIS_URL, 'worker'), createRedis(ctx.env.REDIS_URL, 'worker')];
    const tasks = await Promise.all(
      conns.map((connection) => startScheduledTask({ name: 'overlap-probe', everyMs: 100, connection, keys: ctx.keys, log, run })),
    );
    await sleep(2000);
    await Promise.all(tasks.map((t) => t.close()));
    conns.forEach((c) => c.disconnect());
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(maxRunning).toBe(1);
  });

  it('lets only one holder in, and frees the lock after the run', async () => {
    const slow = withTaskLock(ctx.redis, ctx.keys, 'probe', 5000, () => sleep(200).then(() => 'first'));
    await sleep(20);
    expect(await withTaskLock(ctx.redis, ctx.keys, 'probe', 5000, async () => 'second')).toEqual({ ran: false });
    expect(await slow).toEqual({ ran: true, result: 'first' });
    expect(await withTaskLock(ctx.redis, ctx.keys, 'probe', 5000, async () => 'third')).toEqual({ ran: true, result: 'third' });
  });
});
