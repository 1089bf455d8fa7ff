/**
 * Points transfers through the API: both balances and both ledgers, the receiver's lots keeping
 * the expiries of the sender's lots they came from (not multiplied, not toward the tier), the
 * daily maximum exact under parallel transfers and counted per business day, refusals that write
 * nothing, replays, the history, and transfers left out of task progress.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dayNumber } from '../../src/engagement/business-day.ts';
import { occurrencesOfOp } from '../../src/tasks/progress.ts';
import { expectError, snapshot } from '../api/helpers.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { auth, available, creditLot, liveLots, members, pendingCount, send, type Member } from './support.ts';

const DAY_MS = 86_400_000;
const TZ = 'Asia/Shanghai';

let ctx: TestContext;
let pipeline: Pipeline;

beforeAll(async () => {
  ctx = await createTestContext({ TRANSFER_DAILY_MAX: 1000, BUSINESS_TIMEZONE: TZ });
  pipeline = await ctx.startPipeline();
});
afterAll(async () => ctx?.close());
afterEach(() => {
  ctx.app.transfers.clock = null;
});

async function ledgerOf(m: Member) {
  return ctx.sql<Array<{ opId: string; kind: string; delta: number; bizType: string; bizId: string }>>`
    SELECT op_id AS "opId", kind, delta, biz_type AS "bizType", biz_id AS "bizId" FROM ledger_entries
    WHERE user_id = ${m.id} AND biz_type LIKE 'transfer%' ORDER BY id`;
}

async function history(m: Member, query = '') {
  const res = await ctx.app.inject({ url: `/v1/me/transfers${query}`, headers: auth(m) });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { items: Array<Record<string, unknown>>; nextCursor: string | null };
}

describe('a transfer', () => {
  it('moves the points: both balances at once, both ledgers, the transfers row and both histories once persisted', async () => {
    const [alice, bob] = await members(ctx, 2);
    await ctx.grant(alice.id, 500);
    await ctx.grant(bob.id, 100);

    const res = await send(ctx, alice, { toUsername: bob.username, amount: 120, note: 'lunch' });
    expect(res.statusCode, res.body).toBe(201);
    const t = res.json() as { transferId: string; toUsername: string; amount: number; available: number; createdAt: string };
    expect(t).toMatchObject({ toUsername: bob.username, amount: 120, available: 380 });
    expect(t.transferId).toMatch(/^[0-9a-f]{32}$/);
    expect(await available(ctx, alice)).toBe(380);
    expect(await available(ctx, bob)).toBe(220);
    expect(await pendingCount(ctx)).toBe(0);

    await pipeline.drain();
    expect(await ledgerOf(alice)).toEqual([{ opId: t.transferId, kind: 'spend', delta: -120, bizType: 'transfer_out', bizId: t.transferId }]);
    expect(await ledgerOf(bob)).toEqual([{ opId: `${t.transferId}-in`, kind: 'earn', delta: 120, bizType: 'transfer_in', bizId: t.transferId }]);
    const [row] = await ctx.sql`SELECT from_user_id, to_user_id, amount, note, completed_at FROM transfers WHERE id = ${t.transferId}`;
    expect(row).toMatchObject({ from_user_id: alice.id, to_user_id: bob.id, amount: 120, note: 'lunch' });
    expect(row.completed_at).toBeInstanceOf(Date);
    const [mirror] = await ctx.sql<Array<{ a: number; b: number }>>`
      SELECT (SELECT available FROM point_accounts WHERE user_id = ${alice.id}) AS a,
             (SELECT available FROM point_accounts WHERE user_id = ${bob.id}) AS b`;
    expect(mirror).toEqual({ a: 380, b: 220 });

    const common = { transferId: t.transferId, amount: 120, note: 'lunch', status: 'completed', createdAt: t.createdAt };
    expect((await history(alice)).items).toEqual([{ ...common, direction: 'sent', counterparty: bob.username, completedAt: expect.any(String) }]);
    expect((await history(bob)).items).toEqual([{ ...common, direction: 'received', counterparty: alice.username, completedAt: expect.any(String) }]);
  });

  it('runs as one script on this single-node Redis; a receiver not in Redis yet is loaded and credited before the answer', async () => {
    expect(ctx.app.transfers.path).toBe('atonce');
    const [alice, bob] = await members(ctx, 2);
    await ctx.grant(alice.id, 200);
    await ctx.grant(bob.id, 50);
    await pipeline.drain();
    // bob's account leaves Redis (as after an eviction of idle members): the script cannot credit
    // him, leaves the credit pending, and the API loads him from Postgres and makes it
    await ctx.redis.del(ctx.keys.account(bob.id), ctx.keys.lotsByExpiry(bob.id), ctx.keys.lotRemaining(bob.id));
    const res = await send(ctx, alice, { toUsername: bob.username, amount: 30 });
    expect(res.statusCode, res.body).toBe(201);
    expect(await pendingCount(ctx)).toBe(0);
    expect(await available(ctx, bob)).toBe(80);
    expect(await available(ctx, alice)).toBe(170);
    await pipeline.drain();
    const t = res.json() as { transferId: string };
    expect(await ledgerOf(bob)).toEqual([{ opId: `${t.transferId}-in`, kind: 'earn', delta: 30, bizType: 'transfer_in', bizId: t.transferId }]);
  });

  it('finds a username unknown at first once a member has it (only found receivers are remembered)', async () => {
    const [alice, later] = await members(ctx, 2);
    await ctx.grant(alice.id, 100);
    const name = `later_${later.id}`;
    expectError(await send(ctx, alice, { toUsername: name, amount: 5 }), 404, 'USER_NOT_FOUND');
    await ctx.sql`UPDATE users SET username = ${name} WHERE id = ${later.id}`;
    expect((await send(ctx, alice, { toUsername: name, amount: 5 })).statusCode).toBe(201);
    expect(await available(ctx, later)).toBe(5);
  });

  it("gives the receiver one lot per expiry of the sender's lots it came from, unmultiplied and not toward the tier", async () => {
    const [sender, receiver] = await members(ctx, 2);
    await creditLot(ctx, sender, 100, 30);
    await creditLot(ctx, sender, 100, 365);
    const [[, soon], [, late]] = await liveLots(ctx, sender);
    expect(late - soon).toBeGreaterThan(300 * DAY_MS);
    // a Gold receiver: a multiplied credit would pay 1.1 ×
    expect(await available(ctx, receiver)).toBe(0);
    await ctx.redis.hset(ctx.keys.account(receiver.id), 'tier', 2);

    const res = await send(ctx, sender, { toUsername: receiver.username, amount: 150 });
    expect(res.statusCode, res.body).toBe(201);
    expect(await liveLots(ctx, receiver)).toEqual([[100, soon], [50, late]]);
    expect(await liveLots(ctx, sender)).toEqual([[50, late]]);
    const balance = (await ctx.app.inject({ url: '/v1/me/points', headers: auth(receiver) })).json();
    expect(balance).toMatchObject({ available: 150, totalEarned: 0 });
    expect(await ctx.redis.hget(ctx.keys.account(receiver.id), 'tier')).toBe('2');

    await pipeline.drain();
    const lots = await ctx.sql<Array<{ amount: number; remaining: number; expiresAt: Date }>>`
      SELECT amount, remaining, expires_at AS "expiresAt" FROM point_lots WHERE user_id = ${receiver.id} ORDER BY expires_at`;
    expect(lots.map((l) => [l.amount, l.remaining, l.expiresAt.getTime()])).toEqual([[100, 100, soon], [50, 50, late]]);
    const [acct] = await ctx.sql`SELECT available, total_earned FROM point_accounts WHERE user_id = ${receiver.id}`;
    expect(acct).toEqual({ available: 150, total_earned: 0 });
  });
});

describe('the daily maximum (TRANSFER_DAILY_MAX = 1000 here)', () => {
  it('accepts exactly what fits of 50 parallel transfers from one sender, and says what is left', async () => {
    const [sender, ...receivers] = await members(ctx, 6);
    await ctx.grant(sender.id, 10_000);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => send(ctx, sender, { toUsername: receivers[i % receivers.length].username, amount: 30 })),
    );
    const accepted = answers.filter((r) => r.statusCode === 201);
    expect(accepted.length).toBe(33);
    for (const r of answers.filter((a) => a.statusCode !== 201)) {
      const body = expectError(r, 409, 'TRANSFER_LIMIT_REACHED') as unknown as { remainingToday: number; dailyMax: number };
      expect(body).toMatchObject({ remainingToday: 10, dailyMax: 1000 });
    }
    expect(await available(ctx, sender)).toBe(10_000 - 990);
    const received = await Promise.all(receivers.map((m) => available(ctx, m)));
    expect(received.reduce((a, b) => a + b, 0)).toBe(990);

    expect((await send(ctx, sender, { toUsername: receivers[0].username, amount: 10 })).statusCode).toBe(201);
    const over = expectError(await send(ctx, sender, { toUsername: receivers[0].username, amount: 1 }), 409, 'TRANSFER_LIMIT_REACHED');
    expect(over).toMatchObject({ remainingToday: 0 });
    expect(await available(ctx, sender)).toBe(9000);
  });

  it(`counts per business day in ${TZ}: a new day starts at its midnight there (injected clock)`, async () => {
    const [sender, receiver] = await members(ctx, 2);
    await ctx.grant(sender.id, 5000);
    // one minute before the next midnight in Shanghai (16:00 UTC), then two minutes later
    const today = dayNumber(TZ, Date.now());
    const midnight = (today + 1) * DAY_MS - 8 * 3_600_000;
    ctx.app.transfers.clock = () => midnight - 60_000;
    expect((await send(ctx, sender, { toUsername: receiver.username, amount: 1000 })).statusCode).toBe(201);
    expectError(await send(ctx, sender, { toUsername: receiver.username, amount: 1 }), 409, 'TRANSFER_LIMIT_REACHED');
    ctx.app.transfers.clock = () => midnight + 60_000;
    expect((await send(ctx, sender, { toUsername: receiver.username, amount: 1000 })).statusCode).toBe(201);
    expectError(await send(ctx, sender, { toUsername: receiver.username, amount: 1 }), 409, 'TRANSFER_LIMIT_REACHED');
    expect(await available(ctx, receiver)).toBe(2000);

    await pipeline.drain();
    const days = await ctx.sql<Array<{ day: number }>>`SELECT day FROM transfers WHERE from_user_id = ${sender.id} ORDER BY created_at`;
    expect(days.map((d) => d.day)).toEqual([today, today + 1]);
  });
});

describe('refusals', () => {
  it('refuses a transfer to oneself, to an unknown member, beyond the balance or the day, and bad input, writing nothing', async () => {
    const [sender, receiver] = await members(ctx, 2);
    await ctx.grant(sender.id, 300);
    await available(ctx, receiver);
    await pipeline.drain();
    const before = await snapshot(ctx, [sender.id, receiver.id]);
    const [{ n: rowsBefore }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM transfers`;

    const to = receiver.username;
    expectError(await send(ctx, sender, { toUsername: sender.username, amount: 10 }), 400, 'TRANSFER_TO_SELF');
    expectError(await send(ctx, sender, { toUsername: 'nobody_at_all', amount: 10 }), 404, 'USER_NOT_FOUND');
    expectError(await send(ctx, sender, { toUsername: to, amount: 301 }), 409, 'INSUFFICIENT_POINTS');
    expect(expectError(await send(ctx, sender, { toUsername: to, amount: 1001 }), 409, 'TRANSFER_LIMIT_REACHED')).toMatchObject({
      remainingToday: 1000,
    });
    for (const body of [
      { toUsername: to, amount: 0 },
      { toUsername: to, amount: -5 },
      { toUsername: to, amount: 1.5 },
      { toUsername: to, amount: '10' },
      { toUsername: to },
      { amount: 10 },
      { toUsername: 'no spaces', amount: 10 },
      { toUsername: to, amount: 10, note: 'x'.repeat(201) },
      { toUsername: to, amount: 10, note: 'line\nbreak' },
      { toUsername: to, amount: 10, note: '' },
      { toUsername: to, amount: 10, extra: true },
    ]) {
      expectError(await send(ctx, sender, body), 400, 'VALIDATION_FAILED');
    }
    const noKey = await ctx.app.inject({ method: 'POST', url: '/v1/points/transfers', headers: auth(sender), payload: { toUsername: to, amount: 10 } });
    expectError(noKey, 400, 'IDEMPOTENCY_KEY_REQUIRED');
    const anonymous = await ctx.app.inject({ method: 'POST', url: '/v1/points/transfers', headers: { 'idempotency-key': 'k' }, payload: { toUsername: to, amount: 10 } });
    expectError(anonymous, 401, 'UNAUTHORIZED');

    await pipeline.drain();
    expect(await snapshot(ctx, [sender.id, receiver.id])).toEqual(before);
    const [{ n: rowsAfter }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM transfers`;
    expect(rowsAfter).toBe(rowsBefore);
    expect(await pendingCount(ctx)).toBe(0);
  });
});

describe('idempotency', () => {
  it('replays a retried transfer with its key, moves the points once even for 20 at once, and refuses the key with another body', async () => {
    const [sender, receiver] = await members(ctx, 2);
    await ctx.grant(sender.id, 500);
    const first = await send(ctx, sender, { toUsername: receiver.username, amount: 40, note: 'rent' }, 'pay-rent');
    expect(first.statusCode).toBe(201);
    const again = await send(ctx, sender, { toUsername: receiver.username, amount: 40, note: 'rent' }, 'pay-rent');
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expectError(await send(ctx, sender, { toUsername: receiver.username, amount: 41, note: 'rent' }, 'pay-rent'), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await send(ctx, sender, { toUsername: receiver.username, amount: 40 }, 'pay-rent'), 422, 'IDEMPOTENCY_KEY_REUSED');

    const burst = await Promise.all(Array.from({ length: 20 }, () => send(ctx, sender, { toUsername: receiver.username, amount: 7 }, 'burst')));
    expect(burst.map((r) => r.statusCode)).toEqual(Array(20).fill(201));
    expect(new Set(burst.map((r) => r.json().transferId)).size).toBe(1);
    expect(await available(ctx, sender)).toBe(500 - 40 - 7);
    expect(await available(ctx, receiver)).toBe(47);
    await pipeline.drain();
    expect((await ledgerOf(receiver)).map((r) => r.delta).sort((x, y) => x - y)).toEqual([7, 40]);
  });
});

describe('history', () => {
  it('pages sent and received transfers newest first', async () => {
    const [a, b, c] = await members(ctx, 3);
    await ctx.grant(a.id, 500);
    await ctx.grant(b.id, 500);
    const made: string[] = [];
    for (const [from, to, amount] of [[a, b, 1], [b, a, 2], [a, c, 3], [c, a, 1], [b, a, 5]] as const) {
      if (from === c) await ctx.grant(c.id, 10);
      const r = await send(ctx, from, { toUsername: to.username, amount });
      expect(r.statusCode, r.body).toBe(201);
      made.push(r.json().transferId);
    }
    await pipeline.drain();
    const seen: Array<Record<string, unknown>> = [];
    let cursor: string | null = null;
    do {
      const page = await history(a, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.map((i) => i.transferId)).toEqual([...made].reverse());
    expect(seen.map((i) => [i.direction, i.amount])).toEqual([['received', 5], ['received', 1], ['sent', 3], ['received', 2], ['sent', 1]]);
    expectError(await ctx.app.inject({ url: '/v1/me/transfers?cursor=not-a-cursor', headers: auth(a) }), 400, 'VALIDATION_FAILED');
  });
});

describe('tasks', () => {
  it('counts transfers neither as points earned nor as points spent', () => {
    const base = { id: 1, opId: 'x', userId: 1, bizId: 'x', at: Date.now() };
    expect(occurrencesOfOp({ ...base, kind: 'earn', delta: 50, bizType: 'transfer_in' })).toEqual([]);
    expect(occurrencesOfOp({ ...base, kind: 'spend', delta: -50, bizType: 'transfer_out' })).toEqual([]);
  });
});

describe('OpenAPI', () => {
  it('documents both routes with their operation ids and every answer', async () => {
    const doc = (await ctx.app.inject({ url: '/docs/json' })).json() as { paths: Record<string, Record<string, { operationId: string; responses: object }>> };
    expect(doc.paths['/v1/points/transfers'].post.operationId).toBe('transferPoints');
    expect(Object.keys(doc.paths['/v1/points/transfers'].post.responses).sort()).toEqual(['201', '400', '401', '404', '409', '413', '415', '422', '429', '500', '503']);
    expect(doc.paths['/v1/me/transfers'].get.operationId).toBe('listMyTransfers');
  });
});
