/**
 * Idempotency-Key semantics on the three writing endpoints (redemptions, earn, admin grant):
 * replays answer with the first answer, a key reused for another request is a 422, a burst of
 * 100+ concurrent duplicates charges once, and a refused redemption leaves the key free to retry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { keyHash } from '../../src/points/idempotency.ts';
import { bearer, expectError, snapshot, stateKeys } from './helpers.ts';

type Member = { id: number; token: string };

let ctx: TestContext;
let adminUser: Member;
/** Every op id the tests expect to be persisted exactly once, with its kind. */
const persistedOnce = new Map<string, { userId: number; redemption: boolean; grant: boolean }>();

beforeAll(async () => {
  ctx = await createTestContext();
  adminUser = await ctx.admin();
});
afterAll(async () => ctx?.close());

const redeem = (m: Member, key: string, payload: Record<string, unknown>) =>
  ctx.app.inject({ method: 'POST', url: '/v1/redemptions', headers: { ...bearer(m.token), 'idempotency-key': key }, payload });
const earn = (m: Member, key: string, action: string) =>
  ctx.app.inject({ method: 'POST', url: '/v1/points/earn', headers: { ...bearer(m.token), 'idempotency-key': key }, payload: { action } });
const grant = (key: string, payload: Record<string, unknown>, by: Member = adminUser) =>
  ctx.app.inject({ method: 'POST', url: '/v1/admin/points/grant', headers: { ...bearer(by.token), 'idempotency-key': key }, payload });

async function available(m: Member): Promise<number> {
  const res = await ctx.app.inject({ url: '/v1/me/points', headers: bearer(m.token) });
  expect(res.statusCode).toBe(200);
  return res.json().available;
}

async function stock(goodsId: number): Promise<number> {
  const res = await ctx.app.inject({ url: `/v1/goods/${goodsId}` });
  expect(res.statusCode).toBe(200);
  return res.json().stock;
}

/** Outbox entries (not yet relayed) of one member for one op id. */
async function outboxEntries(userId: number, opId: string): Promise<number> {
  const entries = await ctx.redis.xrange(ctx.keys.outboxOf(userId), '-', '+');
  return entries.filter(([, fields]) => (JSON.parse(fields[1]) as { opId: string }).opId === opId).length;
}

async function member(points = 0): Promise<Member> {
  const [m] = await ctx.createMembers(1);
  if (points > 0) await ctx.grant(m.id, points);
  await available(m); // hydrated
  return m;
}

function expectReplayOf(res: LightMyRequestResponse, first: LightMyRequestResponse): void {
  expect(res.statusCode).toBe(first.statusCode);
  expect(res.body).toBe(first.body);
  expect(res.json()).toEqual(first.json());
  expect(res.headers['idempotent-replayed']).toBe('true');
}

