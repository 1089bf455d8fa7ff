/**
 * Hot goods (goods.hot_buckets = B > 0): the live stock is split over B bucket slots
 * {g<id>:b<k>} (src/redis/keys.ts), so a flash sale's requests spread over several cluster
 * masters instead of all hitting the one holding {g<id>}. This module owns the layout: the even
 * split of a total over the buckets, putting an item's sale state into its buckets, and reading
 * its live stock back as their sum. The redemption saga on the buckets is src/redemptions/hot-stock.ts.
 *
 * The goods hash {g<id>}:goods of a hot item keeps the sale settings and `hot` = B with stock 0:
 * a process that still takes the item for an ordinary one (its cache of B is a second old) finds
 * nothing to sell there, never a second copy of the units.
 *
 * Every bucket carries its share of the stocked total as its own `stocked` high-water mark, so a
 * restock is lua/restock-1.lua on each bucket with that bucket's share of the new total: once per
 * bucket, whoever brings it, in any order; a restock cut short leaves stock short, never extra.
 */
import type { Deps } from '../deps.ts';
import { fnv1a, type Keys } from '../redis/keys.ts';

export const MIN_HOT_BUCKETS = 2;
export const MAX_HOT_BUCKETS = 64;

/** Bucket k's share of a total split over B buckets: the first (total mod B) buckets get one more. */
export function bucketShare(total: number, buckets: number, k: number): number {
  return Math.floor(total / buckets) + (k < total % buckets ? 1 : 0);
}

/** The sale settings a bucket carries (a copy of the goods hash's; lua/goods-set-1.lua arguments). */
export interface SaleSettings {
  price: number;
  limit: number;
  startsAt: number;
  endsAt: number;
  active: 0 | 1;
  daily: number;
  dyn: 0 | 1;
}

/** Every key of an item's buckets, for deletes. */
export function bucketKeys(keys: Keys, goodsId: number, buckets: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < buckets; k++) {
    out.push(keys.bucket(goodsId, k), keys.bucketReservations(goodsId, k), keys.bucketDeadlines(goodsId, k), keys.bucketReturned(goodsId, k));
  }
  return out;
}

/** The bucket a refunded redemption's units go back to: always the same for an op id, so its once-mark is found. */
export function returnBucket(opId: string, buckets: number): number {
  return fnv1a(opId) % buckets;
}

export class BucketStock {
  constructor(private readonly deps: Pick<Deps, 'redis' | 'keys'>) {}

  /**
   * Writes the settings to the goods hash (stock 0, hot = B) and to every bucket (a bucket new to
   * Redis starts at its share of `durableStock`), then raises each bucket to its share of
   * `totalStock`. Returns the live stock (the buckets' sum).
   */
  async publish(goodsId: number, buckets: number, s: SaleSettings, durableStock: number, totalStock: number): Promise<number> {
    const { redis, keys } = this.deps;
    const args = (stock: number) => [s.price, s.limit, s.startsAt, s.endsAt, s.active, stock, s.daily, s.dyn] as const;
    await redis.pmGoodsSet(keys.goods(goodsId), ...args(0));
    await redis.hset(keys.goods(goodsId), 'hot', buckets);
    const stocks = await Promise.all(
      Array.from({ length: buckets }, async (_, k) => {
        await redis.pmGoodsSet(keys.bucket(goodsId, k), ...args(bucketShare(durableStock, buckets, k)));
        return redis.pmRestock(keys.bucket(goodsId, k), bucketShare(totalStock, buckets, k));
      }),
    );
    if (stocks.some((n) => n < 0)) throw new Error(`goods ${goodsId}: a bucket vanished from Redis while being synced`);
    return stocks.reduce((a, b) => a + b, 0);
  }

  /** B as the goods hash records it: 0 for an ordinary item, null when the item is not in Redis. */
  async layoutOf(goodsId: number): Promise<number | null> {
    const { redis, keys } = this.deps;
    const [hot, stock] = await redis.hmget(keys.goods(goodsId), 'hot', 'stock');
    if (stock === null) return null;
    return Number(hot ?? 0);
  }

