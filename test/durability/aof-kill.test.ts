/**
 * Redis with `appendonly yes` + `appendfsync always`, killed -9 in the middle of a redemption
 * load and restarted from its AOF. What the clients were told is the measure: every request ends
 * with a definite answer (a 503 is retried with its Idempotency-Key until it gets one), and then
 * the ledger, the redemptions, every balance in Redis and Postgres and the stock match exactly the
 * set of requests answered 201 — each acknowledged redemption once, nothing charged for a request
 * refused (members who run out of points are refused along the way).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../crash/procs.ts';
import { createTestContext, redeemAs, type TestContext } from '../support/context.ts';
import { redisServer, type RedisServer } from '../support/redis-server.ts';

const MEMBERS = 100;
const POOR = 20; // members granted only enough for a few redemptions: later ones are refused
const RICH_GRANT = 10_000;
const POOR_GRANT = 500;
const PRICE = 100;
const STOCK = 100_000;
const WAVES = 12;

let server: RedisServer;
let ctx: TestContext;
beforeAll(async () => {
  server = await redisServer(['--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction']);
  // a reservation orphaned by a request that failed mid-saga is settled by the sweep below
  ctx = await createTestContext({ REDIS_URL: server.url, RESERVATION_TIMEOUT_MS: 1000 });
});
afterAll(async () => {
  await ctx?.close().catch(() => {});
  await server?.destroy();
});

interface Request {
  member: { id: number; token: string };
  key: string;
  /** Every answer in order: the first ones may be 503 while Redis is down. */
  answers: Array<{ status: number; code?: string; id?: string; replayed: boolean }>;
}

const last = (r: Request) => r.answers[r.answers.length - 1];
const definite = (r: Request) => r.answers.length > 0 && last(r).status !== 503;

