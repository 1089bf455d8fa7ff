/**
 * The recommendation model in Redis: built whole from Postgres by the recommend worker role
 * (goods, catalog redemptions, balances), read back piece by piece by the request path, which
 * never touches Postgres. A build writes its keys under a new build id and then moves
 * `{reco}:current` to it; the build before stays readable until the next one (a request that read
 * the old id still finds its keys), older ones are deleted. It is derived data: a Redis lost or
 * restored gets it back at the next build, and until then members get an empty list, never an
 * error. Key layout: src/redis/keys.ts.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import { countedRedemption, inPopularWindow } from '../goods/popularity.ts';
import { GOODS_COLUMNS, present, type Goods, type GoodsRow } from '../goods/service.ts';
import type { Keys } from '../redis/keys.ts';
import {
  buildBands,
  buildContentVectors,
  encodeVec,
  historyOf,
  type BandCounts,
  type PeerCounts,
  type Vec,
} from './scoring.ts';

/** Most redeemed goods of the last 7 days the model keeps for cold starts. */
export const POPULAR_KEPT = 200;
const WRITE_CHUNK = 1000;

/** The item as listed, without what the request reads live (stock, the member's price). */
export type StoredItem = Omit<Goods, 'stock' | 'price' | 'pricing'>;

export interface BuildReport {
  build: string;
  goods: number;
  members: number;
  redemptions: number;
  bands: number;
}

/** Reads Postgres, builds the model and makes it current in Redis. */
export async function buildModel(sql: Sql, redis: RedisClient, keys: Keys, now = Date.now()): Promise<BuildReport> {
  // what arrives from here on counts toward the next build
  const fresh = Number((await redis.get(keys.recoFresh())) ?? 0);
  const rows = await sql<GoodsRow[]>`SELECT ${sql.unsafe(GOODS_COLUMNS)} FROM goods WHERE active ORDER BY id`;
  const redemptions = await sql<Array<{ userId: number; goodsId: number }>>`
    SELECT r.user_id AS "userId", r.goods_id AS "goodsId" FROM redemptions r JOIN goods g ON g.id = r.goods_id
    WHERE ${countedRedemption(sql)} AND g.active
    ORDER BY r.user_id, r.created_at, r.id`;
  const byMember = new Map<number, number[]>();
  for (const r of redemptions) {
    let list = byMember.get(r.userId);
    if (!list) byMember.set(r.userId, (list = []));
    list.push(r.goodsId);
  }
  const balances = new Map(
    (
      await sql<Array<{ userId: number; available: number }>>`
        SELECT user_id AS "userId", available FROM point_accounts WHERE user_id = ANY(${[...byMember.keys()]}::bigint[])`
    ).map((a) => [a.userId, a.available]),
  );
  const popular = await sql<Array<{ goodsId: number; n: number }>>`
    SELECT r.goods_id AS "goodsId", count(*)::bigint AS n FROM redemptions r JOIN goods g ON g.id = r.goods_id
    WHERE ${inPopularWindow(sql, now)} AND g.active
    GROUP BY r.goods_id ORDER BY n DESC, r.goods_id DESC LIMIT ${POPULAR_KEPT}`;

  const members = [...byMember].map(([userId, list]) => ({ userId, balance: balances.get(userId) ?? 0, history: historyOf(list) }));
  const vectors = buildContentVectors(rows);
  const bands = buildBands(members);
  const build = `${now.toString(36)}${randomBytes(3).toString('hex')}`;
  await writeModel(redis, keys, build, { rows, vectors, bands, members, popular });

  const previous = await redis.get(keys.recoCurrent());
  await redis
    .multi()
    .hset(keys.recoMeta(build), {
      builtAt: now,
      prev: previous ?? '',
      bands: JSON.stringify([...bands.keys()]),
      members: members.length,
      goods: rows.length,
      redemptions: redemptions.length,
    })
    .set(keys.recoCurrent(), build)
    .decrby(keys.recoFresh(), fresh)
    .exec();
  if (previous) {
    const older = await redis.hget(keys.recoMeta(previous), 'prev');
    if (older) await dropBuild(redis, keys, older);
  }
  return { build, goods: rows.length, members: members.length, redemptions: redemptions.length, bands: bands.size };
}

