/**
 * Goods: the catalog lives in Postgres; the sale state (stock, price, limits, window, dynamic
 * pricing) lives in the goods' Redis slot, which the reserve script reads. Stock moves only
 * through scripts.
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
import { recordAudit } from '../audit/log.ts';
import { BucketStock, liveStockLayouts, liveStocks, type SaleSettings } from './bucket-stock.ts';

export const GOODS_TYPES = ['physical', 'virtual', 'coupon', 'vip'] as const;
export type GoodsType = (typeof GOODS_TYPES)[number];

/** Type settings' defaults: how long an issued coupon stays valid, how long a VIP purchase extends membership. */
export const DEFAULT_COUPON_VALID_DAYS = 30;
export const DEFAULT_VIP_DAYS = 30;

export interface GoodsInput {
  name: string;
  description?: string;
  categoryId?: number | null;
  tags?: string[];
  imageUrl?: string | null;
  type: GoodsType;
  pointsPrice: number;
  cashPrice?: number | null;
  stock: number;
  perUserLimit?: number | null;
  dailyLimit?: number | null;
  dynamicPricing?: boolean;
  /** 0 (default): ordinary; 2..64: a hot item whose stock is split over that many slots (src/goods/bucket-stock.ts) */
  hotBuckets?: number;
  couponValidDays?: number;
  vipDays?: number;
  startsAt?: string | null;
  endsAt?: string | null;
  active?: boolean;
}

export type GoodsPatch = Partial<Omit<GoodsInput, 'stock'>>;

export interface GoodsRow {
  id: number;
  name: string;
  description: string;
  categoryId: number | null;
  tags: string[];
  imageUrl: string | null;
  type: GoodsType;
  pointsPrice: number;
  cashPrice: number | null;
  totalStock: number;
  perUserLimit: number | null;
  dailyLimit: number | null;
  dynamicPricing: boolean;
  hotBuckets: number;
  couponValidDays: number | null;
  vipDays: number | null;
  startsAt: Date | null;
  endsAt: Date | null;
  active: boolean;
  createdAt: Date;
}

/** A member's price of one unit and what made it (lua/includes/sale.lua). */
export interface PriceBreakdown {
  base: number;
  tierFactor: number;
  campaignDiscount: number;
  stockFactor: number;
  price: number;
}

export interface Goods {
  id: number;
  name: string;
  description: string;
  categoryId: number | null;
  tags: string[];
  imageUrl: string | null;
  type: GoodsType;
  pointsPrice: number;
  /** The caller's price of one unit; the list price when nobody signed in asks. */
  price: number;
  pricing?: PriceBreakdown;
  cashPrice: number | null;
  stock: number;
  perUserLimit: number | null;
  dailyLimit: number | null;
  dynamicPricing: boolean;
  hotBuckets: number;
  couponValidDays: number | null;
  vipDays: number | null;
  startsAt: string | null;
  endsAt: string | null;
  active: boolean;
  createdAt: string;
}

export const GOODS_COLUMNS = `id, name, description, category_id AS "categoryId", tags, image_url AS "imageUrl", type,
  points_price AS "pointsPrice", cash_price AS "cashPrice", total_stock AS "totalStock", per_user_limit AS "perUserLimit",
  daily_limit AS "dailyLimit", dynamic_pricing AS "dynamicPricing", hot_buckets AS "hotBuckets", coupon_valid_days AS "couponValidDays",
  vip_days AS "vipDays", starts_at AS "startsAt", ends_at AS "endsAt", active, created_at AS "createdAt"`;

export class GoodsService {
  private readonly buckets: BucketStock;

