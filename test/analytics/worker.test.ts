/**
 * The analytics worker role: started as workers/main.ts starts it, its scheduled task rolls the
 * days up without being asked, and it closes cleanly.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { startAnalytics } from '../../workers/analytics.ts';
import { createLogger } from '../../workers/logger.ts';
import { waitFor } from '../push/stubs.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

it('rolls today up on its schedule', async () => {
  const [m] = await ctx.createMembers(1);
  await ctx.grant(m.id, 40);
  const pipeline = await ctx.startPipeline();
  await pipeline.drain();
  const { connection } = await ctx.roleConnections();
  const role = await startAnalytics({
    connection,
    keys: ctx.keys,
    sql: ctx.sql,
    everyMs: 200,
    recomputeDays: 2,
    timeZone: ctx.env.BUSINESS_TIMEZONE,
    lockMs: 5_000,
    log: createLogger('silent', 'test'),
  });
  try {
    const row = await waitFor('a rolled-up day', async () => {
      const [r] = await ctx.sql<Array<{ issued: number; members: number }>>`
        SELECT points_issued AS issued, new_members AS members FROM analytics_days ORDER BY day DESC LIMIT 1`;
      return r?.issued === 40 && r;
    });
    expect(row).toEqual({ issued: 40, members: 1 });
  } finally {
    await role.close();
  }
});