async function writeModel(
  redis: RedisClient,
  keys: Keys,
  build: string,
  m: {
    rows: GoodsRow[];
    vectors: Map<number, Vec>;
    bands: Map<number, BandCounts>;
    members: Array<{ userId: number; balance: number; history: number[] }>;
    popular: Array<{ goodsId: number; n: number }>;
  },
): Promise<void> {
  const fields: Array<[key: string, field: string, value: string]> = [];
  for (const r of m.rows) {
    const { stock: _s, price: _p, ...item } = present(r, 0);
    fields.push([keys.recoItems(build), String(r.id), JSON.stringify(item)]);
    fields.push([keys.recoVectors(build), String(r.id), JSON.stringify({ c: r.categoryId, v: JSON.parse(encodeVec(m.vectors.get(r.id)!)) })]);
  }
  for (const [b, band] of m.bands) {
    for (const [i, n] of band.n) fields.push([keys.recoBand(build, b), `n:${i}`, String(n)]);
    for (const [i, list] of band.neighbours) fields.push([keys.recoBand(build, b), String(i), JSON.stringify(list)]);
  }
  for (const mem of m.members) {
    fields.push([keys.recoMembers(build), String(mem.userId), JSON.stringify({ h: mem.history, bal: mem.balance })]);
  }
  for (let i = 0; i < fields.length; i += WRITE_CHUNK) {
    const p = redis.pipeline();
    for (const [key, field, value] of fields.slice(i, i + WRITE_CHUNK)) p.hset(key, field, value);
    await p.exec();
  }
  const p = redis.pipeline();
  for (let i = 0; i < m.rows.length; i += WRITE_CHUNK) {
    p.zadd(keys.recoPrices(build), ...m.rows.slice(i, i + WRITE_CHUNK).flatMap((r) => [r.pointsPrice, String(r.id)]));
  }
  if (m.popular.length > 0) p.zadd(keys.recoPopular(build), ...m.popular.flatMap((x) => [x.n, String(x.goodsId)]));
  await p.exec();
}

async function dropBuild(redis: RedisClient, keys: Keys, build: string): Promise<void> {
  const bands = JSON.parse((await redis.hget(keys.recoMeta(build), 'bands')) ?? '[]') as number[];
  await redis.unlink(
    keys.recoMeta(build),
    keys.recoItems(build),
    keys.recoPrices(build),
    keys.recoVectors(build),
    keys.recoMembers(build),
    keys.recoPopular(build),
    ...bands.map((b) => keys.recoBand(build, b)),
  );
}

/** Counts catalog redemptions a persisted batch carried (the persist worker's afterCommit). */
export async function noteRedemptions(redis: RedisClient, keys: Keys, ops: Array<{ kind: string; bizType: string; goodsId?: number }>): Promise<void> {
  const n = ops.filter((o) => o.kind === 'spend' && o.bizType === 'redemption' && o.goodsId !== undefined).length;
  if (n > 0) await redis.incrby(keys.recoFresh(), n);
}

/** Catalog redemptions persisted since the last build began. */
export async function freshRedemptions(redis: RedisClient, keys: Keys): Promise<number> {
  return Number((await redis.get(keys.recoFresh())) ?? 0);
}

/** When the current build was made (null: none yet). */
export async function builtAt(redis: RedisClient, keys: Keys): Promise<number | null> {
  const build = await redis.get(keys.recoCurrent());
  if (!build) return null;
  const at = await redis.hget(keys.recoMeta(build), 'builtAt');
  return at === null ? null : Number(at);
}

/** A co-occurrence list as kept in the process: neighbour ids and their member counts, side by side. */
interface NeighbourList {
  ids: Float64Array;
  counts: Float64Array;
}

/**
 * Co-occurrence lists (one per band and history item, up to NEIGHBOURS_KEPT pairs, ~1.6 KB each as
 * typed arrays) and member counts the process keeps per build, at most this many of each; past it
 * the oldest read go first.
 */
const BAND_ENTRIES_KEPT = 20_000;

/**
 * The request path's reads of the model (Redis only). What a build never changes — goods vectors,
 * categories and listings, the popularity list, the peer bands' co-occurrence lists and member
 * counts — is kept in this process once read, for the current build only (dropped when `current`
 * moves), so a request fetches only what it has not seen yet; at most the model's goods are held,
 * and BAND_ENTRIES_KEPT lists and counts.
 */
export class ModelReader {
  private cached: {
    build: string;
    content: Map<number, { c: number | null; v: Vec } | null>;
    items: Map<number, StoredItem | null>;
    popularity?: Map<number, number>;
    /** `<band>:<goods id>` → the item's co-occurrence list in that band (null: none) */
    lists: Map<string, NeighbourList | null>;
    /** `<band>:<goods id>` → members of that band who redeemed the item (null: none) */
    counts: Map<string, number | null>;
  } = ModelReader.emptyCache('');

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async current(): Promise<string | null> {
    return this.redis.get(this.keys.recoCurrent());
  }

  private static emptyCache(build: string) {
    return { build, content: new Map(), items: new Map(), lists: new Map(), counts: new Map() };
  }

  private cacheFor(build: string) {
    if (this.cached.build !== build) this.cached = ModelReader.emptyCache(build);
    return this.cached;
  }

  /**
   * `field(id)` of each band's hash for each id, from the process's cache where it was read before;
   * what is missing is read with one HMGET per band and kept (oldest dropped past BAND_ENTRIES_KEPT).
   */
  private async bandFields<T>(
    build: string,
    cache: Map<string, T | null>,
    bands: number[],
    ids: number[],
    field: (id: number) => string,
    decode: (raw: string) => T,
  ): Promise<Array<Array<T | null>>> {
    const { redis, keys } = this;
    const out = bands.map(() => new Array<T | null>(ids.length).fill(null));
    await Promise.all(
      bands.map(async (b, bi) => {
        const missing: number[] = [];
        ids.forEach((id, i) => {
          const hit = cache.get(`${b}:${id}`);
          if (hit === undefined) missing.push(i);
          else out[bi][i] = hit;
        });
        if (missing.length === 0) return;
        const raws = await redis.hmget(keys.recoBand(build, b), ...missing.map((i) => field(ids[i])));
        missing.forEach((i, j) => {
          const raw = raws[j];
          const value = raw === null ? null : decode(raw);
          out[bi][i] = value;
          if (cache.size >= BAND_ENTRIES_KEPT) cache.delete(cache.keys().next().value!);
          cache.set(`${b}:${ids[i]}`, value);
        });
      }),
    );
    return out;
  }

