/**
 * Goods: the catalog lives in Postgres; the sale state (stock, price, limit, window) lives in the
 * goods' Redis slot, which the reserve script reads. Stock moves only through scripts.
 *
 * Writes are split for the admin routes' idempotency (src/admin/idempotency.ts): the Postgres
 * part runs inside the transaction that stores the key (insert, applyPatch, addStock), the Redis
 * part after the commit (sync), which only ever brings Redis to the current row and so may be
 * repeated by a replay.
 */
import type { Sql, Tx } from '../db/client.ts';
import type { Deps } from '../deps.ts';
import { DomainError } from '../errors/domain-error.ts';
import { ScriptCode } from '../redis/script-codes.ts';
import { persistedSold, stockFromRecord } from './stock.ts';

export interface GoodsInput {
  name: string;
  description?: string;
  category?: string;
  type: 'physical' | 'virtual' | 'coupon';
  pointsPrice: number;
  stock: number;
  perUserLimit?: number | null;
  startsAt?: string | null;
  endsAt?: string | null;
  active?: boolean;
}

export type GoodsPatch = Partial<Omit<GoodsInput, 'stock'>>;

interface GoodsRow {
  id: number;
  name: string;
  description: string;
  category: string;
  type: GoodsInput['type'];
  pointsPrice: number;
  totalStock: number;
  perUserLimit: number | null;
  startsAt: Date | null;
  endsAt: Date | null;
  active: boolean;
  createdAt: Date;
}

export interface Goods {
  id: number;
  name: string;
  description: string;
  category: string;
  type: GoodsInput['type'];
  pointsPrice: number;
  stock: number;
  perUserLimit: number | null;
  startsAt: string | null;
  endsAt: string | null;
  active: boolean;
  createdAt: string;
}

const COLUMNS = `id, name, description, category, type, points_price AS "pointsPrice", total_stock AS "totalStock",
  per_user_limit AS "perUserLimit", starts_at AS "startsAt", ends_at AS "endsAt", active, created_at AS "createdAt"`;

export class GoodsService {
  constructor(private readonly deps: Deps) {}

  /** Creates goods and puts them on sale in Redis (tools and tests; the admin route adds idempotency). */
  async create(input: GoodsInput, actorId: number): Promise<Goods> {
    const { id } = await this.deps.sql.begin((tx) => this.insert(tx, input, actorId));
    return this.sync(id);
  }

  async update(id: number, patch: GoodsPatch, actorId: number): Promise<Goods> {
    await this.deps.sql.begin((tx) => this.applyPatch(tx, id, patch, actorId));
    return this.sync(id);
  }

  async restock(id: number, quantity: number, actorId: number): Promise<Goods> {
    await this.deps.sql.begin((tx) => this.addStock(tx, id, quantity, actorId));
    return this.sync(id);
  }

  /** The goods row and its audit entry, inside the caller's transaction; then sync() after the commit. */
  async insert(tx: Tx, input: GoodsInput, actorId: number): Promise<{ id: number }> {
    checkWindow(input.startsAt ?? null, input.endsAt ?? null);
    const [g] = await tx<Array<{ id: number }>>`
      INSERT INTO goods (name, description, category, type, points_price, total_stock, per_user_limit,
                         starts_at, ends_at, active)
      VALUES (${input.name}, ${input.description ?? ''}, ${input.category ?? 'general'}, ${input.type},
              ${input.pointsPrice}, ${input.stock}, ${input.perUserLimit ?? null}, ${input.startsAt ?? null},
              ${input.endsAt ?? null}, ${input.active ?? true})
      RETURNING id`;
    await tx`INSERT INTO audit_log (actor_id, action, target_type, target_id, data)
             VALUES (${actorId}, 'goods.create', 'goods', ${String(g.id)}, ${tx.json({ ...input })})`;
    return g;
  }

  /** The patch and its audit entry, inside the caller's transaction; then sync() after the commit. */
  async applyPatch(tx: Tx, id: number, patch: GoodsPatch, actorId: number): Promise<{ id: number }> {
    const current = await this.lockedRow(tx, id);
    const next = { ...current, ...definedOnly(patch) } as GoodsRow & GoodsPatch;
    const startsAt = patch.startsAt !== undefined ? patch.startsAt : current.startsAt?.toISOString() ?? null;
    const endsAt = patch.endsAt !== undefined ? patch.endsAt : current.endsAt?.toISOString() ?? null;
    checkWindow(startsAt, endsAt);
    await tx`
      UPDATE goods SET name = ${next.name}, description = ${next.description}, category = ${next.category},
        type = ${next.type}, points_price = ${next.pointsPrice}, per_user_limit = ${next.perUserLimit ?? null},
        starts_at = ${startsAt}, ends_at = ${endsAt}, active = ${next.active}, updated_at = now()
      WHERE id = ${id}`;
    await tx`INSERT INTO audit_log (actor_id, action, target_type, target_id, data)
             VALUES (${actorId}, 'goods.update', 'goods', ${String(id)}, ${tx.json({ ...patch })})`;
    return { id };
  }

  /**
   * Adds to the stocked total, inside the caller's transaction; sync() after the commit moves the
   * live stock. Before the total grows, Redis is given the total its stock counts so far (under
   * the row lock, so no other restock commits in between): an item put in Redis before
   * restocks were tracked would otherwise have this restock taken as already counted.
   */
  async addStock(tx: Tx, id: number, quantity: number, actorId: number): Promise<{ id: number }> {
    const current = await this.lockedRow(tx, id);
    await this.publish(tx, current);
    await tx`UPDATE goods SET total_stock = total_stock + ${quantity}, updated_at = now() WHERE id = ${id}`;
    await tx`INSERT INTO audit_log (actor_id, action, target_type, target_id, data)
             VALUES (${actorId}, 'goods.restock', 'goods', ${String(id)}, ${tx.json({ quantity })})`;
    return { id };
  }

