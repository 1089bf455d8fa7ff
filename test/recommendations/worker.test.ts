/**
 * The recommend role: it builds the model when there is none, rebuilds once
 * RECOMMEND_AFTER_REDEMPTIONS catalog redemptions were persisted (the persist worker counts them),
 * not before, and again when RECOMMEND_EVERY_MS has passed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { builtAt, freshRedemptions, ModelReader } from '../../src/recommendations/model.ts';
import { createLogger } from '../../workers/logger.ts';
import { rebuildCause, startRecommend } from '../../workers/recommend.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { redeem, settled } from '../catalog/support.ts';

const EVERY_MS = 3_600_000;
let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext({ RECOMMEND_AFTER_REDEMPTIONS: 3, RECOMMEND_EVERY_MS: EVERY_MS });
});
afterAll(async () => ctx?.close());

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

it('builds at once, rebuilds after N persisted redemptions and not before, and again on schedule', async () => {
  expect(await rebuildCause(ctx.redis, ctx.keys, EVERY_MS, 3)).toBe('schedule');
  const { connection, writer, gate } = await ctx.roleConnections();
  const task = await startRecommend({
    connection,
    writer,
    gate,
    keys: ctx.keys,
    sql: ctx.sql,
    everyMs: ctx.env.RECOMMEND_EVERY_MS,
    afterRedemptions: ctx.env.RECOMMEND_AFTER_REDEMPTIONS,
    lockMs: 2_000,
    log: createLogger('silent', 'test'),
    checkMs: 100,
  });
  const pipeline = await ctx.startPipeline();
  try {
    const first = await until('the first build', () => ctx.redis.get(ctx.keys.recoCurrent()));
    const goods = (await ctx.createGoods({ name: 'Rebuild item', pointsPrice: 100, stock: 100 })).id;
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 10_000);
    for (let i = 0; i < 2; i++) expect((await redeem(ctx, m.token, goods)).statusCode).toBe(201);
    await settled(ctx, goods);
    await pipeline.drain();
    await until('two redemptions counted', async () => (await freshRedemptions(ctx.redis, ctx.keys)) === 2);
    await sleep(500); // five ticks
    expect(await ctx.redis.get(ctx.keys.recoCurrent())).toBe(first);
    expect(await rebuildCause(ctx.redis, ctx.keys, EVERY_MS, 3)).toBe('none');

    expect((await redeem(ctx, m.token, goods)).statusCode).toBe(201);
    await settled(ctx, goods);
    await pipeline.drain();
    const second = await until('a rebuild', async () => {
      const b = await ctx.redis.get(ctx.keys.recoCurrent());
      return b !== first && b;
    });
    expect((await new ModelReader(ctx.redis, ctx.keys).member(second, m.id))?.history).toEqual([goods]);
    expect(await freshRedemptions(ctx.redis, ctx.keys)).toBe(0);

    // the schedule: a build RECOMMEND_EVERY_MS old is rebuilt whatever the redemptions
    const at = (await builtAt(ctx.redis, ctx.keys))!;
    expect(await rebuildCause(ctx.redis, ctx.keys, EVERY_MS, 3, at + EVERY_MS - 1)).toBe('none');
    expect(await rebuildCause(ctx.redis, ctx.keys, EVERY_MS, 3, at + EVERY_MS)).toBe('schedule');
    // the build before the current one stays readable; the one before that is gone
    expect(await ctx.redis.exists(ctx.keys.recoMeta(first))).toBe(1);
  } finally {
    await task.close();
  }
});