  constructor(private readonly deps: Deps) {
    this.buckets = new BucketStock(deps);
  }

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
    checkHot(input.hotBuckets ?? 0, input.dynamicPricing ?? false);
    const settings = typeSettings(input.type, input, null);
    const categoryId = input.categoryId ?? null;
    await checkCategory(tx, categoryId);
    const tags = normalizeTags(input.tags ?? []);
    const description = input.description ?? '';
    const [g] = await tx<Array<{ id: number }>>`
      INSERT INTO goods (name, description, category_id, tags, image_url, type, points_price, cash_price, total_stock,
                         per_user_limit, daily_limit, dynamic_pricing, hot_buckets, coupon_valid_days, vip_days, starts_at, ends_at,
                         active, search_text)
      VALUES (${input.name}, ${description}, ${categoryId}, ${tags}, ${input.imageUrl ?? null}, ${input.type},
              ${input.pointsPrice}, ${input.cashPrice ?? null}, ${input.stock}, ${input.perUserLimit ?? null},
              ${input.dailyLimit ?? null}, ${input.dynamicPricing ?? false}, ${input.hotBuckets ?? 0}, ${settings.couponValidDays},
              ${settings.vipDays}, ${input.startsAt ?? null}, ${input.endsAt ?? null}, ${input.active ?? true},
              ${searchText(input.name, description, tags)})
      RETURNING id`;
    await recordAudit(tx, { actorId, action: 'goods.create', targetType: 'goods', targetId: String(g.id), data: { ...input } });
    return g;
  }

  /** The patch and its audit entry, inside the caller's transaction; then sync() after the commit. */
  async applyPatch(tx: Tx, id: number, patch: GoodsPatch, actorId: number): Promise<{ id: number }> {
    const current = await this.lockedRow(tx, id);
    const next = { ...current, ...definedOnly(patch) } as GoodsRow;
    const startsAt = patch.startsAt !== undefined ? patch.startsAt : current.startsAt?.toISOString() ?? null;
    const endsAt = patch.endsAt !== undefined ? patch.endsAt : current.endsAt?.toISOString() ?? null;
    checkWindow(startsAt, endsAt);
    checkHot(next.hotBuckets, next.dynamicPricing);
    if (next.hotBuckets !== current.hotBuckets) await this.checkLayoutSwitch(tx, current, next);
    const settings = typeSettings(next.type, patch, current);
    if (patch.categoryId !== undefined) await checkCategory(tx, patch.categoryId);
    const tags = patch.tags !== undefined ? normalizeTags(patch.tags) : current.tags;
    await tx`
      UPDATE goods SET name = ${next.name}, description = ${next.description}, category_id = ${next.categoryId ?? null},
        tags = ${tags}, image_url = ${next.imageUrl ?? null}, type = ${next.type}, points_price = ${next.pointsPrice},
        cash_price = ${next.cashPrice ?? null}, per_user_limit = ${next.perUserLimit ?? null},
        daily_limit = ${next.dailyLimit ?? null}, dynamic_pricing = ${next.dynamicPricing}, hot_buckets = ${next.hotBuckets},
        coupon_valid_days = ${settings.couponValidDays}, vip_days = ${settings.vipDays},
        starts_at = ${startsAt}, ends_at = ${endsAt}, active = ${next.active},
        search_text = ${searchText(next.name, next.description, tags)}, updated_at = now()
      WHERE id = ${id}`;
    await recordAudit(tx, { actorId, action: 'goods.update', targetType: 'goods', targetId: String(id), data: { ...patch } });
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
    await recordAudit(tx, { actorId, action: 'goods.restock', targetType: 'goods', targetId: String(id), data: { quantity } });
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

  /** Rows as listed, each with its live stock (items missing from Redis are loaded into it). */
  async withStock(rows: GoodsRow[]): Promise<Goods[]> {
    const stocks = await liveStocks(this.deps, rows.map((r) => r.id));
    return Promise.all(rows.map(async (r, i) => present(r, stocks[i] ?? (await this.liveStock(r)))));
  }

  /** Makes sure the goods' sale state is in Redis (it is lost only with Redis itself). */
  async ensureInRedis(id: number): Promise<boolean> {
    const [row] = await this.deps.sql<GoodsRow[]>`SELECT ${this.deps.sql.unsafe(GOODS_COLUMNS)} FROM goods WHERE id = ${id}`;
    if (!row) return false;
    await this.liveStock(row);
    return true;
  }

  private async liveStock(row: GoodsRow): Promise<number> {
    // an item missing from Redis, or in another layout than its row's (a switch not yet synced), is published
    const [live] = await liveStockLayouts(this.deps, [row.id]);
    if (live !== null && live.buckets === row.hotBuckets) return live.stock;
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
    const layout = await this.buckets.layoutOf(row.id);
    // a layout switch (checked in applyPatch: off sale, nothing sold) starts from the row alone
    if (layout !== null && layout !== row.hotBuckets) await this.buckets.dropLayout(row.id, layout);
    if (row.hotBuckets > 0) {
      const stock = await this.buckets.publish(row.id, row.hotBuckets, saleSettings(row), await this.durableStock(db, row), row.totalStock);
      await redis.sadd(keys.goodsIndex(), String(row.id));
      return stock;
    }
    await redis.pmGoodsSet(
      keys.goods(row.id),
      row.pointsPrice,
      row.perUserLimit ?? 0,
      row.startsAt?.getTime() ?? 0,
      row.endsAt?.getTime() ?? 0,
      row.active ? 1 : 0,
      await this.durableStock(db, row),
      row.dailyLimit ?? 0,
      row.dynamicPricing ? 1 : 0,
    );
    const stock = await redis.pmRestock(keys.goods(row.id), row.totalStock);
    if (stock === ScriptCode.GoodsNotFound) throw new Error(`goods ${row.id} vanished from Redis while being synced`);
    await redis.sadd(keys.goodsIndex(), String(row.id));
    return stock;
  }

  /**
   * hotBuckets changes only on an item off sale (before and after the patch) that has sold
   * nothing, persisted or in flight: its Redis state is then all derivable from the row and no
   * reservation can start while the layout is swapped (src/goods/bucket-stock.ts dropLayout).
   */
  private async checkLayoutSwitch(tx: Tx, current: GoodsRow, next: GoodsRow): Promise<void> {
    if (current.active || next.active) {
      throw new DomainError('HOT_BUCKETS_LOCKED', 'hotBuckets can change only while the item is off sale (active false)');
    }
    const sold = (await persistedSold(tx, [current.id])).get(current.id) ?? 0;
    const layout = await this.buckets.layoutOf(current.id);
    let inFlight = false;
    if (layout !== null) {
      const [live] = await liveStocks(this.deps, [current.id]);
      const held = layout > 0 ? await this.buckets.heldCount(current.id, layout) : await this.deps.redis.hlen(this.deps.keys.reservations(current.id));
      inFlight = held > 0 || live !== current.totalStock;
    }
    if (sold > 0 || inFlight) {
      throw new DomainError('HOT_BUCKETS_LOCKED', 'hotBuckets can change only on an item that has sold nothing');
    }
  }

  private async row(id: number): Promise<GoodsRow> {
    const [row] = await this.deps.sql<GoodsRow[]>`SELECT ${this.deps.sql.unsafe(GOODS_COLUMNS)} FROM goods WHERE id = ${id}`;
    if (!row) throw new DomainError('GOODS_NOT_FOUND', `No goods with id ${id}`);
    return row;
  }

  private async lockedRow(tx: Tx, id: number): Promise<GoodsRow> {
    const [row] = await tx<GoodsRow[]>`SELECT ${tx.unsafe(GOODS_COLUMNS)} FROM goods WHERE id = ${id} FOR UPDATE`;
    if (!row) throw new DomainError('GOODS_NOT_FOUND', `No goods with id ${id}`);
    return row;
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A type's settings: coupon goods carry couponValidDays, VIP goods vipDays (each defaulting to 30
 * when the item becomes that type); any other combination is refused. `current` is the row being
 * patched: its setting stays unless the patch gives one or the type changes.
 */
function typeSettings(
  type: GoodsType,
  given: { couponValidDays?: number; vipDays?: number },
  current: GoodsRow | null,
): { couponValidDays: number | null; vipDays: number | null } {
  const setting = (own: GoodsType, value: number | undefined, kept: number | null | undefined, fallback: number, name: string) => {
    if (type !== own) {
      if (value !== undefined) throw new DomainError('VALIDATION_FAILED', `${name} applies to ${own} goods only`);
      return null;
    }
    return value ?? (current?.type === own ? (kept ?? fallback) : fallback);
  };
  return {
    couponValidDays: setting('coupon', given.couponValidDays, current?.couponValidDays, DEFAULT_COUPON_VALID_DAYS, 'couponValidDays'),
    vipDays: setting('vip', given.vipDays, current?.vipDays, DEFAULT_VIP_DAYS, 'vipDays'),
  };
}

/** The category must exist; FOR SHARE holds it until the goods row commits (a delete waits). */
async function checkCategory(tx: Tx, categoryId: number | null): Promise<void> {
  if (categoryId === null) return;
  const [c] = await tx`SELECT 1 FROM categories WHERE id = ${categoryId} FOR SHARE`;
  if (!c) throw new DomainError('VALIDATION_FAILED', `categoryId ${categoryId}: no such category`);
}

/** Hot goods price from the whole stock, which no bucket sees: dynamic pricing stays with ordinary goods. */
function checkHot(hotBuckets: number, dynamicPricing: boolean): void {
  if (hotBuckets > 0 && dynamicPricing) {
    throw new DomainError('VALIDATION_FAILED', 'hotBuckets cannot be combined with dynamicPricing (a bucket sees only its own stock)');
  }
}

/** The sale settings Redis keeps for a row (lua/goods-set-1.lua). */
export function saleSettings(row: GoodsRow): SaleSettings {
  return {
    price: row.pointsPrice,
    limit: row.perUserLimit ?? 0,
    startsAt: row.startsAt?.getTime() ?? 0,
    endsAt: row.endsAt?.getTime() ?? 0,
    active: row.active ? 1 : 0,
    daily: row.dailyLimit ?? 0,
    dyn: row.dynamicPricing ? 1 : 0,
  };
}

/** Tags are matched exactly and searched as words: trimmed, lower-cased, each once. */
export function normalizeTags(tags: string[]): string[] {
  return [...new Set(tags.map((t) => t.trim().toLowerCase()))];
}

/** What text search reads (goods.search_text, and its full-text document): name, description, tags. */
export function searchText(name: string, description: string, tags: string[]): string {
  return [name, description, ...tags].filter((s) => s !== '').join(' ').toLowerCase();
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

/** A row as the catalog lists it, with the given live stock (price: the list price). */
export function present(r: GoodsRow, stock: number): Goods {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    categoryId: r.categoryId,
    tags: r.tags,
    imageUrl: r.imageUrl,
    type: r.type,
    pointsPrice: r.pointsPrice,
    price: r.pointsPrice,
    cashPrice: r.cashPrice,
    stock,
    perUserLimit: r.perUserLimit,
    dailyLimit: r.dailyLimit,
    dynamicPricing: r.dynamicPricing,
    hotBuckets: r.hotBuckets,
    couponValidDays: r.couponValidDays,
    vipDays: r.vipDays,
    startsAt: r.startsAt?.toISOString() ?? null,
    endsAt: r.endsAt?.toISOString() ?? null,
    active: r.active,
    createdAt: r.createdAt.toISOString(),
  };
}
