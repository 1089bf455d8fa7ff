/**
 * Reminders: points about to expire are announced 7, 3 and 1 day(s) ahead, each threshold once
 * per member and expiry day even when two reminder runs race; the check-in reminder follows its
 * rule.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newOpId } from '../src/points/idempotency.ts';
import { ReminderService } from '../src/reminders/service.ts';
import { createRedis } from '../src/redis/client.ts';
import { waitUntil } from './crash/procs.ts';
import { createTestContext, type TestContext } from './support/context.ts';

const DAY = 86_400_000;
const T0 = 1_900_000_000_000;

let ctx: TestContext;
let runners: ReminderService[];
beforeAll(async () => {
  ctx = await createTestContext();
  // two independent runners with their own connections, as two worker processes would have
  runners = [0, 1].map(
    () =>
      new ReminderService({
        sql: ctx.sql,
        redis: createRedis(ctx.env.REDIS_URL, 'worker'),
        keys: ctx.keys,
        pushes: ctx.app.pushes,
        checkins: ctx.app.checkins,
        timeZone: ctx.env.BUSINESS_TIMEZONE,
      }),
  );
});
afterAll(async () => ctx?.close());

async function credit(userId: number, points: number, lifetimeMs: number, nowMs: number) {
  const { redis, keys } = ctx;
  const opId = newOpId();
  await ctx.app.points.hydrate(userId);
  await redis.pmEarn(
    keys.account(userId), keys.lotsByExpiry(userId), keys.lotRemaining(userId), keys.idem(userId, opId),
    keys.dailyCap(userId, 'grant'), keys.outboxOf(userId), keys.expiryIndexOf(userId),
    opId, userId, points, 'grant', '0', 0, 0, lifetimeMs, 'h', 3600, nowMs, '{}', opId, 0, '{"tiers":[0],"earn":[1000],"applyTier":0,"campaign":1000,"lifetime":1}',
  );
}

/**
 * Every command Redis executes from now on (scripts' own calls included), as argument lists:
 * MONITOR on a raw socket, since ioredis's monitor mode can trip over its own command queue.
 */
async function monitorRedis(): Promise<{ commands(): string[][]; stop(): void }> {
  const url = new URL(ctx.env.REDIS_URL);
  const socket = connect(Number(url.port || 6379), url.hostname);
  await once(socket, 'connect');
  let buf = '';
  const lines: string[] = [];
  socket.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    const parts = buf.split('\r\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  socket.write('MONITOR\r\n');
  await waitUntil('MONITOR to start', async () => lines.includes('+OK'), 5_000, 10);
  return {
    commands: () =>
      lines.filter((l) => l.startsWith('+') && l !== '+OK').map((l) => [...l.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1])),
    stop: () => socket.destroy(),
  };
}

const remindersOf = (userId: number) =>
  ctx.sql<Array<{ type: string; data: Record<string, string> }>>`
    SELECT type, data FROM push_records WHERE user_id = ${userId} ORDER BY id`;

