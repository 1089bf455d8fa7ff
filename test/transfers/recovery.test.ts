/**
 * Transfers through failures, each crash point placed by running the saga's steps one at a time:
 * the API dead after the debit (the completer credits once; a client retry credits at once), a
 * completer dead between the credit and taking the transfer off the pending set (nothing paid
 * twice), a credit whose idempotency record is gone but whose op is persisted (the ledger says it
 * was made). After Redis is lost, rebuild restores the pending credits and the senders' daily
 * totals; reconcile finds no drift.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHash, requestHash } from '../../src/points/idempotency.ts';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { Reconciler } from '../../src/recovery/reconcile.ts';
import { rebuildFromPostgres } from '../../src/recovery/rebuild.ts';
import { createRedis } from '../../src/redis/client.ts';
import { deleteKeys } from '../../src/redis/delete-prefix.ts';
import { creditKeyHash, type TransferSpec } from '../../src/transfers/service.ts';
import { expectError } from '../api/helpers.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { available, members, pendingCount, send, type Member } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;

beforeAll(async () => {
  ctx = await createTestContext({ TRANSFER_DAILY_MAX: 1000 });
  pipeline = await ctx.startPipeline();
});
afterAll(async () => ctx?.close());

/** The debit alone, with the route's key hash and request hash: what an API that died right after it leaves. */
async function debitOnly(from: Member, to: Member, amount: number, key: string): Promise<TransferSpec> {
  const input = { toUsername: to.username, amount };
  const hash = requestHash('points-transfer', { toUsername: to.username, amount, note: null });
  const { op } = await ctx.app.transfers.debit(from.id, to.id, input, keyHash(key), hash);
  return op.transfer!;
}

async function creditsInLedger(transferId: string): Promise<number> {
  const [{ n }] = await ctx.sql<Array<{ n: number }>>`
    SELECT count(*)::int AS n FROM ledger_entries WHERE op_id = ${`${transferId}-in`}`;
  return n;
}

describe('the API dies after the debit', () => {
  it('leaves the credit pending; the completer makes it once, after the grace and not before', async () => {
    const [sender, receiver] = await members(ctx, 2);
    await ctx.grant(sender.id, 300);
    await available(ctx, receiver);
    const t = await debitOnly(sender, receiver, 120, 'died-after-debit');
    expect(await available(ctx, sender)).toBe(180);
    expect(await available(ctx, receiver)).toBe(0);
    expect(await pendingCount(ctx)).toBe(1);

    expect(await ctx.app.transfers.completePending(60_000)).toEqual({ credited: 0, alreadyCredited: 0, failed: 0 });
    expect(await ctx.app.transfers.completePending(0)).toEqual({ credited: 1, alreadyCredited: 0, failed: 0 });
    expect(await ctx.app.transfers.completePending(0)).toEqual({ credited: 0, alreadyCredited: 0, failed: 0 });
    expect(await available(ctx, receiver)).toBe(120);
    expect(await pendingCount(ctx)).toBe(0);

    await pipeline.drain();
    expect(await creditsInLedger(t.id)).toBe(1);
    const [row] = await ctx.sql`SELECT completed_at FROM transfers WHERE id = ${t.id}`;
    expect(row.completed_at).toBeInstanceOf(Date);
    // the client's retry with its key replays the answer, crediting nothing more
    const retry = await send(ctx, sender, { toUsername: receiver.username, amount: 120 }, 'died-after-debit');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toMatchObject({ transferId: t.id, available: 180 });
    expect(await available(ctx, receiver)).toBe(120);
  });

  it("is credited at once when the client retries with its key, before the completer's turn", async () => {
    const [sender, receiver] = await members(ctx, 2);
    await ctx.grant(sender.id, 300);
    const t = await debitOnly(sender, receiver, 75, 'retried-at-once');
    const retry = await send(ctx, sender, { toUsername: receiver.username, amount: 75 }, 'retried-at-once');
    expect(retry.statusCode).toBe(201);
    expect(retry.json()).toMatchObject({ transferId: t.id, toUsername: receiver.username, amount: 75, available: 225 });
    expect(await available(ctx, receiver)).toBe(75);
    expect(await pendingCount(ctx)).toBe(0);
    expect(await ctx.app.transfers.completePending(0)).toEqual({ credited: 0, alreadyCredited: 0, failed: 0 });
  });
});

describe('the completer dies between its steps', () => {
  it('after the credit and before taking the transfer off the pending set: the next run credits nothing twice', async () => {
    const [sender, receiver] = await members(ctx, 2);
    await ctx.grant(sender.id, 300);
    const t = await debitOnly(sender, receiver, 60, 'completer-died');
    expect(await ctx.app.transfers.credit(t)).toBe(true);
    expect(await pendingCount(ctx)).toBe(1);
    expect(await ctx.app.transfers.credit(t)).toBe(false);
    expect(await ctx.app.transfers.completePending(0)).toEqual({ credited: 0, alreadyCredited: 1, failed: 0 });
    expect(await available(ctx, receiver)).toBe(60);
    expect(await pendingCount(ctx)).toBe(0);
    await pipeline.drain();
    expect(await creditsInLedger(t.id)).toBe(1);
  });

  it('with the credit persisted and its idempotency record gone, the ledger says it was made', async () => {
    const [sender, receiver] = await members(ctx, 2);
    await ctx.grant(sender.id, 300);
    const t = await debitOnly(sender, receiver, 45, 'record-gone');
    await ctx.app.transfers.credit(t);
    await pipeline.drain();
    await ctx.redis.del(ctx.keys.idem(receiver.id, creditKeyHash(t.id)));
    expect(await ctx.app.transfers.completePending(0)).toEqual({ credited: 0, alreadyCredited: 1, failed: 0 });
    expect(await available(ctx, receiver)).toBe(45);
    await pipeline.drain();
    expect(await creditsInLedger(t.id)).toBe(1);
  });
});