  /** The live stock of a hot item: the sum of its buckets; null when a bucket is missing from Redis. */
  async liveStock(goodsId: number, buckets: number): Promise<number | null> {
    const { redis, keys } = this.deps;
    const stocks = await Promise.all(Array.from({ length: buckets }, (_, k) => redis.hget(keys.bucket(goodsId, k), 'stock')));
    if (stocks.some((s) => s === null)) return null;
    return stocks.reduce((a, s) => a + Number(s), 0);
  }

  /** Units held by reservations not yet confirmed or released, over the item's buckets. */
  async heldCount(goodsId: number, buckets: number): Promise<number> {
    const { redis, keys } = this.deps;
    const n = await Promise.all(Array.from({ length: buckets }, (_, k) => redis.hlen(keys.bucketReservations(goodsId, k))));
    return n.reduce((a, b) => a + b, 0);
  }

  /**
   * A refunded redemption of a hot item: its units back to its bucket and off the member's counts,
   * each once per op id (lua/hot-return-2.lua, lua/hot-uncount-1.lua); safe to repeat after a
   * crash between the two. Returns whether the units were returned now, or null when the bucket
   * is not in Redis (the caller loads the item and asks again).
   */
  async returnRedemption(goodsId: number, buckets: number, opId: string, userId: number, quantity: number, day: number | ''): Promise<boolean | null> {
    const { redis, keys } = this.deps;
    const k = returnBucket(opId, buckets);
    const returned = await redis.pmHotReturn(keys.bucket(goodsId, k), keys.bucketReturned(goodsId, k), opId, quantity);
    if (returned === -10) return null;
    await redis.pmHotUncount(keys.hotBought(userId), goodsId, opId, quantity, day);
    return returned === 1;
  }

  /**
   * Drops an item's sale state in whichever layout Redis has (`from` = its B, 0 ordinary), so the
   * next publish writes the row's layout. Only for an item off sale that has sold nothing
   * (GoodsService checks), whose state is then all derivable from its row.
   */
  async dropLayout(goodsId: number, from: number): Promise<void> {
    const { redis, keys } = this.deps;
    await redis.del(keys.goods(goodsId), keys.bought(goodsId), keys.dailyBought(goodsId), keys.reservations(goodsId), keys.reservationDeadlines(goodsId));
    if (from > 0) await Promise.all(bucketKeys(keys, goodsId, from).map((key) => redis.del(key)));
  }
}

/**
 * Live stock of items as listed: the goods hash's stock, or for a hot item the sum of its buckets;
 * null for an item not in Redis. The one reader every stock display goes through.
 */
export async function liveStocks(deps: Pick<Deps, 'redis' | 'keys'>, goodsIds: Array<number | string>): Promise<Array<number | null>> {
  return (await liveStockLayouts(deps, goodsIds)).map((s) => s?.stock ?? null);
}

/** As liveStocks, with each item's layout as Redis has it (B, 0 ordinary); null: not (wholly) in Redis. */
export async function liveStockLayouts(
  deps: Pick<Deps, 'redis' | 'keys'>,
  goodsIds: Array<number | string>,
): Promise<Array<{ stock: number; buckets: number } | null>> {
  const { redis, keys } = deps;
  const heads = await Promise.all(goodsIds.map((id) => redis.hmget(keys.goods(id), 'stock', 'hot')));
  const bucketStock = new BucketStock(deps);
  return Promise.all(
    heads.map(async ([stock, hot], i) => {
      if (stock === null) return null;
      const buckets = Number(hot ?? 0);
      if (buckets === 0) return { stock: Number(stock), buckets };
      const sum = await bucketStock.liveStock(Number(goodsIds[i]), buckets);
      return sum === null ? null : { stock: sum, buckets };
    }),
  );
}
