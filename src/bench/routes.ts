/**
 * Benchmark-only routes, served when BENCH_ROUTES=1:
 *  - GET /bench/hello: a bare route, the framework's ceiling on this machine;
 *  - POST /bench/baseline/redeem: the same redemption done the conventional way — one Postgres
 *    transaction locking the account and goods rows (SELECT … FOR UPDATE) — to compare against.
 * The baseline keeps its own tables (bench_baseline_*), created here, so it never touches real data.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DomainError } from '../errors/domain-error.ts';
import { requireIdempotencyKey } from '../points/idempotency.ts';
import type { Sql } from '../db/client.ts';

export async function createBaselineTables(sql: Sql): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS bench_baseline_accounts (user_id bigint PRIMARY KEY, available bigint NOT NULL)`;
  await sql`CREATE TABLE IF NOT EXISTS bench_baseline_goods (
    id bigint PRIMARY KEY, stock bigint NOT NULL, price bigint NOT NULL, per_user_limit int)`;
  await sql`CREATE TABLE IF NOT EXISTS bench_baseline_orders (
    id bigserial PRIMARY KEY, idem text NOT NULL UNIQUE, user_id bigint NOT NULL, goods_id bigint NOT NULL,
    quantity int NOT NULL, points bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`;
  await sql`CREATE INDEX IF NOT EXISTS bench_baseline_orders_user_goods ON bench_baseline_orders (user_id, goods_id)`;
  await sql`CREATE TABLE IF NOT EXISTS bench_baseline_ledger (
    id bigserial PRIMARY KEY, user_id bigint NOT NULL, delta bigint NOT NULL, balance_after bigint NOT NULL,
    order_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`;
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  await createBaselineTables(app.sql);

  app.get('/bench/hello', { config: { rateLimit: false } }, async () => ({ hello: 'world' }));

  app.post(
    '/bench/baseline/redeem',
    {
      onRequest: app.authenticate,
      schema: {
        body: Type.Object(
          { goodsId: Type.Integer({ minimum: 1 }), quantity: Type.Integer({ minimum: 1, maximum: 100 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const { goodsId, quantity } = request.body;
      const userId = request.userId;
      const result = await app.sql.begin(async (tx) => {
        const [done] = await tx`SELECT id FROM bench_baseline_orders WHERE idem = ${`${userId}:${key}`}`;
        if (done) return { orderId: Number(done.id), replayed: true };
        const [acct] = await tx<Array<{ available: number }>>`
          SELECT available FROM bench_baseline_accounts WHERE user_id = ${userId} FOR UPDATE`;
        const [g] = await tx<Array<{ stock: number; price: number; perUserLimit: number | null }>>`
          SELECT stock, price, per_user_limit AS "perUserLimit" FROM bench_baseline_goods WHERE id = ${goodsId} FOR UPDATE`;
        if (!g) throw new DomainError('GOODS_NOT_FOUND', 'No such goods');
        if (g.stock < quantity) throw new DomainError('SOLD_OUT', 'Sold out');
        if (g.perUserLimit) {
          const [{ n }] = await tx<Array<{ n: number }>>`
            SELECT COALESCE(SUM(quantity), 0)::bigint AS n FROM bench_baseline_orders
            WHERE user_id = ${userId} AND goods_id = ${goodsId}`;
          if (n + quantity > g.perUserLimit) throw new DomainError('LIMIT_EXCEEDED', 'Limit reached');
        }
        const cost = g.price * quantity;
        if (!acct || acct.available < cost) throw new DomainError('INSUFFICIENT_POINTS', 'Not enough points');
        await tx`UPDATE bench_baseline_goods SET stock = stock - ${quantity} WHERE id = ${goodsId}`;
        await tx`UPDATE bench_baseline_accounts SET available = available - ${cost} WHERE user_id = ${userId}`;
        const [order] = await tx<Array<{ id: number }>>`
          INSERT INTO bench_baseline_orders (idem, user_id, goods_id, quantity, points)
          VALUES (${`${userId}:${key}`}, ${userId}, ${goodsId}, ${quantity}, ${cost}) RETURNING id`;
        await tx`INSERT INTO bench_baseline_ledger (user_id, delta, balance_after, order_id)
                 VALUES (${userId}, ${-cost}, ${acct.available - cost}, ${order.id})`;
        return { orderId: order.id, replayed: false };
      });
      return reply.code(result.replayed ? 200 : 201).send(result);
    },
  );
};

export default routes;
