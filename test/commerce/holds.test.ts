/**
 * Integrators' points holds through the API: freeze (frozen shows in /v1/me/points), capture in
 * part or whole, release, expiry; each step a ledger row through the persist pipeline; reconcile
 * sees no drift with points frozen; a rebuild of Redis from Postgres puts open holds back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildFromPostgres } from '../../src/recovery/rebuild.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';
import { CLEAN, reconcileFindings } from '../support/reconcile.ts';
import { scanAll } from '../support/scan.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let admin: { id: number; token: string };
beforeAll(async () => {
  ctx = await createTestContext({ HOLD_MAX_TTL_SECONDS: 3600 });
  pipeline = await ctx.startPipeline();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

const hold = (body: object, key: string) =>
  ctx.app.inject({ method: 'POST', url: '/v1/admin/points/holds', headers: { ...bearer(admin.token), 'idempotency-key': key }, payload: body });
const settle = (id: string, what: 'capture' | 'release', body?: object, key = `${what}-${id}-${Math.random()}`) =>
  ctx.app.inject({ method: 'POST', url: `/v1/admin/points/holds/${id}/${what}`, headers: { ...bearer(admin.token), 'idempotency-key': key }, ...(body ? { payload: body } : {}) });
const points = async (token: string) => (await ctx.app.inject({ url: '/v1/me/points', headers: bearer(token) })).json() as { available: number; frozen: number };

describe('admin holds', () => {
  it('freezes, captures part (the rest comes back), and the ledger records freeze and spend', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const res = await hold({ userId: m.id, amount: 200, reason: 'table booking', ttlSeconds: 600 }, 'h-1');
    expect(res.statusCode, res.body).toBe(201);
    const h = res.json();
    expect(h).toMatchObject({ userId: m.id, amount: 200, state: 'frozen', captured: 0, reason: 'table booking' });
    expect(await points(m.token)).toMatchObject({ available: 300, frozen: 200 });
    // the same key replays; the frozen points cannot be spent elsewhere
    const again = await hold({ userId: m.id, amount: 200, reason: 'table booking', ttlSeconds: 600 }, 'h-1');
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().holdId).toBe(h.holdId);
    expectError(await hold({ userId: m.id, amount: 301, reason: 'more', ttlSeconds: 600 }, 'h-2'), 409, 'INSUFFICIENT_POINTS');

    const cap = await settle(h.holdId, 'capture', { amount: 120 });
    expect(cap.statusCode, cap.body).toBe(200);
    expect(cap.json()).toMatchObject({ state: 'captured', captured: 120 });
    expect(await points(m.token)).toMatchObject({ available: 380, frozen: 0 });
    const replay = await settle(h.holdId, 'capture', { amount: 120 }, 'cap-1');
    expect((await settle(h.holdId, 'capture', { amount: 120 }, 'cap-1')).headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toMatchObject({ state: 'captured', captured: 120 });
    expectError(await settle(h.holdId, 'release'), 409, 'HOLD_SETTLED');

    await pipeline.drain();
    const rows = await ctx.sql`SELECT kind, delta FROM ledger_entries WHERE user_id = ${m.id} ORDER BY kind`;
    expect(rows.map((r) => [r.kind, Number(r.delta)])).toEqual([['earn', 500], ['freeze', 0], ['spend', -120]]);
    const [acct] = await ctx.sql`SELECT available FROM point_accounts WHERE user_id = ${m.id}`;
    expect(Number(acct.available)).toBe(380);
    const [lots] = await ctx.sql`SELECT sum(remaining)::int AS s FROM point_lots WHERE user_id = ${m.id}`;
    expect(lots.s).toBe(380);
    const [ph] = await ctx.sql`SELECT state, captured FROM point_holds WHERE id = ${h.holdId}`;
    expect(ph).toEqual({ state: 'captured', captured: 120 });
  });

  it('releases on request, and by itself once expired (capture after expiry is refused)', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const a = (await hold({ userId: m.id, amount: 40, reason: 'a', ttlSeconds: 600 }, 'ha')).json();
    const rel = await settle(a.holdId, 'release');
    expect(rel.json()).toMatchObject({ state: 'released', captured: 0 });
    expect(await points(m.token)).toMatchObject({ available: 100, frozen: 0 });

    const b = (await hold({ userId: m.id, amount: 30, reason: 'b', ttlSeconds: 1 }, 'hb')).json();
    await new Promise((r) => setTimeout(r, 1100));
    expectError(await settle(b.holdId, 'capture'), 409, 'HOLD_EXPIRED');
    await pipeline.drain();
    expect(await ctx.app.holds.releaseExpired()).toBe(1);
    expect(await points(m.token)).toMatchObject({ available: 100, frozen: 0 });
    expect((await ctx.app.inject({ url: `/v1/admin/points/holds/${b.holdId}`, headers: bearer(admin.token) })).json()).toMatchObject({ state: 'released' });
  });

  it('refuses bad input with 4xx and writes nothing', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    expectError(await hold({ userId: m.id, amount: 0, reason: 'x', ttlSeconds: 60 }, 'b1'), 400, 'VALIDATION_FAILED');
    expectError(await hold({ userId: m.id, amount: 10, reason: 'x', ttlSeconds: 7200 }, 'b2'), 400, 'VALIDATION_FAILED');
    expectError(await hold({ userId: m.id, amount: 10, reason: 'x', ttlSeconds: 60 }, ''), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    expectError(await hold({ userId: 99_999_999, amount: 10, reason: 'x', ttlSeconds: 60 }, 'b3'), 404, 'USER_NOT_FOUND');
    expectError(await settle('h1-00000000000000000000000000000000', 'release'), 404, 'HOLD_NOT_FOUND');
    expectError(await settle('nonsense', 'capture'), 404, 'HOLD_NOT_FOUND');
    const [m2] = await ctx.createMembers(1);
    const asMember = await ctx.app.inject({ method: 'POST', url: '/v1/admin/points/holds', headers: { ...bearer(m2.token), 'idempotency-key': 'k' }, payload: { userId: m.id, amount: 1, reason: 'x', ttlSeconds: 60 } });
    expectError(asMember, 403, 'FORBIDDEN');
    expect(await points(m.token)).toMatchObject({ available: 100, frozen: 0 });
  });

  it('refuses a capture beyond the hold with 400, storing nothing: the same key then captures', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const h = (await hold({ userId: m.id, amount: 100, reason: 'r', ttlSeconds: 600 }, 'over')).json();
    expectError(await settle(h.holdId, 'capture', { amount: 150 }, 'cap-over'), 400, 'VALIDATION_FAILED');
    const ok = await settle(h.holdId, 'capture', { amount: 100 }, 'cap-over');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ state: 'captured', captured: 100 });
  });

  it('a key used again after its records expired makes a new hold, and Postgres keeps both apart', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const first = (await hold({ userId: m.id, amount: 100, reason: 'again', ttlSeconds: 600 }, 'reused')).json();
    await settle(first.holdId, 'release');
    await pipeline.drain();
    // IDEMPOTENCY_TTL_SECONDS later: every record of the first hold and of the key has expired
    for (const k of await scanAll(ctx.redis, `${ctx.keys.prefix}:*`)) {
      if (k.includes(':hold:') || k.includes(':idem:')) await ctx.redis.del(k);
    }
    const second = (await hold({ userId: m.id, amount: 100, reason: 'again', ttlSeconds: 600 }, 'reused')).json();
    expect(second.holdId).not.toBe(first.holdId);
    expect(second.state).toBe('frozen');
    await pipeline.drain();
    const rows = await ctx.sql`SELECT id, state FROM point_holds WHERE user_id = ${m.id} ORDER BY created_at`;
    expect(rows.map((r) => r.state)).toEqual(['released', 'frozen']);
    await ctx.redis.del(ctx.keys.account(m.id), ctx.keys.lotsByExpiry(m.id), ctx.keys.lotRemaining(m.id));
    await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    expect(await points(m.token)).toMatchObject({ available: 400, frozen: 100 });
  });

  it('reconcile sees no drift while points are frozen, and a rebuild puts open holds back', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 300);
    const h = (await hold({ userId: m.id, amount: 120, reason: 'keep', ttlSeconds: 3600 }, 'keep')).json();
    await pipeline.drain();
    expect(await reconcileFindings(ctx)).toEqual(CLEAN);
    // Redis loses the member: the rebuild restores avail, frozen, lots and the hold record
    await ctx.redis.del(ctx.keys.account(m.id), ctx.keys.lotsByExpiry(m.id), ctx.keys.lotRemaining(m.id), ctx.keys.hold(m.id, h.holdId));
    await rebuildFromPostgres(ctx.sql, ctx.redis, ctx.keys, { idempotencyTtlSeconds: 3600 });
    expect(await points(m.token)).toMatchObject({ available: 180, frozen: 120 });
    const cap = await settle(h.holdId, 'capture');
    expect(cap.json()).toMatchObject({ state: 'captured', captured: 120 });
    expect(await points(m.token)).toMatchObject({ available: 180, frozen: 0 });
  });
});
