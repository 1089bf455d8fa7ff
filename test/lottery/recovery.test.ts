/**
 * Draws through failures: a prize hold left by an API that died between the saga's steps is
 * settled by the sweeper (released if never charged — and a late charge of it refused — or
 * confirmed if charged); after Redis is lost, rebuild restores prize stock from Postgres
 * (stock − persisted wins), members' cooldowns and daily counts, and replays of acknowledged
 * draws; reconcile finds the draws' ops (spend, prize earn, goods prize) without drift.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHash, newOpId, requestHash } from '../../src/points/idempotency.ts';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { Reconciler } from '../../src/recovery/reconcile.ts';
import { rebuildFromPostgres } from '../../src/recovery/rebuild.ts';
import { createRedis } from '../../src/redis/client.ts';
import { deleteKeys } from '../../src/redis/delete-prefix.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { prizeOf } from '../../src/lottery/store.ts';
import { available, createLottery, draw, holds, liveStock, type Member } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let admin: Member;

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

/** The first saga step alone, as an API that died right after it leaves it. */
async function reserveOnly(userId: number, lotteryId: number, key: string) {
  const { redis, keys, env } = ctx;
  const kh = keyHash(key);
  const hash = requestHash('lottery-draw', { lotteryId });
  const reply = await redis.pmLotteryReserve(
    keys.lottery(lotteryId), keys.lotteryStock(lotteryId), keys.lotteryHolds(lotteryId), keys.lotteryHoldDeadlines(lotteryId),
    newOpId(), userId, hash, env.RESERVATION_TIMEOUT_MS, '', randomBytes(8).toString('hex'), kh, randomInt(2 ** 48 - 1),
  );
  expect(Number(reply[0])).toBe(1);
  return { kh, hash, hold: JSON.parse(String(reply[1])) as { o: string; t: string; c: number; p: { id: number; name: string; kind: string; points?: number } } };
}

describe('the sweeper settles prize holds left between steps', () => {
  it('releases a hold never charged, puts its unit back, and refuses a late charge of it', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const l = await createLottery(ctx, admin, { cost: 10, prizes: [{ name: 'Limited', kind: 'points', points: 40, weight: 1, stock: 2 }] });
    const prize = l.prizes[0].id;
    const { kh, hash, hold } = await reserveOnly(m.id, l.id, 'died-before-charge');
    expect(await liveStock(ctx, l.id, prize)).toBe(1);

    expect(await ctx.app.lottery.sweep()).toEqual({ confirmed: 0, released: 0 }); // not due yet
    expect(await ctx.app.lottery.sweep(-60_000)).toEqual({ confirmed: 0, released: 1 });
    expect(await liveStock(ctx, l.id, prize)).toBe(1 + 1);
    expect(await holds(ctx, l.id)).toBe(0);

    const { keys, env } = ctx;
    const late = await ctx.redis.pmLotteryDraw(
      keys.account(m.id), keys.lotsByExpiry(m.id), keys.lotRemaining(m.id), keys.idem(m.id, kh), keys.drawState(m.id, l.id),
      keys.outboxOf(m.id), keys.expiryIndexOf(m.id), hold.o, m.id, hash, env.IDEMPOTENCY_TTL_SECONDS, '', hold.t, kh, l.id, hold.c,
      0, 0, 0, JSON.stringify(hold.p), 86_400_000, '',
    );
    expect(late).toEqual([-5]);
    expect(await available(ctx, m)).toBe(100);

    // the member's retry with the same key draws afresh
    const retry = await draw(ctx, m, l.id, 'died-before-charge');
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.json().available).toBe(100 - 10 + 40);
  });

  it('confirms a hold whose draw was charged before the API died', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const l = await createLottery(ctx, admin, { cost: 10, prizes: [{ name: 'Limited', kind: 'points', points: 40, weight: 1, stock: 2 }] });
    // the saga's process dies after the charge, before its confirm (which the answer does not wait
    // for): the hold, then the member's side charged with it (on a cluster, or DRAW_PATH=saga)
    const { kh, hash, hold } = await reserveOnly(m.id, l.id, 'died-before-confirm');
    const { keys, env } = ctx;
    const charged = await ctx.redis.pmLotteryDraw(
      keys.account(m.id), keys.lotsByExpiry(m.id), keys.lotRemaining(m.id), keys.idem(m.id, kh), keys.drawState(m.id, l.id),
      keys.outboxOf(m.id), keys.expiryIndexOf(m.id), hold.o, m.id, hash, env.IDEMPOTENCY_TTL_SECONDS, '', hold.t, kh, l.id, hold.c,
      0, 0, 0, JSON.stringify(prizeOf(hold.p as Parameters<typeof prizeOf>[0])), 86_400_000, '',
    );
    expect(Number(charged[0])).toBe(1);
    expect(await holds(ctx, l.id)).toBe(1);
    expect(await ctx.app.lottery.sweep(-60_000)).toEqual({ confirmed: 1, released: 0 });
    expect(await holds(ctx, l.id)).toBe(0);
    expect(await liveStock(ctx, l.id, l.prizes[0].id)).toBe(1);
    expect(await available(ctx, m)).toBe(130);
  });
});

