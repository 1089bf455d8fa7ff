/**
 * Fresh bench state and its seed. Reset: the bench database is dropped and re-created
 * (migrations, baseline tables, a cap-free earn rule) and the bench Redis prefix deleted. Seed:
 * members inserted in bulk with one shared password hash, tokens signed with the API's secret,
 * points granted through PointsService.grant (the real earn script, hydration included), goods
 * created through GoodsService, and the same balances and goods mirrored into the baseline tables.
 */
import postgres from 'postgres';
import { createSigner } from 'fast-jwt';
import type { RedisClient } from '../src/redis/client.ts';
import type { Env } from '../src/config/env.ts';
import type { Deps } from '../src/deps.ts';
import type { Sql } from '../src/db/client.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { createBaselineTables } from '../src/bench/routes.ts';
import { hashPassword } from '../src/auth/service.ts';
import { PointsService } from '../src/points/service.ts';
import { EngagementConfig } from '../src/engagement/config.ts';
import { RulesCache } from '../src/points/rules.ts';
import { GoodsService } from '../src/goods/service.ts';
import { LotteryService } from '../src/lottery/service.ts';
import { BENCH_DB, EARN_RULE, FLASH_PRICE, FLASH_STOCK, LOTTERY, ORDER_CASH_PRICE, ORDER_ITEMS, REDEEM_ITEMS, REDEEM_STOCK } from './config.ts';
import { deleteKeys } from '../src/redis/delete-prefix.ts';

export interface Member {
  id: number;
  username: string;
  /** Authorization header value. */
  auth: string;
}

export interface Catalog {
  lottery: { id: number; jackpotPrizeId: number };
  flash: number;
  /** Same shape as flash, sold out by the flash warm-up so the measured sale starts full. */
  warmFlash: number;
  items: number[];
  /** The order scenario's goods: points-priced virtual goods, and physical goods sold for cash. */
  orderPoints: number[];
  orderCash: number[];
  price: Map<number, number>;
  initialStock: Map<number, number>;
}

export async function resetDatabase(env: Env): Promise<void> {
  const admin = new URL(env.DATABASE_URL);
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  await migrateDatabase(env.DATABASE_URL);
}

/** Baseline tables and the bench earn rule; must run before the API starts (it caches rules). */
export async function prepareDatabase(sql: Sql): Promise<void> {
  await createBaselineTables(sql);
  await sql`INSERT INTO earn_rules (action, points, daily_cap_count, daily_cap_points, expiry_days, trigger)
            VALUES (${EARN_RULE.action}, ${EARN_RULE.points}, 0, 0, 365, 'action')`;
}

export async function insertMembers(sql: Sql, env: Env, n: number): Promise<Member[]> {
  const hash = await hashPassword('bench-member-password');
  const names = Array.from({ length: n }, (_, i) => `bench_${i}`);
  const rows = await sql<Array<{ id: number; username: string }>>`
    INSERT INTO users (username, email, password_hash, role)
    SELECT u, u || '@bench.local', ${hash}, 'member' FROM unnest(${names}::text[]) AS u
    RETURNING id, username`;
  rows.sort((a, b) => a.id - b.id);
  await sql`INSERT INTO point_accounts (user_id) SELECT unnest(${rows.map((r) => r.id)}::bigint[])`;
  const sign = createSigner({ key: env.JWT_SECRET, algorithm: 'HS256', expiresIn: env.JWT_EXPIRES_IN });
  return rows.map((r) => ({
    id: r.id,
    username: r.username,
    auth: `Bearer ${sign({ sub: String(r.id), role: 'member', username: r.username })}`,
  }));
}

/** One admin grant per member (admin id 0), `parallel` at a time; `onProgress` after each batch. */
export async function grantAll(
  deps: Deps,
  members: Member[],
  amount: number,
  o: { parallel?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<void> {
  const parallel = o.parallel ?? 500;
  const points = new PointsService(deps, new RulesCache(deps.sql), new EngagementConfig(deps.sql));
  o.onProgress?.(0, members.length);
  for (let i = 0; i < members.length; i += parallel) {
    await Promise.all(
      members.slice(i, i + parallel).map((m) => points.grant(0, m.id, amount, 'bench seed', `bench-seed-${m.id}`)),
    );
    o.onProgress?.(Math.min(i + parallel, members.length), members.length);
  }
}

/** The flash items and the redeem items, in Postgres + Redis and mirrored in bench_baseline_goods. */
export async function createCatalog(deps: Deps): Promise<Catalog> {
  const goods = new GoodsService(deps);
  const flashInput = { type: 'virtual', pointsPrice: FLASH_PRICE, stock: FLASH_STOCK, perUserLimit: 1 } as const;
  const flash = await goods.create({ name: 'Flash item', ...flashInput }, 0);
  const warmFlash = await goods.create({ name: 'Flash warm-up item', ...flashInput }, 0);
  const items = await Promise.all(
    Array.from({ length: REDEEM_ITEMS }, (_, i) =>
      goods.create({ name: `Item ${i}`, type: 'physical', pointsPrice: 1 + (i % 50), stock: REDEEM_STOCK }, 0),
    ),
  );
  const orderPoints = await Promise.all(
    Array.from({ length: ORDER_ITEMS }, (_, i) =>
      goods.create({ name: `Order item ${i}`, type: 'virtual', pointsPrice: 1 + (i % 20), stock: REDEEM_STOCK }, 0),
    ),
  );
  const orderCash = await Promise.all(
    Array.from({ length: ORDER_ITEMS }, (_, i) =>
      goods.create({ name: `Cash item ${i}`, type: 'physical', pointsPrice: 1, cashPrice: ORDER_CASH_PRICE, stock: REDEEM_STOCK }, 0),
    ),
  );
  const all = [flash, warmFlash, ...items];
  await deps.sql`
    INSERT INTO bench_baseline_goods (id, stock, price, per_user_limit)
    SELECT * FROM unnest(${all.map((g) => g.id)}::bigint[], ${all.map((g) => g.stock)}::bigint[],
                         ${all.map((g) => g.pointsPrice)}::bigint[], ${all.map((g) => g.perUserLimit)}::int[])`;
  return {
    lottery: await createLottery(deps),
    flash: flash.id,
    warmFlash: warmFlash.id,
    items: items.map((g) => g.id),
    orderPoints: orderPoints.map((g) => g.id),
    orderCash: orderCash.map((g) => g.id),
    price: new Map([...all, ...orderPoints, ...orderCash].map((g) => [g.id, g.pointsPrice])),
    initialStock: new Map([...all, ...orderPoints, ...orderCash].map((g) => [g.id, g.stock])),
  };
}

export async function seedBaselineAccounts(sql: Sql, members: Member[], amount: number): Promise<void> {
  await sql`INSERT INTO bench_baseline_accounts (user_id, available)
            SELECT unnest(${members.map((m) => m.id)}::bigint[]), ${amount}`;
}

/** The draw scenario's lottery, through the service the admin route uses (Postgres row, then Redis). */
async function createLottery(deps: Deps): Promise<{ id: number; jackpotPrizeId: number }> {
  const lottery = new LotteryService(deps, new PointsService(deps, new RulesCache(deps.sql), new EngagementConfig(deps.sql)));
  const { id } = await deps.sql.begin((tx) =>
    lottery.insert(tx, { name: 'Bench lottery', cost: LOTTERY.cost, prizes: [{ kind: 'points', ...LOTTERY.jackpot }, ...LOTTERY.prizes] }, 0),
  );
  const view = await lottery.sync(id);
  return { id, jackpotPrizeId: view.prizes[0].id };
}