  /**
   * After a write's commit, and again on its replay: brings the goods' Redis state to the current
   * Postgres row (sale settings; live stock raised to the stocked total, lua/restock-1.lua).
   * Safe to repeat and to run concurrently.
   */
  async sync(id: number): Promise<Goods> {
    const row = await this.row(id);
    return present(row, await this.publish(this.deps.sql, row));
  }

  async get(id: number): Promise<Goods> {
    const row = await this.row(id);
    return present(row, await this.liveStock(row));
  }

  async list(o: { category?: string; limit: number; cursor?: number }): Promise<{ items: Goods[]; nextCursor: string | null }> {
    const { sql, redis, keys } = this.deps;
    const rows = await sql<GoodsRow[]>`
      SELECT ${sql.unsafe(COLUMNS)} FROM goods
      WHERE true ${o.category ? sql`AND category = ${o.category}` : sql``}
        ${o.cursor ? sql`AND id > ${o.cursor}` : sql``}
      ORDER BY id LIMIT ${o.limit + 1}`;
    const page = rows.slice(0, o.limit);
    const stocks = await Promise.all(page.map((r) => redis.hget(keys.goods(r.id), 'stock')));
    const items = await Promise.all(
      page.map(async (r, i) => present(r, stocks[i] === null ? await this.liveStock(r) : Number(stocks[i]))),
    );
    const nextCursor = rows.length > o.limit ? String(page[page.length - 1].id) : null;
    return { items, nextCursor };
  }

  /** Makes sure the goods' sale state is in Redis (it is lost only with Redis itself). */
  async ensureInRedis(id: number): Promise<boolean> {
    const [row] = await this.deps.sql<GoodsRow[]>`SELECT ${this.deps.sql.unsafe(COLUMNS)} FROM goods WHERE id = ${id}`;
    if (!row) return false;
    await this.liveStock(row);
    return true;
  }

  private async liveStock(row: GoodsRow): Promise<number> {
    const { redis, keys } = this.deps;
    const live = await redis.hget(keys.goods(row.id), 'stock');
    if (live !== null) return Number(live);
    return this.publish(this.deps.sql, row);
  }

  /** Stock as Postgres knows it (src/goods/stock.ts). */
  private async durableStock(db: Sql | Tx, row: GoodsRow): Promise<number> {
    const sold = await persistedSold(db, [row.id]);
    return stockFromRecord(row.totalStock, sold.get(row.id) ?? 0);
  }

  /**
   * Writes the row's sale settings to Redis (the item is created there from the durable stock if
   * missing) and raises the live stock to the row's stocked total; returns the live stock.
   */
  private async publish(db: Sql | Tx, row: GoodsRow): Promise<number> {
    const { redis, keys } = this.deps;
    await redis.pmGoodsSet(
      keys.goods(row.id),
      row.pointsPrice,
      row.perUserLimit ?? 0,
      row.startsAt?.getTime() ?? 0,
      row.endsAt?.getTime() ?? 0,
      row.active ? 1 : 0,
      await this.durableStock(db, row),
    );
    const stock = await redis.pmRestock(keys.goods(row.id), row.totalStock);
    if (stock === ScriptCode.GoodsNotFound) throw new Error(`goods ${row.id} vanished from Redis while being synced`);
    await redis.sadd(keys.goodsIndex(), String(row.id));
    return stock;
  }

  private async row(id: number): Promise<GoodsRow> {
    const [row] = await this.deps.sql<GoodsRow[]>`SELECT ${this.deps.sql.unsafe(COLUMNS)} FROM goods WHERE id = ${id}`;
    if (!row) throw new DomainError('GOODS_NOT_FOUND', `No goods with id ${id}`);
    return row;
  }

  private async lockedRow(tx: Tx, id: number): Promise<GoodsRow> {
    const [row] = await tx<GoodsRow[]>`SELECT ${tx.unsafe(COLUMNS)} FROM goods WHERE id = ${id} FOR UPDATE`;
    if (!row) throw new DomainError('GOODS_NOT_FOUND', `No goods with id ${id}`);
    return row;
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function checkWindow(startsAt: string | null, endsAt: string | null): void {
  // The date-time format admits instants Postgres cannot take (year 0000, a leap second that the
  // driver's Date cannot represent): refuse them here rather than fail in the INSERT.
  for (const [name, value] of [['startsAt', startsAt], ['endsAt', endsAt]] as const) {
    if (value === null) continue;
    const ms = Date.parse(value);
    const year = new Date(ms).getUTCFullYear();
    if (!Number.isFinite(ms) || year < 1 || year > 9999) {
      throw new DomainError('VALIDATION_FAILED', `${name} must be a date-time between years 0001 and 9999 (UTC)`);
    }
  }
  if (startsAt && endsAt && Date.parse(endsAt) <= Date.parse(startsAt)) {
    throw new DomainError('VALIDATION_FAILED', 'endsAt must be after startsAt');
  }
}

function present(r: GoodsRow, stock: number): Goods {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    category: r.category,
    type: r.type,
    pointsPrice: r.pointsPrice,
    stock,
    perUserLimit: r.perUserLimit,
    startsAt: r.startsAt?.toISOString() ?? null,
    endsAt: r.endsAt?.toISOString() ?? null,
    active: r.active,
    createdAt: r.createdAt.toISOString(),
  };
}
