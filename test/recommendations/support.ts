/**
 * Helpers for the recommendation tests: categories, redemption history written straight into
 * Postgres (what the model reads), Postgres balances (what the model bands members by), the model
 * built, and the endpoint called.
 */
import { randomBytes } from 'node:crypto';
import { buildModel } from '../../src/recommendations/model.ts';
import type { TestContext } from '../support/context.ts';

export interface Item {
  goods: { id: number; name: string; categoryId: number | null; price: number; stock: number; active: boolean };
  score: number;
  reason: string;
}

export async function category(ctx: TestContext, name: string): Promise<number> {
  const slug = `${name.toLowerCase()}-${randomBytes(3).toString('hex')}`;
  const [c] = await ctx.sql<Array<{ id: number }>>`INSERT INTO categories (name, slug) VALUES (${name}, ${slug}) RETURNING id`;
  return c.id;
}

/** Catalog redemptions of a member, oldest first, `daysAgo` days back (spaced a minute apart). */
export async function redeemed(ctx: TestContext, userId: number, goodsIds: number[], daysAgo = 1): Promise<void> {
  const base = Date.now() - daysAgo * 86_400_000;
  for (const [i, goodsId] of goodsIds.entries()) {
    const id = randomBytes(8).toString('hex');
    await ctx.sql`
      INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, created_at)
      VALUES (${id}, ${id}, ${`EX${id}`}, ${userId}, ${goodsId}, 1, 1, to_timestamp(${base + i * 60_000}::bigint / 1000.0))`;
  }
}

/** The member's balance as Postgres records it (the model's balance bands read it). */
export async function postgresBalance(ctx: TestContext, userId: number, available: number): Promise<void> {
  await ctx.sql`UPDATE point_accounts SET available = ${available} WHERE user_id = ${userId}`;
}

export async function build(ctx: TestContext) {
  return buildModel(ctx.sql, ctx.redis, ctx.keys);
}

export async function recommendations(ctx: TestContext, token: string, limit?: number): Promise<Item[]> {
  const res = await ctx.app.inject({
    url: `/v1/me/recommendations${limit === undefined ? '' : `?limit=${limit}`}`,
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.statusCode !== 200) throw new Error(`recommendations: ${res.statusCode} ${res.body}`);
  return res.json().items;
}