describe('Redis killed -9 under load with AOF (appendfsync always)', () => {
  it('ties every balance, the stock and the ledger to exactly the redemptions answered 201', async () => {
    const { app, redis, keys, sql } = ctx;
    const pipeline = await ctx.startPipeline(4, { lockMs: 1000 });
    const members = await ctx.createMembers(MEMBERS);
    const grantOf = new Map(members.map((m, i) => [m.id, i < POOR ? POOR_GRANT : RICH_GRANT]));
    await Promise.all(members.map((m) => ctx.grant(m.id, grantOf.get(m.id)!)));
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: STOCK });

    const requests: Request[] = [];
    const unexpected: string[] = [];
    const send = async (r: Request) => {
      const res = await redeemAs(ctx, r.member.token, goods.id, r.key);
      const body = res.json() as { id?: string; code?: string };
      r.answers.push({ status: res.statusCode, code: body.code, id: body.id, replayed: res.headers['idempotent-replayed'] === 'true' });
      const ok =
        res.statusCode === 201 ||
        res.statusCode === 503 || // Redis down: never a 500
        (res.statusCode === 409 && body.code === 'INSUFFICIENT_POINTS');
      if (!ok) unexpected.push(`${r.key}: ${res.statusCode} ${JSON.stringify(body)}`);
    };
    const wave = (n: number) =>
      Promise.all(
        members.map((m) => {
          const r: Request = { member: m, key: `w${n}-${m.id}`, answers: [] };
          requests.push(r);
          return send(r);
        }),
      );
    const load = (async () => {
      for (let n = 0; n < WAVES; n++) await wave(n);
    })();
    await waitUntil('300 redemptions acknowledged', async () => requests.filter((r) => last(r)?.status === 201).length >= 300, 30_000, 5);
    await server.kill9();
    const refusedWhileDown = await waitUntil(
      'a request refused while Redis is down',
      async () => requests.filter((r) => r.answers.some((a) => a.status === 503)).length,
      10_000,
      5,
    );
    await server.start();
    await load;
    expect(refusedWhileDown, 'requests answered 503 while Redis was down').toBeGreaterThan(0);

    // a 503 is not an answer: the client retries with the same key until it gets one
    await waitUntil(
      'every request to get a definite answer',
      async () => {
        const open = requests.filter((r) => !definite(r));
        await Promise.all(open.map(send));
        return open.length === 0;
      },
      30_000,
      100,
    );
    expect(unexpected, 'answers other than 201, 503 or INSUFFICIENT_POINTS').toEqual([]);

    const acked = requests.filter((r) => last(r).status === 201);
    const refused = requests.filter((r) => last(r).status === 409);
    const ackedIds = acked.map((r) => last(r).id!);
    expect(new Set(ackedIds).size, 'one redemption per acknowledged request').toBe(acked.length);
    expect(refused.length, 'requests refused for want of points').toBeGreaterThan(0);
    // an acknowledged op survives the crash: its record is still in Redis
    const lost: string[] = [];
    for (const r of acked) if ((await app.points.findOwnOpById(r.member.id, last(r).id!)) === null) lost.push(r.key);
    expect(lost, 'acknowledged redemptions missing from Redis after the restart').toEqual([]);

    // orphaned reservations (a request that failed between reserve and charge) are settled
    await waitUntil(
      'no reservation left',
      async () => {
        await app.redemptions.sweep();
        return (await redis.hlen(keys.reservations(goods.id))) + (await redis.zcard(keys.reservationDeadlines(goods.id))) === 0;
      },
      15_000,
      200,
    );
    await pipeline.drain(60_000);

    // Postgres holds exactly the acknowledged redemptions, each once, and nothing else was spent
    const rows = await sql<Array<{ id: string; userId: number }>>`SELECT id, user_id AS "userId" FROM redemptions`;
    expect(rows.length, 'redemption rows').toBe(acked.length);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(ackedIds));
    const spends = await sql<Array<{ opId: string; n: number }>>`
      SELECT op_id AS "opId", count(*)::int AS n FROM ledger_entries WHERE kind = 'spend' GROUP BY op_id`;
    expect(spends.filter((s) => s.n !== 1), 'spend rows written twice').toEqual([]);
    expect(new Set(spends.map((s) => s.opId)), 'spend rows = acknowledged redemptions').toEqual(new Set(ackedIds));
    const [{ others }] = await sql<Array<{ others: number }>>`
      SELECT count(*)::int AS others FROM ledger_entries WHERE kind <> 'spend' AND biz_type <> 'grant'`;
    expect(others, 'ledger rows other than grants and redemptions').toBe(0);

    // every balance, in Redis and Postgres, is the grant minus the member's 201s
    const ackedBy = new Map<number, number>();
    for (const r of acked) ackedBy.set(r.member.id, (ackedBy.get(r.member.id) ?? 0) + 1);
    const accounts = new Map(
      (
        await sql<Array<{ userId: number; available: number }>>`
          SELECT user_id AS "userId", available FROM point_accounts WHERE user_id = ANY(${members.map((m) => m.id)}::bigint[])`
      ).map((a) => [Number(a.userId), Number(a.available)]),
    );
    const mismatched: unknown[] = [];
    for (const m of members) {
      const expected = grantOf.get(m.id)! - PRICE * (ackedBy.get(m.id) ?? 0);
      const live = Number(await redis.hget(keys.account(m.id), 'avail'));
      if (live !== expected || accounts.get(m.id) !== expected) mismatched.push({ member: m.id, expected, redis: live, postgres: accounts.get(m.id) });
    }
    expect(mismatched, 'balances vs the 201s').toEqual([]);
    // a refused member really was out of points for one more redemption
    const poorRefusedWithPoints = refused.filter((r) => grantOf.get(r.member.id)! - PRICE * (ackedBy.get(r.member.id) ?? 0) >= PRICE);
    expect(poorRefusedWithPoints.map((r) => r.key), 'refused though the balance covered it').toEqual([]);

    expect(Number(await redis.hget(keys.goods(goods.id), 'stock')), 'stock = initial − 201s').toBe(STOCK - acked.length);

    const charged503 = acked.filter((r) => r.answers.some((a) => a.status === 503) && last(r).replayed).length;
    console.info(
      `[aof-kill] ${requests.length} requests: ${acked.length} acknowledged, ${refused.length} refused for points, ` +
        `${requests.filter((r) => r.answers.some((a) => a.status === 503)).length} answered 503 at least once ` +
        `(${charged503} of them had been charged: the retry replayed the first charge)`,
    );
  }, 120_000);
});