describe('after Redis is lost', () => {
  it('rebuilds prize stock (stock − persisted wins), cooldowns and daily counts, and replays acknowledged draws', async () => {
    const members = await ctx.createMembers(6);
    for (const m of members) await ctx.grant(m.id, 1000);
    const l = await createLottery(ctx, admin, {
      cost: 10,
      cooldownSeconds: 3600,
      prizes: [
        { name: 'Jackpot', kind: 'points', points: 100, weight: 1_000_000, stock: 4 },
        { name: 'Nothing', kind: 'none', weight: 1 },
      ],
    });
    const daily = await createLottery(ctx, admin, { cost: 5, dailyDrawLimit: 2, prizes: [{ name: 'Nothing', kind: 'none', weight: 1 }] });
    const first = await Promise.all(members.map((m) => draw(ctx, m, l.id, `before-loss-${m.id}`)));
    expect(first.map((r) => r.statusCode)).toEqual(Array(6).fill(201));
    for (let i = 0; i < 2; i++) expect((await draw(ctx, members[0], daily.id)).statusCode).toBe(201);
    await pipeline.drain();
    await pipeline.stop();
    const balances = await Promise.all(members.map((m) => available(ctx, m)));

    await deleteKeys(ctx.redis, ctx.keys.prefix);
    const r = await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    // the wipe took the epoch with it: a write-gate check between the wipe and the rebuild closed
    // the API's writes; they reopen at its next check, which the rebuilt epoch passes
    expect(await ctx.app.redisGate.untilWritable(10_000)).toBe(true);
    pipeline = await ctx.startPipeline();
    expect(r.lotteries).toBeGreaterThanOrEqual(2);
    expect(r.drawStates).toBe(7);

    expect(await liveStock(ctx, l.id, l.prizes[0].id)).toBe(0);
    expect(await Promise.all(members.map((m) => available(ctx, m)))).toEqual(balances);
    // the cooldown and the day's count survived the loss
    expectError(await draw(ctx, members[0], l.id), 409, 'LOTTERY_COOLDOWN');
    expectError(await draw(ctx, members[0], daily.id), 409, 'DAILY_LIMIT_REACHED');
    // an acknowledged draw retried with its key replays (the record rebuilt from the ledger)
    for (const [i, m] of members.entries()) {
      const retry = await draw(ctx, m, l.id, `before-loss-${m.id}`);
      expect(retry.statusCode).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.json()).toEqual(first[i].json());
    }
    expect(await Promise.all(members.map((m) => available(ctx, m)))).toEqual(balances);
  });

  it('leaves reconcile nothing to find: draws are ordinary spend and earn ops, a goods prize sells no catalog unit', async () => {
    const members = await ctx.createMembers(10);
    for (const m of members) await ctx.grant(m.id, 500);
    const mug = await ctx.createGoods({ pointsPrice: 100, stock: 5 });
    const l = await createLottery(ctx, admin, {
      cost: 15,
      prizes: [
        { name: 'Mug', kind: 'goods', goodsId: mug.id, weight: 1, stock: 3 },
        { name: '25 points', kind: 'points', points: 25, weight: 1 },
        { name: 'Nothing', kind: 'none', weight: 1 },
      ],
    });
    const answers = await Promise.all(members.flatMap((m) => [draw(ctx, m, l.id), draw(ctx, m, l.id), draw(ctx, m, l.id)]));
    expect(answers.every((a) => a.statusCode === 201)).toBe(true);
    await pipeline.drain();
    const connection = createRedis(ctx.env.REDIS_URL, 'worker');
    const queue = new Queue(PERSIST_QUEUE, { connection, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
    try {
      const report = await new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }).run({ repair: false, confirmDelayMs: 100 });
      expect({
        drifting: report.drifting, negative: report.negative, lotMismatch: report.lotMismatch,
        mirrorDrift: report.mirrorDrift, stockDrift: report.stockDrift,
      }).toEqual({ drifting: [], negative: [], lotMismatch: [], mirrorDrift: [], stockDrift: [] });
    } finally {
      await queue.close();
      connection.disconnect();
    }
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM redemptions WHERE goods_id = ${mug.id} AND source = 'lottery'`;
    expect(n).toBe(answers.filter((a) => a.json().prize.kind === 'goods').length);
    expect(Number(await ctx.redis.hget(ctx.keys.goods(mug.id), 'stock'))).toBe(5);
  });
});
