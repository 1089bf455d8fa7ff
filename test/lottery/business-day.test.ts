/**
 * Time in draws, with an injected clock (the scripts' "now" override): the daily draw limit counts
 * per business day in BUSINESS_TIMEZONE (Asia/Shanghai here, UTC+8, crossing a month end at local
 * midnight while UTC is still on the previous day), and the cooldown ends to the millisecond.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayNumber } from '../../src/engagement/business-day.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { createLottery, draw, type Member } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let admin: Member;

beforeAll(async () => {
  ctx = await createTestContext({ BUSINESS_TIMEZONE: 'Asia/Shanghai' });
  pipeline = await ctx.startPipeline();
  admin = await ctx.admin();
});
afterAll(async () => {
  if (ctx) ctx.app.lottery.clock = null;
  await ctx?.close();
});

const at = (iso: string) => {
  const ms = Date.parse(iso);
  ctx.app.lottery.clock = () => ms;
  return ms;
};

describe('daily draw limit and cooldown', () => {
  it('counts the daily limit per business day in Asia/Shanghai: local midnight (16:00 UTC, Jan 31 → Feb 1) starts a new day', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    const l = await createLottery(ctx, admin, { cost: 10, dailyDrawLimit: 2, prizes: [{ name: 'Nothing', kind: 'none', weight: 1 }] });

    at('2026-01-31T15:50:00.000Z'); // 23:50 on Jan 31 in Shanghai
    expect((await draw(ctx, m, l.id)).statusCode).toBe(201);
    expect((await draw(ctx, m, l.id)).statusCode).toBe(201);
    expectError(await draw(ctx, m, l.id), 409, 'DAILY_LIMIT_REACHED');
    at('2026-01-31T15:59:59.999Z'); // still Jan 31 locally
    expectError(await draw(ctx, m, l.id), 409, 'DAILY_LIMIT_REACHED');

    const feb1 = at('2026-01-31T16:00:00.000Z'); // 00:00 on Feb 1 in Shanghai, still Jan 31 in UTC
    expect((await draw(ctx, m, l.id)).statusCode).toBe(201);
    expect((await draw(ctx, m, l.id)).statusCode).toBe(201);
    expectError(await draw(ctx, m, l.id), 409, 'DAILY_LIMIT_REACHED');
    at('2026-02-01T15:59:59.999Z'); // 23:59:59.999 on Feb 1 locally
    expectError(await draw(ctx, m, l.id), 409, 'DAILY_LIMIT_REACHED');
    at('2026-02-01T16:00:00.000Z');
    expect((await draw(ctx, m, l.id)).statusCode).toBe(201);

    // each draw is recorded with the business day it counted on
    await pipeline.drain();
    const days = await ctx.sql<Array<{ day: number; n: number }>>`
      SELECT day, count(*)::int AS n FROM lottery_draws WHERE user_id = ${m.id} GROUP BY day ORDER BY day`;
    const jan31 = dayNumber('Asia/Shanghai', Date.parse('2026-01-31T15:50:00Z'));
    expect(dayNumber('Asia/Shanghai', feb1)).toBe(jan31 + 1);
    expect(dayNumber('UTC', feb1)).toBe(jan31);
    expect(days).toEqual([
      { day: jan31, n: 2 },
      { day: jan31 + 1, n: 2 },
      { day: jan31 + 2, n: 1 },
    ]);
    expect(Number(await ctx.redis.hget(ctx.keys.account(m.id), 'avail'))).toBe(1000 - 5 * 10);
  });

  it('refuses a draw inside the cooldown with the seconds left, and accepts it the millisecond the cooldown ends', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    const l = await createLottery(ctx, admin, { cost: 10, cooldownSeconds: 30, prizes: [{ name: 'Nothing', kind: 'none', weight: 1 }] });
    const t = at('2026-03-10T04:00:00.000Z');
    expect((await draw(ctx, m, l.id)).statusCode).toBe(201);
    ctx.app.lottery.clock = () => t + 1_000;
    const early = expectError(await draw(ctx, m, l.id), 409, 'LOTTERY_COOLDOWN') as unknown as { retryAfterSeconds: number };
    expect(early.retryAfterSeconds).toBe(29);
    ctx.app.lottery.clock = () => t + 29_999;
    const late = expectError(await draw(ctx, m, l.id), 409, 'LOTTERY_COOLDOWN') as unknown as { retryAfterSeconds: number };
    expect(late.retryAfterSeconds).toBe(1);
    ctx.app.lottery.clock = () => t + 30_000;
    expect((await draw(ctx, m, l.id)).statusCode).toBe(201);
  });
});