describe('after Redis is lost', () => {
  it("rebuilds the pending credits and the senders' daily totals; the completer finishes them; acknowledged transfers replay", async () => {
    const [a, b, c] = await members(ctx, 3);
    await ctx.grant(a.id, 2000);
    await ctx.grant(b.id, 2000);
    const done = await send(ctx, a, { toUsername: c.username, amount: 300 }, 'before-loss');
    expect(done.statusCode).toBe(201);
    const pendingA = await debitOnly(a, c, 200, 'pending-a');
    const pendingB = await debitOnly(b, c, 150, 'pending-b');
    await pipeline.drain();
    await pipeline.stop();
    const balances = { a: await available(ctx, a), b: await available(ctx, b), c: await available(ctx, c) };
    expect(balances).toEqual({ a: 1500, b: 1850, c: 300 });

    await deleteKeys(ctx.redis, ctx.keys.prefix);
    const r = await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    // the wipe took the epoch with it: a write-gate check between the wipe and the rebuild closed
    // the API's writes; they reopen at its next check, which the rebuilt epoch passes
    expect(await ctx.app.redisGate.untilWritable(10_000)).toBe(true);
    pipeline = await ctx.startPipeline();
    expect(r.pendingTransfers).toBe(2);
    // the senders of this file's earlier tests too
    expect(r.transferDays).toBeGreaterThanOrEqual(2);
    expect(await pendingCount(ctx)).toBe(2);
    expect({ a: await available(ctx, a), b: await available(ctx, b), c: await available(ctx, c) }).toEqual(balances);

    // the day's totals survived: a sent 500 of 1000 today, b 150
    expect(expectError(await send(ctx, a, { toUsername: b.username, amount: 501 }), 409, 'TRANSFER_LIMIT_REACHED')).toMatchObject({
      remainingToday: 500,
    });
    expect(expectError(await send(ctx, b, { toUsername: a.username, amount: 851 }), 409, 'TRANSFER_LIMIT_REACHED')).toMatchObject({
      remainingToday: 850,
    });

    expect(await ctx.app.transfers.completePending(0)).toEqual({ credited: 2, alreadyCredited: 0, failed: 0 });
    expect(await available(ctx, c)).toBe(300 + 200 + 150);
    // an acknowledged transfer retried with its key replays from the rebuilt record and the persisted row
    const retry = await send(ctx, a, { toUsername: c.username, amount: 300 }, 'before-loss');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toMatchObject({ transferId: done.json().transferId, toUsername: c.username, amount: 300, createdAt: done.json().createdAt });
    expect(await available(ctx, c)).toBe(650);
    await pipeline.drain();
    for (const t of [pendingA, pendingB]) expect(await creditsInLedger(t.id)).toBe(1);
    const open = await ctx.sql`SELECT id FROM transfers WHERE completed_at IS NULL`;
    expect(open).toEqual([]);
  });
});

describe('reconcile', () => {
  it('finds no drift after transfers, those credited by the completer included; Σ balances is unchanged', async () => {
    const group = await members(ctx, 12);
    for (const m of group) await ctx.grant(m.id, 500);
    const answers = await Promise.all(
      group.flatMap((m, i) => [1, 2, 3].map((k) => send(ctx, m, { toUsername: group[(i + k) % group.length].username, amount: 10 * k + i }))),
    );
    expect(answers.every((a) => a.statusCode === 201)).toBe(true);
    for (let i = 0; i < 4; i++) await debitOnly(group[i], group[i + 4], 33, `left-pending-${i}`);
    await ctx.app.transfers.completePending(0);
    await pipeline.drain();
    const total = (await Promise.all(group.map((m) => available(ctx, m)))).reduce((x, y) => x + y, 0);
    expect(total).toBe(12 * 500);

    const connection = createRedis(ctx.env.REDIS_URL, 'worker');
    const queue = new Queue(PERSIST_QUEUE, { connection, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
    try {
      const report = await new Reconciler({ sql: ctx.sql, redis: ctx.redis, keys: ctx.keys, queue }).run({ repair: false, confirmDelayMs: 100 });
      expect({
        drifting: report.drifting, negative: report.negative, lotMismatch: report.lotMismatch, mirrorDrift: report.mirrorDrift,
      }).toEqual({ drifting: [], negative: [], lotMismatch: [], mirrorDrift: [] });
    } finally {
      await queue.close();
      connection.disconnect();
    }
    const [lots] = await ctx.sql<Array<{ mismatched: number }>>`
      SELECT count(*)::int AS mismatched FROM point_accounts a
      LEFT JOIN (SELECT user_id, SUM(remaining) AS r FROM point_lots GROUP BY user_id) l USING (user_id)
      WHERE a.user_id = ANY(${group.map((m) => m.id)}::bigint[]) AND a.available <> COALESCE(l.r, 0)`;
    expect(lots.mismatched).toBe(0);
  });
});