  /** The member's history (most recent first) and balance as of the build; null when they had none. */
  async member(build: string, userId: number): Promise<{ history: number[]; balance: number } | null> {
    const raw = await this.redis.hget(this.keys.recoMembers(build), String(userId));
    if (raw === null) return null;
    const m = JSON.parse(raw) as { h: number[]; bal: number };
    return { history: m.h, balance: m.bal };
  }

  /** Goods whose list price lies in [low, high], at most `max` (cheapest first). */
  async goodsPricedBetween(build: string, low: number, high: number, max: number): Promise<number[]> {
    const ids = await this.redis.zrangebyscore(this.keys.recoPrices(build), low, high, 'LIMIT', 0, max);
    return ids.map(Number);
  }

  /** Vectors and categories, co-occurrence of the peer bands and popularity for a ranking. */
  async rankingData(build: string, history: number[], candidates: number[], bands: number[]) {
    const { redis, keys } = this;
    const cache = this.cacheFor(build);
    const ids = [...history, ...candidates];
    const missing = ids.filter((id) => !cache.content.has(id));
    const [vecs, popular, lists] = await Promise.all([
      missing.length > 0 ? redis.hmget(keys.recoVectors(build), ...missing.map(String)) : Promise.resolve([]),
      cache.popularity ? Promise.resolve(null) : redis.zrange(keys.recoPopular(build), 0, -1, 'WITHSCORES'),
      history.length > 0 ? this.bandFields(build, cache.lists, bands, history, String, decodeList) : Promise.resolve([]),
    ]);
    missing.forEach((id, i) => {
      const raw = vecs[i];
      if (raw === null) return cache.content.set(id, null);
      const { c, v } = JSON.parse(raw) as { c: number | null; v: Array<[string, number]> };
      cache.content.set(id, { c, v: new Map(v) });
    });
    if (popular) {
      const counts = new Map<number, number>();
      for (let i = 0; i < popular.length; i += 2) counts.set(Number(popular[i]), Number(popular[i + 1]));
      cache.popularity = counts;
    }

    // co-occurrence lists of the history items, then member counts of what they reach
    const peers: PeerCounts = { neighbours: history.map(() => new Map()), n: new Map() };
    for (const perItem of lists) {
      history.forEach((_, k) => {
        const list = perItem[k];
        if (!list) return;
        const into = peers.neighbours[k];
        for (let i = 0; i < list.ids.length; i++) into.set(list.ids[i], (into.get(list.ids[i]) ?? 0) + list.counts[i]);
      });
    }
    const wanted = new Set(candidates);
    const reached = [...new Set(peers.neighbours.flatMap((m) => [...m.keys()].filter((j) => wanted.has(j))))];
    const counted = reached.length > 0 ? [...history, ...reached] : [];
    if (counted.length > 0) {
      const counts = await this.bandFields(build, cache.counts, bands, counted, (id) => `n:${id}`, Number);
      for (const perItem of counts) {
        counted.forEach((id, i) => {
          const n = perItem[i];
          if (n !== null) peers.n.set(id, (peers.n.get(id) ?? 0) + n);
        });
      }
    }

    const vectors = new Map<number, Vec>();
    const categories = new Map<number, number | null>();
    for (const id of ids) {
      const e = cache.content.get(id);
      if (!e) continue;
      vectors.set(id, e.v);
      categories.set(id, e.c);
    }
    return { vectors, categories, peers, popularity: cache.popularity! };
  }

  async items(build: string, ids: number[]): Promise<Map<number, StoredItem>> {
    const cache = this.cacheFor(build);
    const missing = ids.filter((id) => !cache.items.has(id));
    if (missing.length > 0) {
      const raw = await this.redis.hmget(this.keys.recoItems(build), ...missing.map(String));
      missing.forEach((id, i) => cache.items.set(id, raw[i] === null ? null : (JSON.parse(raw[i]!) as StoredItem)));
    }
    return new Map(ids.flatMap((id) => {
      const item = cache.items.get(id);
      return item ? [[id, item] as const] : [];
    }));
  }
}

/** A stored co-occurrence list, JSON [[goods id, members], …], as typed arrays. */
function decodeList(raw: string): NeighbourList {
  const pairs = JSON.parse(raw) as Array<[number, number]>;
  const ids = new Float64Array(pairs.length);
  const counts = new Float64Array(pairs.length);
  pairs.forEach(([j, c], i) => {
    ids[i] = j;
    counts[i] = c;
  });
  return { ids, counts };
}
