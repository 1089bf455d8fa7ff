/**
 * Lottery administration: what a lottery and its prizes must be (refused with 400 and nothing
 * written), idempotent creates and patches, prize lists changed by patch (kept, added, retired),
 * stock that only grows and reaches the live draw once, and settings that take effect at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from '../api/helpers.ts';
import { auth, createLottery, draw, liveStock, type LotteryBody, type Member } from './support.ts';

let ctx: TestContext;
let admin: Member;
let goodsId: number;

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await ctx.admin();
  goodsId = (await ctx.createGoods({ pointsPrice: 50, stock: 5 })).id;
});
afterAll(async () => ctx?.close());

const post = (payload: unknown, key = `create-${Math.random().toString(36).slice(2)}`) =>
  ctx.app.inject({ method: 'POST', url: '/v1/admin/lotteries', headers: auth(admin, key), payload: payload as object });
const patch = (id: number, payload: unknown, key = `patch-${Math.random().toString(36).slice(2)}`) =>
  ctx.app.inject({ method: 'PATCH', url: `/v1/admin/lotteries/${id}`, headers: auth(admin, key), payload: payload as object });

const valid: LotteryBody & { name: string } = {
  name: 'Valid',
  cost: 20,
  prizes: [
    { name: '10 points', kind: 'points', points: 10, weight: 1 },
    { name: 'Nothing', kind: 'none', weight: 1 },
  ],
};

async function lotteryCount(): Promise<number> {
  const [{ n }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM lotteries`;
  return n;
}

describe('creating a lottery', () => {
  const refused: Array<[string, Record<string, unknown>]> = [
    ['a cost of 0', { ...valid, cost: 0 }],
    ['a negative cost', { ...valid, cost: -5 }],
    ['no prizes', { ...valid, prizes: [] }],
    ['a weight of 0', { ...valid, prizes: [{ name: 'x', kind: 'none', weight: 0 }] }],
    ['a fractional weight', { ...valid, prizes: [{ name: 'x', kind: 'none', weight: 1.5 }] }],
    ['a points prize without points', { ...valid, prizes: [{ name: 'x', kind: 'points', weight: 1 }] }],
    ['a points prize with a goodsId', { ...valid, prizes: [{ name: 'x', kind: 'points', points: 5, goodsId: 1, weight: 1 }] }],
    ['a goods prize without a goodsId', { ...valid, prizes: [{ name: 'x', kind: 'goods', weight: 1 }] }],
    ['a goods prize naming no goods', { ...valid, prizes: [{ name: 'x', kind: 'goods', goodsId: 987_654, weight: 1 }] }],
    ['a "nothing" prize with points', { ...valid, prizes: [{ name: 'x', kind: 'none', points: 5, weight: 1 }] }],
    ['an unknown prize kind', { ...valid, prizes: [{ name: 'x', kind: 'cash', weight: 1 }] }],
    ['a negative stock', { ...valid, prizes: [{ name: 'x', kind: 'none', weight: 1, stock: -1 }] }],
    ['a negative cooldown', { ...valid, cooldownSeconds: -1 }],
    ['a daily limit of 0', { ...valid, dailyDrawLimit: 0 }],
    ['an end before the start', { ...valid, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }],
    ['an unknown field', { ...valid, jackpot: true }],
    ['a prize id on create', { ...valid, prizes: [{ id: 1, name: 'x', kind: 'none', weight: 1 }] }],
  ];

  it.each(refused)('refuses %s with 400 VALIDATION_FAILED and writes nothing', async (_name, body) => {
    const before = await lotteryCount();
    expectError(await post(body), 400, 'VALIDATION_FAILED');
    expect(await lotteryCount()).toBe(before);
  });

  it('asks for the Idempotency-Key first, and creates once for a retried or duplicated request', async () => {
    const noKey = await ctx.app.inject({ method: 'POST', url: '/v1/admin/lotteries', headers: auth(admin), payload: { nonsense: 1 } });
    expectError(noKey, 400, 'IDEMPOTENCY_KEY_REQUIRED');
    const before = await lotteryCount();
    const body = { ...valid, name: 'Once' };
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(body, 'create-once')));
    expect(new Set(answers.map((r) => `${r.statusCode} ${r.body}`)).size).toBe(1);
    expect(answers[0].statusCode).toBe(201);
    expect(await lotteryCount()).toBe(before + 1);
    expectError(await post({ ...body, cost: 21 }, 'create-once'), 422, 'IDEMPOTENCY_KEY_REUSED');
    const member = (await ctx.createMembers(1))[0];
    const asMember = await ctx.app.inject({ method: 'POST', url: '/v1/admin/lotteries', headers: auth(member, 'x'), payload: body });
    expectError(asMember, 403, 'FORBIDDEN');
  });

  it('answers with the settings, each prize with its stock, units left and odds, and the expected points per draw', async () => {
    const res = await post({
      name: 'Example',
      cost: 20,
      cooldownSeconds: 30,
      dailyDrawLimit: 5,
      prizes: [
        { name: '100 points', kind: 'points', points: 100, weight: 1000, stock: 3 },
        { name: 'A mug', kind: 'goods', goodsId, weight: 1000, stock: 1 },
        { name: 'Nothing', kind: 'none', weight: 2000 },
      ],
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({
      name: 'Example', cost: 20, cooldownSeconds: 30, dailyDrawLimit: 5, active: true, startsAt: null, endsAt: null,
      expectedPointsPerDraw: 25,
      prizes: [
        { name: '100 points', kind: 'points', points: 100, goodsId: null, weight: 1000, stock: 3, remaining: 3, odds: 0.25 },
        { name: 'A mug', kind: 'goods', points: null, goodsId, weight: 1000, stock: 1, remaining: 1, odds: 0.25 },
        { name: 'Nothing', kind: 'none', points: null, goodsId: null, weight: 2000, stock: null, remaining: null, odds: 0.5 },
      ],
    });
    const read = await ctx.app.inject({ url: `/v1/admin/lotteries/${res.json().id}`, headers: auth(admin) });
    expect(read.json()).toEqual(res.json());
    const [audit] = await ctx.sql`SELECT action FROM audit_log WHERE target_type = 'lottery' AND target_id = ${String(res.json().id)}`;
    expect(audit.action).toBe('lottery.create');
  });
});

describe('patching a lottery', () => {
  it('switches a lottery off and on, moves its window and cost, effective for the next draw', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    const l = await createLottery(ctx, admin, valid);
    expect((await patch(l.id, { active: false })).statusCode).toBe(200);
    expectError(await draw(ctx, m, l.id), 409, 'LOTTERY_NOT_ACTIVE');
    const on = await patch(l.id, { active: true, cost: 7 });
    expect(on.json()).toMatchObject({ active: true, cost: 7 });
    const d = await draw(ctx, m, l.id);
    expect(d.statusCode).toBe(201);
    expect(d.json().cost).toBe(7);
    expect((await patch(l.id, { endsAt: new Date(Date.now() - 1000).toISOString() })).statusCode).toBe(200);
    expectError(await draw(ctx, m, l.id), 409, 'LOTTERY_NOT_ACTIVE');
    expectError(await patch(l.id, { startsAt: '2031-01-01T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }), 400, 'VALIDATION_FAILED');
    expectError(await patch(999_999, { active: true }), 404, 'LOTTERY_NOT_FOUND');
    expectError(await patch(l.id, {}), 400, 'VALIDATION_FAILED');
  });

  it('keeps listed prizes, adds new ones and retires the rest; raises stock once however often the patch is replayed', async () => {
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 1000);
    const l = await createLottery(ctx, admin, {
      cost: 1,
      prizes: [
        { name: 'Limited', kind: 'points', points: 5, weight: 1, stock: 2 },
        { name: 'Old', kind: 'none', weight: 1 },
      ],
    });
    const [limited, old] = l.prizes;
    const body = {
      prizes: [
        { id: limited.id, name: 'Limited (more)', kind: 'points', points: 5, weight: 3, stock: 6 },
        { name: 'New', kind: 'points', points: 1, weight: 1 },
      ],
    };
    const first = await patch(l.id, body, 'raise-stock');
    expect(first.statusCode, first.body).toBe(200);
    for (let i = 0; i < 3; i++) expect((await patch(l.id, body, 'raise-stock')).headers['idempotent-replayed']).toBe('true');
    await ctx.app.lottery.sync(l.id);
    const view = first.json();
    expect(view.prizes.map((p: { name: string }) => p.name)).toEqual(['Limited (more)', 'New']);
    expect(view.prizes[0]).toMatchObject({ id: limited.id, weight: 3, stock: 6, remaining: 6, odds: 0.75 });
    expect(await liveStock(ctx, l.id, limited.id)).toBe(6);
    const [{ retired }] = await ctx.sql<Array<{ retired: boolean }>>`SELECT retired FROM lottery_prizes WHERE id = ${old.id}`;
    expect(retired).toBe(true);
    // the retired prize is out of the draw
    for (let i = 0; i < 10; i++) {
      const d = await draw(ctx, m, l.id);
      expect(d.statusCode).toBe(201);
      expect(d.json().prize.id).not.toBe(old.id);
    }
  });

  it("refuses to change what a prize is, to lower its stock or to limit an unlimited one", async () => {
    const l = await createLottery(ctx, admin, {
      cost: 1,
      prizes: [
        { name: 'Limited', kind: 'points', points: 5, weight: 1, stock: 4 },
        { name: 'Free', kind: 'none', weight: 1 },
      ],
    });
    const [limited, free] = l.prizes;
    const keep = { id: free.id, name: 'Free', kind: 'none', weight: 1 };
    const cases = [
      [{ id: limited.id, name: 'L', kind: 'points', points: 6, weight: 1 }, keep],
      [{ id: limited.id, name: 'L', kind: 'none', weight: 1 }, keep],
      [{ id: limited.id, name: 'L', kind: 'points', points: 5, weight: 1, stock: 3 }, keep],
      [{ id: limited.id, name: 'L', kind: 'points', points: 5, weight: 1, stock: null }, keep],
      [{ id: limited.id, name: 'L', kind: 'points', points: 5, weight: 1 }, { ...keep, stock: 10 }],
      [{ id: limited.id, name: 'L', kind: 'points', points: 5, weight: 1 }, { ...keep, id: limited.id }],
      [{ id: 999_999, name: 'L', kind: 'none', weight: 1 }],
    ];
    for (const prizes of cases) expectError(await patch(l.id, { prizes }), 400, 'VALIDATION_FAILED');
    const view = await ctx.app.inject({ url: `/v1/admin/lotteries/${l.id}`, headers: auth(admin) });
    expect(view.json().prizes).toMatchObject([
      { id: limited.id, name: 'Limited', points: 5, stock: 4 },
      { id: free.id, name: 'Free', stock: null },
    ]);
  });
});
