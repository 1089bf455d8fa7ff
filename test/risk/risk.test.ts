/**
 * Risk control: the seeded rules (and thresholds set through the admin API) decide in the scripts
 * or next to the writes they watch; a frozen member can move neither points nor stock on any write
 * route, while reads and login keep working; every hit is a risk event with its evidence.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Op } from '../../src/points/op.ts';
import { rebuildFromPostgres } from '../../src/recovery/rebuild.ts';
import { assessTransferFanIn } from '../../src/risk/assess.ts';
import { createTestContext, redeemAs, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';
import { createLottery, draw } from '../lottery/support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let admin: { id: number; token: string };
beforeAll(async () => {
  ctx = await createTestContext({ TRUST_PROXY: '127.0.0.1', RATE_LIMIT_MAX: 100_000 }, { risk: 'seeded' });
  pipeline = await ctx.startPipeline();
  admin = await ctx.admin();
  // an uncapped rule worth 100 points per earn
  await ctx.sql`INSERT INTO earn_rules (action, points, daily_cap_count, daily_cap_points, expiry_days, trigger) VALUES ('big', 100, 0, 0, 365, 'action')`;
  await ctx.app.rules.refresh();
});
afterAll(async () => ctx?.close());

const key = () => randomBytes(8).toString('hex');
const earn = (token: string, action = 'big') =>
  ctx.app.inject({ method: 'POST', url: '/v1/points/earn', headers: { ...bearer(token), 'idempotency-key': key() }, payload: { action } });
const adminCall = (method: 'POST' | 'PUT', url: string, payload: object) =>
  ctx.app.inject({ method, url, headers: { ...bearer(admin.token), 'idempotency-key': key() }, payload });
const setRule = (rule: object) => adminCall('PUT', '/v1/admin/risk/rules', { rules: [rule] });
const SEEDED = {
  DAILY_GAIN: { rule: 'DAILY_GAIN', enabled: true, threshold: 1000, windowSeconds: 86_400, action: 'freeze' },
  EARN_BURST: { rule: 'EARN_BURST', enabled: true, threshold: 10, windowSeconds: 60, action: 'block' },
  HIGH_FREQUENCY: { rule: 'HIGH_FREQUENCY', enabled: true, threshold: 100, windowSeconds: 3600, action: 'flag' },
};
const status = async (userId: number) => (await ctx.sql`SELECT risk_status FROM users WHERE id = ${userId}`)[0].risk_status as string;
const events = (userId: number, rule: string) => ctx.sql`SELECT action, evidence, ip, user_agent FROM risk_events WHERE user_id = ${userId} AND rule = ${rule}`;

describe('IP_MULTI_ACCOUNT', () => {
  it('the sixth account registered from one IP in a day (through TRUST_PROXY and X-Forwarded-For) is flagged, once', async () => {
    const tag = randomBytes(3).toString('hex');
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        remoteAddress: '127.0.0.1',
        headers: { 'x-forwarded-for': '203.0.113.77', 'user-agent': 'farm/1.0' },
        payload: { username: `ip_${tag}_${i}`, email: `ip_${tag}_${i}@example.com`, password: 'a-long-password-1' },
      });
      expect(res.statusCode, res.body).toBe(201);
      ids.push(res.json().user.id);
    }
    const rows = await ctx.sql`SELECT user_id, action, ip, user_agent, evidence FROM risk_events WHERE rule = 'IP_MULTI_ACCOUNT'`;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ user_id: ids[5], action: 'flag', ip: '203.0.113.77', user_agent: 'farm/1.0' });
    expect(rows[0].evidence).toMatchObject({ accounts: 6, threshold: 5 });
    expect(await status(ids[5])).toBe('flagged');
    expect(await status(ids[4])).toBe('normal');
    // another address is its own count
    const other = await ctx.app.inject({
      method: 'POST', url: '/v1/auth/register', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.78' },
      payload: { username: `ip_${tag}_x`, email: `ip_${tag}_x@example.com`, password: 'a-long-password-1' },
    });
    expect(await status(other.json().user.id)).toBe('normal');
  });
});

describe('DAILY_GAIN', () => {
  it('freezes a member atomically with the earn that takes the day over 1,000 points: of 30 concurrent earns exactly 11 land', async () => {
    await setRule({ ...SEEDED.EARN_BURST, enabled: false });
    try {
      const [m] = await ctx.createMembers(1);
      await ctx.grant(m.id, 5000); // grants do not count
      const answers = await Promise.all(Array.from({ length: 30 }, () => earn(m.token)));
      const ok = answers.filter((a) => a.statusCode === 200);
      const frozen = answers.filter((a) => a.statusCode === 403);
      expect(ok).toHaveLength(11);
      expect(frozen).toHaveLength(19);
      for (const f of frozen) expectError(f, 403, 'ACCOUNT_FROZEN');
      const balance = (await ctx.app.inject({ url: '/v1/me/points', headers: bearer(m.token) })).json();
      // the tenth earn takes lifetime earned to 1,000 (Silver): the eleventh is paid ×1.05
      expect(balance.available).toBe(5000 + 1000 + 105);
      await pipeline.drain();
      const rows = await events(m.id, 'DAILY_GAIN');
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ action: 'freeze' });
      expect(rows[0].evidence).toMatchObject({ gained: 1105, threshold: 1000 });
      expect(await status(m.id)).toBe('frozen');
    } finally {
      await setRule(SEEDED.EARN_BURST);
    }
  });
});

describe('EARN_BURST', () => {
  it('the eleventh earn within a minute is 429 with Retry-After, recorded once', async () => {
    await setRule({ ...SEEDED.DAILY_GAIN, enabled: false });
    try {
      const [m] = await ctx.createMembers(1);
      const codes: number[] = [];
      for (let i = 0; i < 12; i++) codes.push((await earn(m.token)).statusCode);
      expect(codes).toEqual([...Array(10).fill(200), 429, 429]);
      const refused = await earn(m.token);
      const body = expectError(refused, 429, 'RATE_LIMITED') as unknown as { retryAfterSeconds: number };
      expect(body.retryAfterSeconds).toBeGreaterThan(0);
      expect(refused.headers['retry-after']).toBeDefined();
      expect(await events(m.id, 'EARN_BURST')).toHaveLength(1);
      expect(await status(m.id)).toBe('normal');
    } finally {
      await setRule(SEEDED.DAILY_GAIN);
    }
  });
});

describe('HIGH_FREQUENCY, DEVICE_SHARING, TRANSFER_FAN_IN', () => {
  it('flags a member past the hour’s count of one action', async () => {
    await setRule({ ...SEEDED.HIGH_FREQUENCY, threshold: 3 });
    try {
      const [m] = await ctx.createMembers(1);
      for (let i = 0; i < 5; i++) expect((await earn(m.token, 'share')).statusCode).toBeLessThan(500);
      await pipeline.drain();
      const rows = await events(m.id, 'HIGH_FREQUENCY');
      expect(rows).toHaveLength(1);
      expect(rows[0].evidence).toMatchObject({ activity: 'share', count: 4, threshold: 3 });
      expect(await status(m.id)).toBe('flagged');
    } finally {
      await setRule(SEEDED.HIGH_FREQUENCY);
    }
  });

  it('flags the second account that registers a device token', async () => {
    const [a, b] = await ctx.createMembers(2);
    const token = `tok-${key()}`;
    const reg = (t: string) => ctx.app.inject({ method: 'POST', url: '/v1/me/devices', headers: bearer(t), payload: { platform: 'android', token } });
    expect((await reg(a.token)).statusCode).toBe(201);
    expect(await status(a.id)).toBe('normal');
    expect((await reg(b.token)).statusCode).toBe(201);
    expect(await status(b.id)).toBe('flagged');
    expect((await events(b.id, 'DEVICE_SHARING'))[0].evidence).toMatchObject({ sharedWith: a.id });
  });

  it('flags a receiver when too many members send to them within the window', async () => {
    await setRule({ rule: 'TRANSFER_FAN_IN', enabled: true, threshold: 2, windowSeconds: 3600, action: 'flag' });
    try {
      const senders = await ctx.createMembers(3);
      const [receiver] = await ctx.createMembers(1);
      const [{ username }] = await ctx.sql`SELECT username FROM users WHERE id = ${receiver.id}`;
      for (const s of senders) {
        await ctx.grant(s.id, 100);
        const res = await ctx.app.inject({
          method: 'POST', url: '/v1/points/transfers', headers: { ...bearer(s.token), 'idempotency-key': key() }, payload: { toUsername: username, amount: 10 },
        });
        expect(res.statusCode, res.body).toBe(201);
      }
      await pipeline.drain();
      expect(await events(receiver.id, 'TRANSFER_FAN_IN')).toHaveLength(1);
      expect(await status(receiver.id)).toBe('flagged');
    } finally {
      await setRule({ rule: 'TRANSFER_FAN_IN', enabled: true, threshold: 10, windowSeconds: 3600, action: 'flag' });
    }
  });

  it('judges every receiver of a persisted batch: flags those over the threshold once per window, not those under it', async () => {
    await setRule({ rule: 'TRANSFER_FAN_IN', enabled: true, threshold: 2, windowSeconds: 3600, action: 'flag' });
    try {
      const senders = await ctx.createMembers(4);
      const [over, under, alsoOver] = await ctx.createMembers(3);
      const name = async (id: number) => (await ctx.sql`SELECT username FROM users WHERE id = ${id}`)[0].username as string;
      const send = async (from: { id: number; token: string }, to: number) => {
        const res = await ctx.app.inject({
          method: 'POST', url: '/v1/points/transfers', headers: { ...bearer(from.token), 'idempotency-key': key() }, payload: { toUsername: await name(to), amount: 5 },
        });
        expect(res.statusCode, res.body).toBe(201);
      };
      for (const s of senders) await ctx.grant(s.id, 100);
      // all in flight before one drain: over and alsoOver get 3 senders, under 2
      await Promise.all([...senders.slice(0, 3).map((s) => send(s, over.id)), ...senders.slice(0, 2).map((s) => send(s, under.id)), ...senders.slice(1, 4).map((s) => send(s, alsoOver.id))]);
      await pipeline.drain();
      expect(await events(over.id, 'TRANSFER_FAN_IN')).toHaveLength(1);
      expect(await events(alsoOver.id, 'TRANSFER_FAN_IN')).toHaveLength(1);
      expect((await events(alsoOver.id, 'TRANSFER_FAN_IN'))[0].evidence).toMatchObject({ senders: 3, threshold: 2 });
      expect(await events(under.id, 'TRANSFER_FAN_IN')).toHaveLength(0);
      expect(await status(under.id)).not.toBe('flagged');
      // a fourth sender within the window: no second event
      await send(senders[3], over.id);
      await pipeline.drain();
      expect(await events(over.id, 'TRANSFER_FAN_IN')).toHaveLength(1);
    } finally {
      await setRule({ rule: 'TRANSFER_FAN_IN', enabled: true, threshold: 10, windowSeconds: 3600, action: 'flag' });
    }
  });

  it('batches judged at once flag a receiver once: the check and its event are one step per receiver', async () => {
    // the transfers persist with the rule off; then four batches naming the same receivers are judged together,
    // as concurrent persist jobs' follow-ups are
    await setRule({ rule: 'TRANSFER_FAN_IN', enabled: false, threshold: 2, windowSeconds: 3600, action: 'flag' });
    try {
      const senders = await ctx.createMembers(3);
      const receivers = await ctx.createMembers(3);
      for (const s of senders) await ctx.grant(s.id, 100);
      const names = await Promise.all(receivers.map(async (r) => (await ctx.sql`SELECT username FROM users WHERE id = ${r.id}`)[0].username as string));
      const sends = senders.flatMap((s) =>
        names.map((toUsername) =>
          ctx.app.inject({ method: 'POST', url: '/v1/points/transfers', headers: { ...bearer(s.token), 'idempotency-key': key() }, payload: { toUsername, amount: 5 } }),
        ),
      );
      for (const res of await Promise.all(sends)) expect(res.statusCode, res.body).toBe(201);
      await pipeline.drain();
      await setRule({ rule: 'TRANSFER_FAN_IN', enabled: true, threshold: 2, windowSeconds: 3600, action: 'flag' });
      const batch = receivers.map((r) => ({ bizType: 'transfer_in', userId: r.id }) as Op);
      const judged = await Promise.all(Array.from({ length: 4 }, () => assessTransferFanIn(ctx.sql, batch, ctx.app.riskRules)));
      expect(judged.flat().map((h) => h.userId).sort(), 'hits over the four judgements').toEqual(receivers.map((r) => r.id).sort());
      for (const r of receivers) expect(await events(r.id, 'TRANSFER_FAN_IN'), `events of receiver ${r.id}`).toHaveLength(1);
    } finally {
      await setRule({ rule: 'TRANSFER_FAN_IN', enabled: true, threshold: 10, windowSeconds: 3600, action: 'flag' });
    }
  });
});

describe('a frozen member', () => {
  it('gets 0 accepted on every write that moves points or stock; reads and login still work; unfreezing restores them', async () => {
    const [m, friend] = await ctx.createMembers(2);
    await ctx.grant(m.id, 10_000);
    const [{ username: friendName }] = await ctx.sql`SELECT username FROM users WHERE id = ${friend.id}`;
    const goods = await ctx.createGoods({ pointsPrice: 10, stock: 100, type: 'virtual' });
    const cashGoods = await ctx.createGoods({ pointsPrice: 1, cashPrice: 500, stock: 100, type: 'virtual' });
    const lottery = await createLottery(ctx, admin as never, { cost: 5, prizes: [{ name: 'Nothing', kind: 'none', weight: 1 }] } as never);
    const stockBefore = await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock');

    const frozen = await adminCall('POST', `/v1/admin/members/${m.id}/freeze`, { reason: 'chargeback ring' });
    expect(frozen.statusCode, frozen.body).toBe(200);
    expect(frozen.json()).toEqual({ userId: m.id, riskStatus: 'frozen' });

    const post = (url: string, payload?: object) =>
      ctx.app.inject({ method: 'POST', url, headers: { ...bearer(m.token), 'idempotency-key': key() }, ...(payload ? { payload } : {}) });
    const attempts = {
      earn: await post('/v1/points/earn', { action: 'share' }),
      checkin: await post('/v1/me/checkins'),
      redeem: await redeemAs(ctx, m.token, goods.id, key()),
      order: await post('/v1/orders', { items: [{ goodsId: goods.id, quantity: 1 }] }),
      cashOrder: await post('/v1/orders', { items: [{ goodsId: cashGoods.id, quantity: 1 }] }),
      draw: await draw(ctx, { id: m.id, token: m.token } as never, lottery.id),
      transfer: await post('/v1/points/transfers', { toUsername: friendName, amount: 10 }),
    };
    for (const [what, res] of Object.entries(attempts)) {
      expect(res.statusCode, `${what}: ${res.body}`).toBe(403);
      expectError(res, 403, 'ACCOUNT_FROZEN');
    }
    expect(await ctx.redis.hget(ctx.keys.goods(goods.id), 'stock')).toBe(stockBefore);
    expect(await ctx.redis.hget(ctx.keys.goods(cashGoods.id), 'stock')).toBe('100');
    const balance = await ctx.app.inject({ url: '/v1/me/points', headers: bearer(m.token) });
    expect(balance.statusCode).toBe(200);
    expect(balance.json().available).toBe(10_000);
    const [{ email }] = await ctx.sql`SELECT email FROM users WHERE id = ${m.id}`;
    const login = await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: 'member-password' } });
    expect(login.statusCode, login.body).toBe(200);
    expect(login.json().dailyBonus).toBe(0);
    // system credits still land (an admin's grant); the member's own writes do not
    await ctx.grant(m.id, 5);

    const listed = (await ctx.app.inject({ url: '/v1/admin/risk/members?status=frozen', headers: bearer(admin.token) })).json();
    expect(listed.items.map((x: { id: number }) => x.id)).toContain(m.id);
    const ev = (await ctx.app.inject({ url: `/v1/admin/risk/events?member=${m.id}&rule=ADMIN`, headers: bearer(admin.token) })).json();
    expect(ev.items[0]).toMatchObject({ action: 'freeze', evidence: { reason: 'chargeback ring' } });
    const audits = await ctx.sql`SELECT action FROM audit_log WHERE target_id = ${String(m.id)} AND action LIKE 'member.%'`;
    expect(audits.map((a) => a.action)).toEqual(['member.freeze']);

    // a rebuild keeps the freeze
    await pipeline.drain();
    await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    expectError(await post('/v1/points/earn', { action: 'share' }), 403, 'ACCOUNT_FROZEN');

    expect((await adminCall('POST', `/v1/admin/members/${m.id}/unfreeze`, { reason: 'cleared' })).json()).toEqual({ userId: m.id, riskStatus: 'normal' });
    expect((await redeemAs(ctx, m.token, goods.id, key())).statusCode).toBe(201);
    expect(await status(m.id)).toBe('normal');
  });

  it('a member frozen while not in Redis is frozen once loaded', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    await pipeline.drain();
    await ctx.redis.del(ctx.keys.account(m.id), ctx.keys.lotsByExpiry(m.id), ctx.keys.lotRemaining(m.id));
    expect((await adminCall('POST', `/v1/admin/members/${m.id}/freeze`, { reason: 'x' })).statusCode).toBe(200);
    expectError(await earn(m.token, 'share'), 403, 'ACCOUNT_FROZEN');
  });
});

describe('risk rules', () => {
  it('lists the rules; refuses actions a rule cannot take; bad input writes nothing', async () => {
    const rules = (await ctx.app.inject({ url: '/v1/admin/risk/rules', headers: bearer(admin.token) })).json().rules;
    expect(rules.map((r: { rule: string }) => r.rule).sort()).toEqual(['DAILY_GAIN', 'DEVICE_SHARING', 'EARN_BURST', 'HIGH_FREQUENCY', 'IP_MULTI_ACCOUNT', 'TRANSFER_FAN_IN']);
    expectError(await setRule({ ...SEEDED.DAILY_GAIN, action: 'flag' }), 400, 'RISK_RULE_INVALID');
    expectError(await setRule({ ...SEEDED.EARN_BURST, windowSeconds: 0 }), 400, 'RISK_RULE_INVALID');
    expectError(await setRule({ ...SEEDED.EARN_BURST, rule: 'NOPE' }), 400, 'VALIDATION_FAILED');
    expectError(await setRule({ ...SEEDED.EARN_BURST, threshold: 0 }), 400, 'VALIDATION_FAILED');
    const after = (await ctx.app.inject({ url: '/v1/admin/risk/rules', headers: bearer(admin.token) })).json().rules;
    expect(after).toEqual(rules);
    const [m] = await ctx.createMembers(1);
    expectError(await ctx.app.inject({ url: '/v1/admin/risk/rules', headers: bearer(m.token) }), 403, 'FORBIDDEN');
    expectError(await adminCall('POST', '/v1/admin/members/99999999/freeze', { reason: 'x' }), 404, 'USER_NOT_FOUND');
  });
});