async function waitFor(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The answer does not wait for the reservation's confirm step: let it land before a snapshot. */
async function confirmed(...goodsIds: number[]): Promise<void> {
  await waitFor(async () => {
    for (const id of goodsIds) if ((await ctx.redis.hlen(ctx.keys.reservations(id))) > 0) return false;
    return true;
  });
}

describe('a replay answers with the first answer', () => {
  it('redemption: same status, same body, idempotent-replayed: true, charged once', async () => {
    const m = await member(1000);
    const goods = await ctx.createGoods({ pointsPrice: 100, stock: 10 });
    const first = await redeem(m, 'r-replay', { goodsId: goods.id, quantity: 2 });
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(first.json()).toMatchObject({ goodsId: goods.id, quantity: 2, pointsSpent: 200, available: 800, status: 'confirmed' });
    for (let i = 0; i < 3; i++) expectReplayOf(await redeem(m, 'r-replay', { goodsId: goods.id, quantity: 2 }), first);
    // key order in the body does not make it another request
    expectReplayOf(await redeem(m, 'r-replay', { quantity: 2, goodsId: goods.id }), first);
    expect(await available(m)).toBe(800);
    expect(await stock(goods.id)).toBe(8);
    expect(await ctx.redis.hget(ctx.keys.bought(goods.id), String(m.id))).toBe('2');
    expect(await outboxEntries(m.id, first.json().id)).toBe(1);
    persistedOnce.set(first.json().id, { userId: m.id, redemption: true, grant: false });
  });

  it('earn: same status, same body, idempotent-replayed: true, credited and capped once', async () => {
    const m = await member();
    const first = await earn(m, 'e-replay', 'share');
    expect(first.statusCode).toBe(200);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(first.json()).toMatchObject({ delta: 10, available: 10 });
    for (let i = 0; i < 3; i++) expectReplayOf(await earn(m, 'e-replay', 'share'), first);
    expect(await available(m)).toBe(10);
    expect(await ctx.redis.hget(ctx.keys.dailyCap(m.id, 'share'), 'n')).toBe('1');
    // the four other shares of the day's five still go through, the sixth is refused…
    for (let i = 0; i < 4; i++) expect((await earn(m, `e-more-${i}`, 'share')).statusCode).toBe(200);
    expectError(await earn(m, 'e-sixth', 'share'), 409, 'DAILY_LIMIT_REACHED');
    // …and the replay of the first is still answered from its record, not refused by the cap
    expectReplayOf(await earn(m, 'e-replay', 'share'), first);
    expect(await available(m)).toBe(50);
    expect(await outboxEntries(m.id, first.json().opId)).toBe(1);
    persistedOnce.set(first.json().opId, { userId: m.id, redemption: false, grant: false });
  });

  it('grant: same status, same body, idempotent-replayed: true, credited once', async () => {
    const m = await member();
    const first = await grant('g-replay', { userId: m.id, amount: 250, reason: 'goodwill' });
    expect(first.statusCode).toBe(200);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(first.json()).toMatchObject({ available: 250 });
    for (let i = 0; i < 3; i++) expectReplayOf(await grant('g-replay', { userId: m.id, amount: 250, reason: 'goodwill' }), first);
    expectReplayOf(await grant('g-replay', { reason: 'goodwill', amount: 250, userId: m.id }), first);
    expect(await available(m)).toBe(250);
    expect(await outboxEntries(m.id, first.json().opId)).toBe(1);
    persistedOnce.set(first.json().opId, { userId: m.id, redemption: false, grant: true });
  });
});

describe('the same key with another request is 422 IDEMPOTENCY_KEY_REUSED', () => {
  it('redemption: other quantity or other goods', async () => {
    const m = await member(1000);
    const g1 = await ctx.createGoods({ pointsPrice: 100, stock: 10 });
    const g2 = await ctx.createGoods({ pointsPrice: 100, stock: 10 });
    const first = await redeem(m, 'r-reuse', { goodsId: g1.id, quantity: 1 });
    expect(first.statusCode).toBe(201);
    await confirmed(g1.id);
    const before = await snapshot(ctx, [m.id], [g1.id, g2.id]);
    expectError(await redeem(m, 'r-reuse', { goodsId: g1.id, quantity: 2 }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await redeem(m, 'r-reuse', { goodsId: g2.id, quantity: 1 }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await snapshot(ctx, [m.id], [g1.id, g2.id])).toEqual(before);
    expectReplayOf(await redeem(m, 'r-reuse', { goodsId: g1.id, quantity: 1 }), first);
    expect(await available(m)).toBe(900);
    expect([await stock(g1.id), await stock(g2.id)]).toEqual([9, 10]);
  });

  it('earn: another action', async () => {
    const m = await member();
    const first = await earn(m, 'e-reuse', 'share');
    expect(first.statusCode).toBe(200);
    const before = await snapshot(ctx, [m.id]);
    expectError(await earn(m, 'e-reuse', 'review'), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await snapshot(ctx, [m.id])).toEqual(before);
    expectReplayOf(await earn(m, 'e-reuse', 'share'), first);
    expect(await available(m)).toBe(10);
  });

  it('grant: another amount, another reason, or the same admin key for another member', async () => {
    const m1 = await member();
    const m2 = await member();
    const first = await grant('g-reuse', { userId: m1.id, amount: 50, reason: 'a' });
    expect(first.statusCode).toBe(200);
    const before = await snapshot(ctx, [m1.id, m2.id, adminUser.id]);
    expectError(await grant('g-reuse', { userId: m1.id, amount: 51, reason: 'a' }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await grant('g-reuse', { userId: m1.id, amount: 50, reason: 'b' }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await grant('g-reuse', { userId: m2.id, amount: 50, reason: 'a' }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await snapshot(ctx, [m1.id, m2.id, adminUser.id])).toEqual(before);
    expect(await available(m2)).toBe(0);
    expectReplayOf(await grant('g-reuse', { userId: m1.id, amount: 50, reason: 'a' }), first);
    expect(await available(m1)).toBe(50);
  });

  it('across endpoints: a member key used for earn is refused by redemptions, and the other way round', async () => {
    const m = await member(1000);
    const goods = await ctx.createGoods({ pointsPrice: 100, stock: 10 });
    expect((await earn(m, 'x-earn-first', 'share')).statusCode).toBe(200);
    expect((await redeem(m, 'x-redeem-first', { goodsId: goods.id, quantity: 1 })).statusCode).toBe(201);
    await confirmed(goods.id);
    const before = await snapshot(ctx, [m.id], [goods.id]);
    expectError(await redeem(m, 'x-earn-first', { goodsId: goods.id, quantity: 1 }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await earn(m, 'x-redeem-first', 'share'), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await snapshot(ctx, [m.id], [goods.id])).toEqual(before);
    expect(await available(m)).toBe(1010 - 100);
    expect(await stock(goods.id)).toBe(9);
  });

  it('across endpoints: an admin key used for a grant is refused by earn and redemptions, and the other way round', async () => {
    const target = await member();
    await ctx.grant(adminUser.id, 1000);
    await available(adminUser);
    const goods = await ctx.createGoods({ pointsPrice: 100, stock: 10 });
    expect((await grant('ax-grant-first', { userId: target.id, amount: 5, reason: 'x' })).statusCode).toBe(200);
    expect((await earn(adminUser, 'ax-earn-first', 'share')).statusCode).toBe(200);
    expect((await redeem(adminUser, 'ax-redeem-first', { goodsId: goods.id, quantity: 1 })).statusCode).toBe(201);
    await confirmed(goods.id);
    const before = await snapshot(ctx, [target.id, adminUser.id], [goods.id]);
    expectError(await earn(adminUser, 'ax-grant-first', 'share'), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await redeem(adminUser, 'ax-grant-first', { goodsId: goods.id, quantity: 1 }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await grant('ax-earn-first', { userId: target.id, amount: 5, reason: 'x' }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await grant('ax-redeem-first', { userId: target.id, amount: 5, reason: 'x' }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await snapshot(ctx, [target.id, adminUser.id], [goods.id])).toEqual(before);
    expect(await available(target)).toBe(5);
  });

  it('keys belong to their member: two members may use the same key', async () => {
    const a = await member();
    const b = await member();
    const ra = await earn(a, 'shared-key', 'share');
    const rb = await earn(b, 'shared-key', 'review');
    expect(ra.statusCode).toBe(200);
    expect(rb.statusCode).toBe(200);
    expect(rb.headers['idempotent-replayed']).toBeUndefined();
    expect(ra.json().opId).not.toBe(rb.json().opId);
    expect([await available(a), await available(b)]).toEqual([10, 20]);
  });

  it('a grant refused for an unknown member does not burn the key', async () => {
    const m = await member();
    const keysBefore = await stateKeys(ctx);
    expectError(await grant('g-unknown', { userId: Number.MAX_SAFE_INTEGER, amount: 5, reason: 'x' }), 404, 'USER_NOT_FOUND');
    expect(await stateKeys(ctx)).toEqual(keysBefore);
    const ok = await grant('g-unknown', { userId: m.id, amount: 5, reason: 'x' });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['idempotent-replayed']).toBeUndefined();
    expect(await available(m)).toBe(5);
  });
});

describe('a refused redemption writes nothing and the same key may be retried', () => {
  it('INSUFFICIENT_POINTS leaves balance, stock, outbox and Postgres alone; after a grant the retry succeeds', async () => {
    const m = await member(); // 0 points
    const goods = await ctx.createGoods({ pointsPrice: 500, stock: 3, perUserLimit: 1 });
    const key = 'poor-1';
    const record = ctx.keys.idem(m.id, keyHash(key));
    const before = await snapshot(ctx, [m.id], [goods.id]);

    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await redeem(m, key, { goodsId: goods.id, quantity: 1 });
      expectError(res, 409, 'INSUFFICIENT_POINTS');
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      const after = await snapshot(ctx, [m.id], [goods.id]);
      expect(after.rows).toEqual(before.rows);
      expect(after.goodsDigest).toBe(before.goodsDigest);
      expect(after.accountsDigest).toBe(before.accountsDigest);
      expect(after.members).toEqual(before.members); // acct hash, lots, outbox length
      expect(after.goods).toEqual(before.goods); // live stock and sale state
      expect(await ctx.redis.hgetall(ctx.keys.bought(goods.id))).toEqual({});
      expect(await ctx.redis.hlen(ctx.keys.reservations(goods.id))).toBe(0);
      expect(await ctx.redis.zcard(ctx.keys.reservationDeadlines(goods.id))).toBe(0);
      // The one key the attempt may leave is the key's tombstone (kind "aborted", TTL'd), which
      // refuses a late charge of the released reservation; it is no op and no answer.
      const added = after.keys.filter((k) => !before.keys.includes(k));
      expect(added.filter((k) => k !== record)).toEqual([]);
      expect(before.keys.filter((k) => !after.keys.includes(k))).toEqual([]);
      const tomb = await ctx.redis.get(record);
      if (tomb !== null) expect(JSON.parse(tomb).kind).toBe('aborted');
      expect(await available(m)).toBe(0);
      expect(await stock(goods.id)).toBe(3);
      expect(await ctx.app.redemptions.listOwn(m.id, 10)).toEqual({ items: [], nextCursor: null });
    }

    await ctx.grant(m.id, 600);
    const ok = await redeem(m, key, { goodsId: goods.id, quantity: 1 });
    expect(ok.statusCode).toBe(201);
    expect(ok.headers['idempotent-replayed']).toBeUndefined();
    expect(ok.json()).toMatchObject({ goodsId: goods.id, quantity: 1, pointsSpent: 500, available: 100 });
    const opId = ok.json().id as string;
    expect((await ctx.app.inject({ url: `/v1/redemptions/${opId}`, headers: bearer(m.token) })).statusCode).toBe(200);
    expectReplayOf(await redeem(m, key, { goodsId: goods.id, quantity: 1 }), ok);
    expect(await available(m)).toBe(100);
    expect(await stock(goods.id)).toBe(2);
    expect(await ctx.redis.hget(ctx.keys.bought(goods.id), String(m.id))).toBe('1');
    expect(await outboxEntries(m.id, opId)).toBe(1);
    persistedOnce.set(opId, { userId: m.id, redemption: true, grant: false });
  });
});

describe('100+ concurrent duplicates of one key charge once', () => {
  const N = 120;

  async function burst(send: () => Promise<LightMyRequestResponse>) {
    const all = await Promise.all(Array.from({ length: N }, send));
    const statuses = new Set(all.map((r) => r.statusCode));
    const bodies = new Set(all.map((r) => r.body));
    const fresh = all.filter((r) => r.headers['idempotent-replayed'] === undefined);
    return { all, statuses, bodies, fresh };
  }

  it(`redemption: ${N} duplicates → one charge, one unit of stock, one outbox entry`, async () => {
    const m = await member(1000);
    const goods = await ctx.createGoods({ pointsPrice: 30, stock: 50 });
    const { all, statuses, bodies, fresh } = await burst(() => redeem(m, 'burst-r', { goodsId: goods.id, quantity: 2 }));
    expect([...statuses]).toEqual([201]);
    expect(bodies.size).toBe(1);
    expect(fresh).toHaveLength(1);
    const body = all[0].json();
    expect(body).toMatchObject({ goodsId: goods.id, quantity: 2, pointsSpent: 60, available: 940 });
    expect(await available(m)).toBe(940);
    expect(await stock(goods.id)).toBe(48);
    expect(await ctx.redis.hget(ctx.keys.bought(goods.id), String(m.id))).toBe('2');
    expect(await outboxEntries(m.id, body.id)).toBe(1);
    expect(await ctx.redis.xlen(ctx.keys.outboxOf(m.id))).toBeGreaterThanOrEqual(1);
    // the reservation is confirmed (not left for the sweeper, not released)
    await confirmed(goods.id);
    expect(await stock(goods.id)).toBe(48);
    persistedOnce.set(body.id, { userId: m.id, redemption: true, grant: false });
  });

  it(`redemption: ${N} concurrent uses of one key with two different bodies → one wins, the rest replay it or get 422`, async () => {
    const m = await member(1000);
    const g1 = await ctx.createGoods({ pointsPrice: 40, stock: 50 });
    const g2 = await ctx.createGoods({ pointsPrice: 40, stock: 50 });
    const all = await Promise.all(
      Array.from({ length: N }, (_, i) => redeem(m, 'burst-mixed', { goodsId: i % 2 ? g1.id : g2.id, quantity: 1 })),
    );
    const ok = all.filter((r) => r.statusCode === 201);
    const refused = all.filter((r) => r.statusCode !== 201);
    for (const r of refused) expectError(r, 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((r) => r.body)).size).toBe(1);
    expect(ok.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    const winner = ok[0].json().goodsId as number;
    expect(await available(m)).toBe(960);
    await confirmed(g1.id, g2.id);
    expect(await stock(winner)).toBe(49);
    expect(await stock(winner === g1.id ? g2.id : g1.id)).toBe(50);
    expect(await outboxEntries(m.id, ok[0].json().id)).toBe(1);
    persistedOnce.set(ok[0].json().id, { userId: m.id, redemption: true, grant: false });
  });

  it(`earn: ${N} duplicates → one credit, one cap count, one outbox entry`, async () => {
    const m = await member();
    const { all, statuses, bodies, fresh } = await burst(() => earn(m, 'burst-e', 'review'));
    expect([...statuses]).toEqual([200]);
    expect(bodies.size).toBe(1);
    expect(fresh).toHaveLength(1);
    expect(all[0].json()).toMatchObject({ delta: 20, available: 20 });
    expect(await available(m)).toBe(20);
    expect(await ctx.redis.hget(ctx.keys.dailyCap(m.id, 'review'), 'n')).toBe('1');
    expect(await outboxEntries(m.id, all[0].json().opId)).toBe(1);
    persistedOnce.set(all[0].json().opId, { userId: m.id, redemption: false, grant: false });
  });

  it(`grant: ${N} duplicates → one credit, one outbox entry`, async () => {
    const m = await member();
    const { all, statuses, bodies, fresh } = await burst(() => grant('burst-g', { userId: m.id, amount: 70, reason: 'burst' }));
    expect([...statuses]).toEqual([200]);
    expect(bodies.size).toBe(1);
    expect(fresh).toHaveLength(1);
    expect(all[0].json()).toMatchObject({ available: 70 });
    expect(await available(m)).toBe(70);
    expect(await outboxEntries(m.id, all[0].json().opId)).toBe(1);
    persistedOnce.set(all[0].json().opId, { userId: m.id, redemption: false, grant: true });
  });
});

describe('persistence', () => {
  let pipeline: Pipeline;
  beforeAll(async () => {
    pipeline = await ctx.startPipeline();
  });

  it('every op above is persisted exactly once: one ledger row, one redemption row, one audit row', async () => {
    await pipeline.drain();
    expect(persistedOnce.size).toBeGreaterThanOrEqual(8);
    const ids = [...persistedOnce.keys()];
    const ledger = await ctx.sql<Array<{ op_id: string; user_id: number; n: number }>>`
      SELECT op_id, min(user_id) AS user_id, count(*)::int AS n FROM ledger_entries WHERE op_id = ANY(${ids}::text[]) GROUP BY op_id`;
    expect(ledger).toHaveLength(ids.length);
    for (const row of ledger) {
      expect(row.n).toBe(1);
      expect(row.user_id).toBe(persistedOnce.get(row.op_id)!.userId);
    }
    const redemptionIds = ids.filter((id) => persistedOnce.get(id)!.redemption);
    const [{ r }] = await ctx.sql<Array<{ r: number }>>`
      SELECT count(*)::int AS r FROM redemptions WHERE op_id = ANY(${redemptionIds}::text[])`;
    expect(r).toBe(redemptionIds.length);
    const grantIds = ids.filter((id) => persistedOnce.get(id)!.grant);
    const audits = await ctx.sql<Array<{ actor_id: number }>>`
      SELECT actor_id FROM audit_log WHERE op_id = ANY(${grantIds}::text[])`;
    expect(audits).toHaveLength(grantIds.length);
    for (const a of audits) expect(a.actor_id).toBe(adminUser.id);
  });

  it('Postgres balances agree with Redis for every member touched', async () => {
    await pipeline.drain();
    const accounts = await ctx.sql<Array<{ user_id: number; available: number }>>`SELECT user_id, available FROM point_accounts`;
    for (const a of accounts) {
      const live = await ctx.redis.hget(ctx.keys.account(a.user_id), 'avail');
      if (live !== null) expect(Number(live), `member ${a.user_id}`).toBe(a.available);
    }
  });
});