describe('expiry reminders', () => {
  it('sends 7, 3 and 1 day reminders once each, however many runs race', async () => {
    const [a, b, c] = await ctx.createMembers(3);
    await credit(a.id, 100, Math.round(6.5 * DAY), T0);
    await credit(b.id, 40, 10 * DAY, T0); // due for the 7-day reminder only from T0 + 3 days
    await credit(c.id, 30, Math.round(0.5 * DAY), T0); // first seen inside 1 day: only that reminder
    await ctx.app.devices.register(a.id, 'android', `tok-${a.id}`);

    for (const at of [T0, T0 + 1000, T0 + 4 * DAY, T0 + 4 * DAY + 5000, T0 + 6 * DAY, T0 + 6 * DAY + 1]) {
      await Promise.all(runners.map((r) => r.run({ nowMs: at })));
    }
    const forA = await remindersOf(a.id);
    expect(forA.map((r) => r.data.threshold)).toEqual(['7', '3', '1']);
    expect(forA.every((r) => r.type === 'expiry-reminder' && r.data.points === '100')).toBe(true);
    expect((await remindersOf(b.id)).map((r) => r.data.threshold)).toEqual(['7']);
    expect((await remindersOf(c.id)).map((r) => r.data.threshold)).toEqual(['1']);
    // the member with a device has a send job queued for each; the others got inbox records
    const [{ pending }] = await ctx.sql`
      SELECT count(*)::int AS pending FROM push_records WHERE user_id = ${a.id} AND status = 'pending'`;
    expect(pending).toBe(3);
  });

  it('reminds each due member once when members and lots span several pages, every read bounded', async () => {
    const PAGE = 2;
    const T1 = T0 + 100 * DAY; // every lot of the test above has expired by then
    const paged = new ReminderService({
      sql: ctx.sql, redis: createRedis(ctx.env.REDIS_URL, 'worker'), keys: ctx.keys, pushes: ctx.app.pushes, pageSize: PAGE,
      checkins: ctx.app.checkins, timeZone: ctx.env.BUSINESS_TIMEZONE,
    });
    // five members of one partition: its expiry index holds more than two pages
    const pool = await ctx.createMembers(60);
    const partition = ctx.keys.partitionOf(pool[0].id);
    const due = pool.filter((m) => ctx.keys.partitionOf(m.id) === partition).slice(0, 5);
    expect(due).toHaveLength(5);
    for (const m of due) await credit(m.id, 10, 2 * DAY, T1);
    // one of them with lots over several pages, all expiring on one day
    for (let i = 0; i < 2 * PAGE + 1; i++) await credit(due[0].id, 1, 2 * DAY + i, T1);

    const monitor = await monitorRedis();
    try {
      await paged.run({ nowMs: T1 + 1000 });
      await paged.run({ nowMs: T1 + 2000 });
    } finally {
      monitor.stop();
    }
    const reads = monitor.commands().filter((args) => {
      const key = args[1] ?? '';
      return /^z(rev)?range/i.test(args[0]) && key.startsWith(`${ctx.keys.prefix}:`) && /:(expidx|lotz:)/.test(key);
    });

    for (const m of due) {
      const sent = await remindersOf(m.id);
      expect(sent.map((r) => r.data.threshold)).toEqual(['3']);
      expect(sent[0].data.points).toBe(m === due[0] ? String(10 + 2 * PAGE + 1) : '10');
    }
    expect(reads.some((a) => a[1].endsWith(':expidx'))).toBe(true);
    expect(reads.some((a) => a[1].includes(':lotz:'))).toBe(true);
    for (const args of reads) {
      const limit = args.findIndex((a) => a.toUpperCase() === 'LIMIT');
      expect(limit, args.join(' ')).toBeGreaterThan(0);
      expect(Number(args[limit + 2]), args.join(' ')).toBeLessThanOrEqual(PAGE + 1);
    }
  });

  it('reminds members with a device to check in, once a day, unless they already did, naming their streak', async () => {
    const [x, y, z] = await ctx.createMembers(3);
    await ctx.app.devices.register(x.id, 'ios', `tok-${x.id}`);
    await ctx.app.devices.register(y.id, 'web', `tok-${y.id}`);
    await ctx.app.devices.register(z.id, 'android', `tok-${z.id}`);
    const checkin = await ctx.app.inject({ method: 'POST', url: '/v1/me/checkins', headers: { authorization: `Bearer ${y.token}` } });
    expect(checkin.statusCode).toBe(201);
    // z checked in on each of the last 6 days: checking in today makes a 7-day streak (50 points)
    const today = Math.floor(Date.now() / DAY);
    await ctx.app.points.hydrate(z.id);
    await ctx.redis.hset(ctx.keys.streak(z.id), 'last', today - 1, 'streak', 6, 'longest', 6);
    await ctx.sql`UPDATE reminder_rules SET enabled = true, params = '{"hourUtc":0}' WHERE kind = 'checkin'`;
    try {
      await Promise.all(runners.map((r) => r.run()));
      await runners[0].run();
      const rows = await ctx.sql<Array<{ userId: number; body: string }>>`
        SELECT user_id AS "userId", body FROM push_records
        WHERE type = 'checkin-reminder' AND user_id = ANY(${[x.id, y.id, z.id]}::bigint[]) ORDER BY user_id`;
      expect(rows).toEqual([
        { userId: x.id, body: 'Check in today for 10 points' },
        { userId: z.id, body: '7-day streak — check in today for 50 points' },
      ]);
    } finally {
      await ctx.sql`UPDATE reminder_rules SET enabled = false WHERE kind = 'checkin'`;
    }
  });
});
