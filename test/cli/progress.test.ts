/**
 * Progress bars: drawn on a terminal, silent on a pipe; the rebuild reports every member page and
 * each stage after it, ending complete.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressBar } from '../../src/cli/progress.ts';
import { rebuildFromPostgres, type RebuildProgress } from '../../src/recovery/rebuild.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

/** A stderr stand-in: what was written, and whether it claims to be a terminal. */
function fakeStderr(isTTY: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 100, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  let out = '';
  stream.on('data', (c) => (out += String(c)));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => out };
}

describe('progress bar', () => {
  it('draws the label, stage and counts when stderr is a terminal', () => {
    const err = fakeStderr(true);
    const bar = progressBar('seed', err.stream);
    bar.update(0, 10, 'grants');
    bar.update(5, 10, 'grants');
    bar.update(10, 10, 'grants');
    bar.stop();
    expect(err.text()).toMatch(/seed grants .*10\/10/);
  });

  it('writes nothing when stderr is not a terminal', () => {
    const err = fakeStderr(false);
    const bar = progressBar('seed', err.stream);
    bar.update(3, 10, 'grants');
    bar.stop();
    expect(err.text()).toBe('');
  });
});

describe('rebuild progress', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(async () => ctx?.close());

  it('counts members against their total, then each stage, and ends complete', async () => {
    const members = await ctx.createMembers(3);
    for (const m of members) await ctx.grant(m.id, 10);
    const seen: RebuildProgress[] = [];
    const r = await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600, onProgress: (p) => seen.push(p) });
    expect(r.members).toBe(3);
    const memberSteps = seen.filter((p) => p.stage === 'members');
    expect(memberSteps[0]).toEqual({ stage: 'members', done: 0, total: 3 });
    expect(memberSteps.at(-1)).toEqual({ stage: 'members', done: 3, total: 3 });
    const stages = [...new Set(seen.map((p) => p.stage))];
    expect(stages).toEqual(['members', 'goods', 'lotteries', 'transfers', 'op records', 'streaks', 'leaderboards', 'streams']);
    expect(seen.at(-1)).toEqual({ stage: 'streams', done: 7, total: 7 });
    for (const p of seen) expect(p.done).toBeLessThanOrEqual(p.total);
  });
});
