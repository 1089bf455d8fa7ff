/**
 * Draws through the API against the real Redis and Postgres: cost and points prize in one step,
 * a cooldown holding under 100 parallel draws, limited prize stock under 500 draws across
 * members, idempotent replays, refusals that write nothing, goods prizes as redemptions, the
 * member's history, public odds and the admin statistics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { auth, available, createLottery, draw, holds, liveStock, type Member } from './support.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let admin: Member;

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

interface DrawBody {
  drawId: string;
  lotteryId: number;
  cost: number;
  prize: { id: number; name: string; kind: string; points?: number; goodsId?: number };
  exchangeNo?: string;
  available: number;
  createdAt: string;
}

// DRAW_PATH=auto runs each draw as one script on this single-node Redis; saga (a cluster's way:
// prize hold → member's side → confirm) runs here in a context of its own
describe.each(['auto', 'saga'] as const)('a draw pays and wins atomically (DRAW_PATH=%s)', (drawPath) => {
  let outer: { ctx: TestContext; pipeline: Pipeline; admin: Member } | undefined;
  beforeAll(async () => {
    if (drawPath === 'auto') return;
    // made whole before it stands in for the file's context, which comes back in afterAll
    const saga = await createTestContext({ DRAW_PATH: 'saga' });
    try {
      const sagaPipeline = await saga.startPipeline();
      const sagaAdmin = await saga.admin();
      outer = { ctx, pipeline, admin };
      ({ ctx, pipeline, admin } = { ctx: saga, pipeline: sagaPipeline, admin: sagaAdmin });
    } catch (err) {
      await saga.close();
      throw err;
    }
  });
  afterAll(async () => {
    if (!outer) return;
    const saga = ctx;
    ({ ctx, pipeline, admin } = outer);
    await saga.close();
  });

  it('runs the path it names, leaving no prize hold behind', async () => {
    expect(ctx.app.lottery.path).toBe(drawPath === 'auto' ? 'atonce' : 'saga');
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const l = await createLottery(ctx, admin, { cost: 10, prizes: [{ name: 'Limited', kind: 'points', points: 5, weight: 1, stock: 3 }] });
    expect((await draw(ctx, m, l.id, 'one')).statusCode).toBe(201);
    // the saga confirms its hold after the answer
    await expect.poll(() => holds(ctx, l.id)).toBe(0);
    expect(await liveStock(ctx, l.id, l.prizes[0].id)).toBe(2);
  });

  it('charges the cost and credits a points prize in one step: balance = initial − cost + prize, both rows in the ledger', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 200);
    const l = await createLottery(ctx, admin, {
      cost: 20,
      prizes: [
        { name: '100 points', kind: 'points', points: 100, weight: 1 },
        { name: '5 points', kind: 'points', points: 5, weight: 1 },
        { name: 'Nothing', kind: 'none', weight: 1 },
      ],
    });
    let balance = 200;
    const draws: DrawBody[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await draw(ctx, m, l.id, `atomic-${i}`);
      expect(res.statusCode, res.body).toBe(201);
      const d = res.json() as DrawBody;
      balance = balance - 20 + (d.prize.points ?? 0);
      expect(d.available).toBe(balance);
      expect(d.cost).toBe(20);
      expect(await available(ctx, m)).toBe(balance);
      draws.push(d);
    }
    await pipeline.drain();
    const ledger = await ctx.sql<Array<{ opId: string; kind: string; delta: number; bizType: string; bizId: string }>>`
      SELECT op_id AS "opId", kind, delta, biz_type AS "bizType", biz_id AS "bizId" FROM ledger_entries
      WHERE user_id = ${m.id} AND biz_type LIKE 'lottery%' ORDER BY id`;
    for (const d of draws) {
      const rows = ledger.filter((r) => r.bizId === d.drawId);
      const spend = { opId: d.drawId, kind: 'spend', delta: -20, bizType: 'lottery', bizId: d.drawId };
      const prize = { opId: `${d.drawId}-prize`, kind: 'earn', delta: d.prize.points, bizType: 'lottery_prize', bizId: d.drawId };
      expect(rows).toEqual(d.prize.kind === 'points' ? [spend, prize] : [spend]);
    }
    const [acct] = await ctx.sql<Array<{ available: number; totalEarned: number }>>`
      SELECT available, total_earned AS "totalEarned" FROM point_accounts WHERE user_id = ${m.id}`;
    // prizes do not count toward the tier: cycling points through draws cannot climb tiers
    expect(acct).toEqual({ available: balance, totalEarned: 0 });
    const [{ lots }] = await ctx.sql<Array<{ lots: number }>>`
      SELECT COALESCE(SUM(remaining), 0)::bigint AS lots FROM point_lots WHERE user_id = ${m.id}`;
    expect(lots).toBe(balance);
  });

  it('lets exactly one of 100 parallel draws by one member through a cooldown; the rest are LOTTERY_COOLDOWN with retryAfterSeconds', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 10_000);
    const l = await createLottery(ctx, admin, {
      cost: 20,
      cooldownSeconds: 30,
      prizes: [
        { name: 'Limited 50', kind: 'points', points: 50, weight: 1, stock: 10 },
        { name: 'Nothing', kind: 'none', weight: 1 },
      ],
    });
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => draw(ctx, m, l.id, `burst-${i}`)));
    const accepted = answers.filter((r) => r.statusCode === 201);
    expect(accepted).toHaveLength(1);
    const refused = answers.filter((r) => r.statusCode !== 201);
    expect(refused).toHaveLength(99);
    for (const r of refused) {
      const body = expectError(r, 409, 'LOTTERY_COOLDOWN') as unknown as { retryAfterSeconds: number };
      expect(body.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(body.retryAfterSeconds).toBeLessThanOrEqual(30);
      expect(r.headers['retry-after']).toBe(String(body.retryAfterSeconds));
    }
    const won = (accepted[0].json() as DrawBody).prize.points ?? 0;
    expect(await available(ctx, m)).toBe(10_000 - 20 + won);
    // every refused draw gave its held unit back
    expect(await holds(ctx, l.id)).toBe(0);
    expect(await liveStock(ctx, l.id, l.prizes[0].id)).toBe(won > 0 ? 9 : 10);
    const doc = (await ctx.app.inject({ url: '/docs/json' })).json();
    expect(JSON.stringify(doc.paths['/v1/lotteries/{id}/draws'].post.responses['409'])).toContain('retryAfterSeconds');
  });

  it('never gives a prize with stock 5 more than 5 times in 500 draws across 100 members; Postgres agrees after the drain', async () => {
    const members = await ctx.createMembers(100);
    for (const m of members) await ctx.grant(m.id, 1000);
    const l = await createLottery(ctx, admin, {
      cost: 10,
      prizes: [
        { name: 'Jackpot', kind: 'points', points: 500, weight: 1_000_000, stock: 5 },
        { name: 'Nothing', kind: 'none', weight: 1 },
      ],
    });
    const jackpot = l.prizes[0].id;
    const answers = await Promise.all(
      members.flatMap((m) => Array.from({ length: 5 }, (_, i) => draw(ctx, m, l.id, `stock-${m.id}-${i}`))),
    );
    expect(answers.filter((r) => r.statusCode !== 201).map((r) => r.body)).toEqual([]);
    const bodies = answers.map((r) => r.json() as DrawBody);
    const wins = bodies.filter((d) => d.prize.id === jackpot).length;
    // weights make the jackpot all but certain while a unit is left: it is won exactly 5 times
    expect(wins).toBe(5);
    expect(await liveStock(ctx, l.id, jackpot)).toBe(0);
    await pipeline.drain();
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM lottery_draws WHERE lottery_id = ${l.id} AND prize_id = ${jackpot}`;
    expect(n).toBe(5);
    const [{ total }] = await ctx.sql<Array<{ total: number }>>`
      SELECT count(*)::int AS total FROM lottery_draws WHERE lottery_id = ${l.id}`;
    expect(total).toBe(500);
    // Postgres's view of the stock (allocated − persisted wins) is the live one
    const adminView = await ctx.app.inject({ url: `/v1/admin/lotteries/${l.id}`, headers: auth(admin) });
    expect(adminView.json().prizes[0]).toMatchObject({ stock: 5, remaining: 0, odds: 0 });
  });

  it('replays a draw retried with its Idempotency-Key (charged once) and refuses the key on another lottery (422)', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 500);
    const prizes = [
      { name: '30 points', kind: 'points' as const, points: 30, weight: 1 },
      { name: 'Nothing', kind: 'none' as const, weight: 1 },
    ];
    const l = await createLottery(ctx, admin, { cost: 25, cooldownSeconds: 60, prizes });
    const other = await createLottery(ctx, admin, { cost: 25, prizes });

    const first = await draw(ctx, m, l.id, 'same-key');
    expect(first.statusCode).toBe(201);
    const again = await draw(ctx, m, l.id, 'same-key');
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    const burst = await Promise.all(Array.from({ length: 20 }, () => draw(ctx, m, l.id, 'same-key')));
    for (const r of burst) expect(r.json()).toEqual(first.json());
    const after = 500 - 25 + ((first.json() as DrawBody).prize.points ?? 0);
    expect(await available(ctx, m)).toBe(after);

    expectError(await draw(ctx, m, other.id, 'same-key'), 422, 'IDEMPOTENCY_KEY_REUSED');
    const noKey = await ctx.app.inject({ method: 'POST', url: `/v1/lotteries/${l.id}/draws`, headers: auth(m) });
    expectError(noKey, 400, 'IDEMPOTENCY_KEY_REQUIRED');
    expect(await available(ctx, m)).toBe(after);

    // concurrent first attempts with one fresh key: one draw, one prize, one charge
    const together = await Promise.all(Array.from({ length: 20 }, () => draw(ctx, m, other.id, 'together')));
    expect(new Set(together.map((r) => `${r.statusCode} ${JSON.stringify(r.json())}`)).size).toBe(1);
    expect(await available(ctx, m)).toBe(after - 25 + ((together[0].json() as DrawBody).prize.points ?? 0));
    expect(await holds(ctx, other.id)).toBe(0);

    // ... and when the first of them takes the last unit of the only prize, the others still get
    // that draw (not SOLD_OUT): the key's draw is answered before any prize is picked
    const last = await createLottery(ctx, admin, { cost: 25, prizes: [{ name: 'Last one', kind: 'points', points: 7, weight: 1, stock: 1 }] });
    const racing = await Promise.all(Array.from({ length: 20 }, () => draw(ctx, m, last.id, 'the-last-one')));
    expect(new Set(racing.map((r) => `${r.statusCode} ${(r.json() as DrawBody).drawId}`)).size).toBe(1);
    expect(racing[0].statusCode).toBe(201);
    expect(await liveStock(ctx, last.id, last.prizes[0].id)).toBe(0);
    await expect.poll(() => holds(ctx, last.id)).toBe(0);
  });

  it('refuses a draw the member cannot pay, in a lottery not open or unknown, writing nothing', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 15);
    const prizes = [{ name: 'Limited', kind: 'points' as const, points: 10, weight: 1, stock: 3 }];
    const open = await createLottery(ctx, admin, { cost: 20, prizes });
    const off = await createLottery(ctx, admin, { cost: 1, active: false, prizes });
    const later = await createLottery(ctx, admin, { cost: 1, startsAt: new Date(Date.now() + 3_600_000).toISOString(), prizes });
    const over = await createLottery(ctx, admin, { cost: 1, endsAt: new Date(Date.now() - 1000).toISOString(), startsAt: null, prizes });
    const gone = await createLottery(ctx, admin, { cost: 1, prizes: [{ name: 'None left', kind: 'points', points: 5, weight: 1, stock: 0 }] });
    const outbox = () => ctx.redis.xlen(ctx.keys.outboxOf(m.id));
    const before = { balance: await available(ctx, m), outbox: await outbox() };

    expectError(await draw(ctx, m, open.id), 409, 'INSUFFICIENT_POINTS');
    expectError(await draw(ctx, m, off.id), 409, 'LOTTERY_NOT_ACTIVE');
    expectError(await draw(ctx, m, later.id), 409, 'LOTTERY_NOT_ACTIVE');
    expectError(await draw(ctx, m, over.id), 409, 'LOTTERY_NOT_ACTIVE');
    expectError(await draw(ctx, m, gone.id), 409, 'SOLD_OUT');
    expectError(await draw(ctx, m, 999_999), 404, 'LOTTERY_NOT_FOUND');
    expectError(await draw(ctx, m, 2_147_483_648), 400, 'VALIDATION_FAILED');

    expect({ balance: await available(ctx, m), outbox: await outbox() }).toEqual(before);
    expect(await liveStock(ctx, open.id, open.prizes[0].id)).toBe(3);
    for (const l of [open, off, later, over, gone]) expect(await holds(ctx, l.id)).toBe(0);
  });
});

describe('goods prizes, history, odds and statistics', () => {
  it("makes a goods prize a confirmed redemption out of the prize's own stock, not the catalog's", async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const mug = await ctx.createGoods({ name: 'Mug', pointsPrice: 300, stock: 10 });
    const l = await createLottery(ctx, admin, {
      cost: 10,
      prizes: [
        { name: 'A mug', kind: 'goods', goodsId: mug.id, weight: 1_000_000, stock: 1 },
        { name: 'Nothing', kind: 'none', weight: 1 },
      ],
    });
    const res = await draw(ctx, m, l.id);
    expect(res.statusCode, res.body).toBe(201);
    const d = res.json() as DrawBody;
    expect(d.prize).toEqual({ id: l.prizes[0].id, name: 'A mug', kind: 'goods', goodsId: mug.id });
    expect(d.exchangeNo).toMatch(/^PM[0-9A-HJKMNP-TV-Z]{22}$/);
    expect(d.available).toBe(90);
    await pipeline.drain();
    const redemption = await ctx.app.inject({ url: `/v1/redemptions/${d.drawId}`, headers: auth(m) });
    expect(redemption.statusCode, redemption.body).toBe(200);
    expect(redemption.json()).toMatchObject({
      id: d.drawId, exchangeNo: d.exchangeNo, goodsId: mug.id, quantity: 1, pointsSpent: 0, status: 'confirmed',
    });
    // the catalog keeps its 10 mugs, live and as Postgres computes it
    expect(Number(await ctx.redis.hget(ctx.keys.goods(mug.id), 'stock'))).toBe(10);
    expect((await ctx.app.goods.get(mug.id)).stock).toBe(10);
    await ctx.redis.del(ctx.keys.goods(mug.id));
    expect((await ctx.app.goods.get(mug.id)).stock).toBe(10);
    expect(await liveStock(ctx, l.id, l.prizes[0].id)).toBe(0);
  });

  it("lists the member's draws newest first, page by page", async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 100);
    const l = await createLottery(ctx, admin, { cost: 5, prizes: [{ name: '1 point', kind: 'points', points: 1, weight: 1 }] });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await draw(ctx, m, l.id)).json().drawId);
    await pipeline.drain();
    const seen: Array<{ drawId: string; lotteryId: number; cost: number; prize: unknown; createdAt: string }> = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/me/lottery-draws?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await ctx.app.inject({ url, headers: auth(m) });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      seen.push(...body.items);
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen.map((s) => s.drawId)).toEqual([...ids].reverse());
    expect(seen[0]).toEqual({
      drawId: ids[4], lotteryId: l.id, cost: 5, prize: { id: l.prizes[0].id, name: '1 point', kind: 'points', points: 1 }, createdAt: expect.any(String),
    });
    const other = await ctx.app.inject({ url: '/v1/me/lottery-draws', headers: auth((await ctx.createMembers(1))[0]) });
    expect(other.json()).toEqual({ items: [], nextCursor: null });
  });

  it('shows members the open lotteries with odds renormalised over the prizes in stock, and hides switched-off ones', async () => {
    const l = await createLottery(ctx, admin, {
      name: 'Odds',
      cost: 20,
      prizes: [
        { name: '100', kind: 'points', points: 100, weight: 1000, stock: 0 },
        { name: '50', kind: 'points', points: 50, weight: 2000 },
        { name: 'Nothing', kind: 'none', weight: 2000 },
      ],
    });
    const off = await createLottery(ctx, admin, { cost: 20, active: false, prizes: [{ name: 'x', kind: 'none', weight: 1 }] });
    const res = await ctx.app.inject({ url: `/v1/lotteries/${l.id}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: l.id, name: 'Odds', cost: 20, open: true, expectedPointsPerDraw: 25,
      prizes: [
        { name: '100', kind: 'points', points: 100, odds: 0, remaining: 0 },
        { name: '50', kind: 'points', points: 50, odds: 0.5 },
        { name: 'Nothing', kind: 'none', odds: 0.5 },
      ],
    });
    expectError(await ctx.app.inject({ url: `/v1/lotteries/${off.id}` }), 404, 'LOTTERY_NOT_FOUND');
    const list = (await ctx.app.inject({ url: '/v1/lotteries?limit=100' })).json() as { items: Array<{ id: number }> };
    expect(list.items.map((i) => i.id)).toContain(l.id);
    expect(list.items.map((i) => i.id)).not.toContain(off.id);
    // the seeded example is switched off: listed for admins only
    const adminList = (await ctx.app.inject({ url: '/v1/admin/lotteries?limit=100', headers: auth(admin) })).json() as {
      items: Array<{ id: number; name: string; active: boolean; cost: number; cooldownSeconds: number; prizes: unknown[] }>;
    };
    expect(adminList.items[0]).toMatchObject({ id: 1, name: 'Lucky draw (example)', active: false, cost: 20, cooldownSeconds: 30 });
    expect(adminList.items[0].prizes).toHaveLength(5);
    expect(list.items.map((i) => i.id)).not.toContain(1);
  });

  it('reports draws, points collected and paid, and the payout ratio against the expected value', async () => {
    const members = await ctx.createMembers(20);
    for (const m of members) await ctx.grant(m.id, 1000);
    const l = await createLottery(ctx, admin, {
      cost: 20,
      prizes: [
        { name: '100', kind: 'points', points: 100, weight: 1000 },
        { name: '50', kind: 'points', points: 50, weight: 2000 },
        { name: '20', kind: 'points', points: 20, weight: 3000 },
        { name: '10', kind: 'points', points: 10, weight: 5000 },
        { name: 'Nothing', kind: 'none', weight: 10000 },
      ],
    });
    const bodies = (await Promise.all(members.flatMap((m) => [draw(ctx, m, l.id), draw(ctx, m, l.id)]))).map((r) => r.json() as DrawBody);
    await pipeline.drain();
    const paid = bodies.reduce((n, d) => n + (d.prize.points ?? 0), 0);
    const res = await ctx.app.inject({ url: `/v1/admin/lotteries/${l.id}/stats`, headers: auth(admin) });
    expect(res.statusCode, res.body).toBe(200);
    const s = res.json();
    const expected = 310_000 / 21_000;
    expect(s).toMatchObject({ lotteryId: l.id, draws: 40, pointsCollected: 800, pointsPaid: paid });
    expect(s.payoutRatio).toBeCloseTo(paid / 800, 10);
    expect(s.expectedPointsPerDraw).toBeCloseTo(expected, 10);
    expect(s.expectedPayoutRatio).toBeCloseTo(expected / 20, 10);
    expect(s.pointsPaidPerDraw).toBeCloseTo(paid / 40, 10);
    expect(s.payoutVsExpected).toBeCloseTo(paid / 40 / expected, 10);
    expect(s.prizes.map((p: { wins: number }) => p.wins).reduce((a: number, b: number) => a + b, 0)).toBe(40);
    expect(s.prizes[4]).toMatchObject({ name: 'Nothing', expectedShare: 10_000 / 21_000 });
    expectError(await ctx.app.inject({ url: '/v1/admin/lotteries/999999/stats', headers: auth(admin) }), 404, 'LOTTERY_NOT_FOUND');
  });
});
