/**
 * Hot goods: the items with the most redemptions in the last 7 days (src/goods/popularity.ts),
 * answered from Redis alone (GET /v1/goods/hot). The catalog worker role recomputes the list from
 * Postgres on its schedule (HOT_GOODS_EVERY_MS) and replaces it whole in one MULTI in the {hot}
 * slot: a sorted set of ids by redemptions, and a hash of each item as listed. Requests read those
 * two keys and each item's live stock; the list is as fresh as the last run plus the persistence
 * lag. It is derived data: a Redis rebuilt or restored gets it back at the next run, and until then
 * the list is empty, never an error.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { inPopularWindow } from './popularity.ts';
import { liveStocks } from './bucket-stock.ts';
import type { GoodsType } from './service.ts';

/** Items the list keeps; GET /v1/goods/hot serves at most this many. */
export const HOT_GOODS_KEPT = 50;

export interface HotItem {
  id: number;
  name: string;
  imageUrl: string | null;
  type: GoodsType;
  categoryId: number | null;
  pointsPrice: number;
  stock: number;
  redemptionsLast7Days: number;
}

type Stored = Omit<HotItem, 'stock' | 'redemptionsLast7Days'>;

/** Recomputes the list from Postgres and replaces it in Redis; returns how many items it holds. */
export async function refreshHotGoods(sql: Sql, redis: RedisClient, keys: Keys, now = Date.now()): Promise<number> {
  const rows = await sql<Array<Stored & { n: number }>>`
    SELECT g.id, g.name, g.image_url AS "imageUrl", g.type, g.category_id AS "categoryId", g.points_price AS "pointsPrice", t.n
    FROM (SELECT r.goods_id, count(*)::bigint AS n FROM redemptions r WHERE ${inPopularWindow(sql, now)} GROUP BY r.goods_id) t
    JOIN goods g ON g.id = t.goods_id
    WHERE g.active
    ORDER BY t.n DESC, g.id DESC
    LIMIT ${HOT_GOODS_KEPT}`;
  const tx = redis.multi().del(keys.hotGoods(), keys.hotItems());
  if (rows.length > 0) {
    tx.zadd(keys.hotGoods(), ...rows.flatMap((r) => [r.n, String(r.id)]));
    tx.hset(keys.hotItems(), ...rows.flatMap(({ n: _n, ...item }) => [String(item.id), JSON.stringify(item)]));
  }
  tx.hset(keys.hotItems(), 'at', now);
  await tx.exec();
  return rows.length;
}

/** The list as last computed, most redeemed first (ties: newer id first), with live stock. */
export async function hotGoods(redis: RedisClient, keys: Keys, limit: number): Promise<{ items: HotItem[]; refreshedAt: string | null }> {
  const [ranked, at] = await Promise.all([redis.zrange(keys.hotGoods(), 0, -1, 'WITHSCORES'), redis.hget(keys.hotItems(), 'at')]);
  const entries: Array<{ id: string; n: number }> = [];
  for (let i = 0; i < ranked.length; i += 2) entries.push({ id: ranked[i], n: Number(ranked[i + 1]) });
  // the set holds at most HOT_GOODS_KEPT ids: ordered here, as ties would otherwise sort as strings
  entries.sort((a, b) => b.n - a.n || Number(b.id) - Number(a.id));
  const top = entries.slice(0, limit);
  const ids = top.map((e) => e.id);
  const counts = top.map((e) => e.n);
  if (ids.length === 0) return { items: [], refreshedAt: at ? new Date(Number(at)).toISOString() : null };
  const [stored, stocks] = await Promise.all([
    redis.hmget(keys.hotItems(), ...ids),
    liveStocks({ redis, keys }, ids),
  ]);
  const items: HotItem[] = [];
  stored.forEach((raw, i) => {
    if (raw === null) return;
    items.push({ ...(JSON.parse(raw) as Stored), stock: Number(stocks[i] ?? 0), redemptionsLast7Days: counts[i] });
  });
  return { items, refreshedAt: at ? new Date(Number(at)).toISOString() : null };
}
