/**
 * The request path never touches Postgres: with the model built, the test database refuses every
 * connection (ALLOW_CONNECTIONS false, which binds superusers too, and the pool's sessions are
 * terminated) and the endpoint still answers in full from Redis, while a route that reads
 * Postgres fails in the same moment — the proof that Postgres really was gone.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { PG_ADMIN_URL } from '../support/urls.ts';
import { build, category, recommendations, redeemed } from './support.ts';

let ctx: TestContext;
const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });

beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => {
  await admin.unsafe(`ALTER DATABASE ${ctx.dbName} ALLOW_CONNECTIONS true`).catch(() => {});
  await admin.end();
  await ctx?.close();
});

async function cutPostgres(on: boolean): Promise<void> {
  await admin.unsafe(`ALTER DATABASE ${ctx.dbName} ALLOW_CONNECTIONS ${on ? 'false' : 'true'}`);
  if (on) await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${ctx.dbName} AND pid <> pg_backend_pid()`;
}

it('answers recommendations (history, cold start) while Postgres refuses every connection', async () => {
  const toys = await category(ctx, 'Toys');
  const g = (name: string, tags: string[], pointsPrice: number) => ctx.createGoods({ name, categoryId: toys, tags, pointsPrice }).then((x) => x.id);
  const robot = await g('Robot kit', ['robot'], 600);
  const drone = await g('Mini drone', ['robot', 'flying'], 700);
  const kite = await g('Paper kite', ['flying'], 800);
  const [peer] = await ctx.createMembers(1);
  await redeemed(ctx, peer.id, [robot, kite]);
  const [member] = await ctx.createMembers(1);
  await ctx.grant(member.id, 1_000);
  await redeemed(ctx, member.id, [robot]);
  const [newcomer] = await ctx.createMembers(1);
  await ctx.grant(newcomer.id, 1_000);
  await build(ctx);
  const expected = await recommendations(ctx, member.token);
  const expectedCold = await recommendations(ctx, newcomer.token);
  expect(expected.map((i) => i.goods.id)).toEqual([drone, kite]);
  expect(expectedCold[0]).toMatchObject({ goods: { id: robot }, reason: 'popular' });

  await cutPostgres(true);
  try {
    const control = await ctx.app.inject({ url: `/v1/goods/${robot}` });
    expect(control.statusCode, 'a Postgres read should fail while the database refuses connections').toBeGreaterThanOrEqual(500);
    expect(await recommendations(ctx, member.token)).toEqual(expected);
    expect(await recommendations(ctx, newcomer.token)).toEqual(expectedCold);
  } finally {
    await cutPostgres(false);
  }
});
