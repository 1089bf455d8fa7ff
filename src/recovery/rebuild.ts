/**
 * Rebuild: reconstructs the live Redis state from Postgres — balances, lots, expiry indexes,
 * goods stock and bought counts (per member, and today's where a daily limit applies), lotteries (prize stock,
 * members' cooldowns), transfers (credits still to make, senders' daily totals), open points holds, recent op records
 * (so retries of acknowledged ops still replay),
 * the leaderboards, and the outbox stream ids (up to the persisted watermark). Meant to run while the API is stopped (after Redis was lost); each
 * member and each goods item is replaced as a whole.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import { BOARD_TTL_S, periodBuckets, type Keys, type Period } from '../redis/keys.ts';
import { dayFromString, dayNumber, dayStartMs } from '../engagement/business-day.ts';
import { OFF_BOARD_BIZ_TYPES } from '../leaderboards/apply.ts';
import { advanceStreams } from './watermark.ts';
import { recordEpoch } from './redis-epoch.ts';
import { persistedSold, stockFromRecord } from '../goods/stock.ts';
import { bucketKeys, bucketShare, returnBucket } from '../goods/bucket-stock.ts';
import { rebuildLotteries } from '../lottery/rebuild.ts';
import { frozenTotal, liveRemainders, openHoldsOf, restoreHoldRecords } from '../points/holds-record.ts';
import { rebuildTransfers } from '../transfers/rebuild.ts';
import { slotPipeline } from '../redis/slot-pipeline.ts';

const PAGE = 2000;

export interface RebuildResult {
  members: number;
  lots: number;
  /** open points holds put back (frozen points) */
  holds: number;
  goods: number;
  lotteries: number;
  /** members' lottery cooldowns and daily counts restored from their recent draws */
  drawStates: number;
  /** transfers debited and not credited, back on the completer's pending sets */
  pendingTransfers: number;
  /** senders whose business-day transfer total was restored */
  transferDays: number;
  opRecords: number;
  streaks: number;
  boardEntries: number;
  ms: number;
}

/** Where a rebuild is: members page by page, then one step per remaining stage. */
export interface RebuildProgress {
  stage: 'members' | 'goods' | 'lotteries' | 'transfers' | 'op records' | 'streaks' | 'leaderboards' | 'streams';
  done: number;
  total: number;
}

const AFTER_MEMBERS: Array<RebuildProgress['stage']> = ['goods', 'lotteries', 'transfers', 'op records', 'streaks', 'leaderboards', 'streams'];

export async function rebuildFromPostgres(
  sql: Sql,
  redis: RedisClient,
  keys: Keys,
  o: { idempotencyTtlSeconds: number; timeZone?: string; onProgress?: (p: RebuildProgress) => void },
): Promise<RebuildResult> {
  const started = Date.now();
  const report = o.onProgress ?? (() => {});
  // the count is only worth a query when someone watches
  const memberTotal = o.onProgress ? Number((await sql<Array<{ n: number }>>`SELECT count(*)::bigint AS n FROM point_accounts`)[0].n) : 0;
  report({ stage: 'members', done: 0, total: memberTotal });
  const step = (i: number) => report({ stage: AFTER_MEMBERS[i], done: i, total: AFTER_MEMBERS.length });
  const result: RebuildResult = {
    members: 0, lots: 0, holds: 0, goods: 0, lotteries: 0, drawStates: 0, pendingTransfers: 0, transferDays: 0, opRecords: 0, streaks: 0,
    boardEntries: 0, ms: 0,
  };
  let after = 0;
  for (;;) {
    const accounts = await sql<Array<{ userId: number; available: number; totalEarned: number; tier: number; frozenMember: boolean }>>`
      SELECT a.user_id AS "userId", a.available, a.total_earned AS "totalEarned", a.tier, u.risk_status = 'frozen' AS "frozenMember"
      FROM point_accounts a JOIN users u ON u.id = a.user_id
      WHERE a.user_id > ${after} ORDER BY a.user_id LIMIT ${PAGE}`;
    if (accounts.length === 0) break;
    after = accounts[accounts.length - 1].userId;
    const ids = accounts.map((a) => a.userId);
    const lots = await sql<Array<{ id: string; userId: number; remaining: number; expiresAt: Date }>>`
      SELECT id, user_id AS "userId", remaining, expires_at AS "expiresAt" FROM point_lots
      WHERE user_id = ANY(${ids}::bigint[]) AND remaining > 0`;
    const byUser = new Map<number, Array<(typeof lots)[number]>>();
    for (const l of lots) {
      const list = byUser.get(l.userId);
      if (list) list.push(l);
      else byUser.set(l.userId, [l]);
    }
    const holds = await openHoldsOf(sql, ids);
    const tx = slotPipeline(redis);
    for (const a of accounts) {
      const held = holds.get(a.userId) ?? [];
      const own = liveRemainders(byUser.get(a.userId) ?? [], held);
      const frozen = frozenTotal(held);
      tx.del(keys.account(a.userId), keys.lotsByExpiry(a.userId), keys.lotRemaining(a.userId), keys.hotBought(a.userId));
      tx.hset(keys.account(a.userId), 'avail', a.available - frozen, 'earned', a.totalEarned, 'frozen', frozen, 'tier', a.tier);
      // a frozen member stays frozen (the day's DAILY_GAIN count starts again: it only decides new freezes)
      if (a.frozenMember) tx.hset(keys.account(a.userId), 'rs', 'f');
      restoreHoldRecords(tx, keys, held);
      result.holds += held.length;
      if (own.length > 0) {
        tx.zadd(keys.lotsByExpiry(a.userId), ...own.flatMap((l) => [l.expiresAt.getTime(), l.id]));
        tx.hset(keys.lotRemaining(a.userId), ...own.flatMap((l) => [l.id, l.remaining]));
        const earliest = Math.min(...own.map((l) => l.expiresAt.getTime()));
        tx.zadd(keys.expiryIndexOf(a.userId), earliest, String(a.userId));
      } else {
        tx.zrem(keys.expiryIndexOf(a.userId), String(a.userId));
      }
    }
    await tx.exec();
    result.members += accounts.length;
    result.lots += lots.length;
    report({ stage: 'members', done: result.members, total: Math.max(memberTotal, result.members) });
  }
  step(0);
  result.goods = await rebuildGoods(sql, redis, keys, o.timeZone ?? 'UTC');
  step(1);
  Object.assign(result, await rebuildLotteries(sql, redis, keys));
  step(2);
  Object.assign(result, await rebuildTransfers(sql, redis, keys));
  step(3);
  result.opRecords = await rebuildOpRecords(sql, redis, keys, o.idempotencyTtlSeconds);
  step(4);
  result.streaks = await rebuildStreaks(sql, redis, keys);
  step(5);
  result.boardEntries = await rebuildBoards(sql, redis, keys, o.timeZone ?? 'UTC');
  step(6);
  // the streams start again from what Postgres has persisted, and this Redis is recorded as the
  // verified lifetime: write gates open again (src/recovery/redis-epoch.ts)
  await advanceStreams(redis, keys, sql);
  await recordEpoch({ sql, redis, keys });
  report({ stage: 'streams', done: AFTER_MEMBERS.length, total: AFTER_MEMBERS.length });
  result.ms = Date.now() - started;
  return result;
}

async function rebuildGoods(sql: Sql, redis: RedisClient, keys: Keys, timeZone: string): Promise<number> {
  const rows = await sql<
    Array<{ id: number; pointsPrice: number; perUserLimit: number | null; dailyLimit: number | null; dynamicPricing: boolean;
            startsAt: Date | null; endsAt: Date | null; active: boolean; totalStock: number; hotBuckets: number }>
  >`
    SELECT id, points_price AS "pointsPrice", per_user_limit AS "perUserLimit", daily_limit AS "dailyLimit",
           dynamic_pricing AS "dynamicPricing", hot_buckets AS "hotBuckets", starts_at AS "startsAt", ends_at AS "endsAt", active, total_stock AS "totalStock"
    FROM goods`;
  const sold = await persistedSold(sql, rows.map((g) => g.id));
  const goods = rows.map((g) => ({ ...g, stock: stockFromRecord(g.totalStock, sold.get(g.id) ?? 0) }));
  // a member's units: redemptions not cancelled, and order items that took stock and kept it
  const bought = await sql<Array<{ goodsId: number; userId: number; units: number }>>`
    SELECT goods_id AS "goodsId", user_id AS "userId", SUM(units)::bigint AS units FROM (
      SELECT goods_id, user_id, quantity AS units FROM redemptions WHERE status <> 'cancelled' AND source = 'order'
      UNION ALL
      SELECT i.goods_id, o.user_id, i.quantity FROM order_items i JOIN orders o ON o.id = i.order_id
      WHERE o.source = 'order' AND o.stock_state = 'sold') u
    GROUP BY goods_id, user_id`;
  // daily limits count the units of the business day in progress (the reserve script's day)
  const day = dayNumber(timeZone, Date.now());
  const boughtToday = await sql<Array<{ goodsId: number; userId: number; units: number }>>`
    SELECT r.goods_id AS "goodsId", r.user_id AS "userId", SUM(r.quantity)::bigint AS units
    FROM redemptions r JOIN goods g ON g.id = r.goods_id AND g.daily_limit IS NOT NULL
    WHERE r.status <> 'cancelled' AND r.source = 'order' AND r.created_at >= to_timestamp(${dayStartMs(timeZone, day)}::bigint / 1000.0)
    GROUP BY r.goods_id, r.user_id`;
  // orders' units: each order's record in its items' goods slots (what a cancellation gives back),
  // with the day it counted on where the item has a daily limit
  const taken = await sql<Array<{ orderId: string; goodsId: number; userId: number; quantity: number; unitPoints: number; today: boolean; daily: boolean }>>`
    SELECT o.id AS "orderId", i.goods_id AS "goodsId", o.user_id AS "userId", i.quantity, i.unit_points AS "unitPoints",
           o.created_at >= to_timestamp(${dayStartMs(timeZone, day)}::bigint / 1000.0) AS today, g.daily_limit IS NOT NULL AS daily
    FROM orders o JOIN order_items i ON i.order_id = o.id JOIN goods g ON g.id = i.goods_id
    WHERE o.source = 'order' AND o.stock_state = 'sold'`;
  const returned = await sql<Array<{ opId: string; goodsId: number; userId: number; quantity: number }>>`
    SELECT op_id AS "opId", goods_id AS "goodsId", user_id AS "userId", quantity FROM redemptions WHERE status = 'cancelled' AND source = 'order'`;
  const todayByOrder = new Map<string, number>();
  for (const t of taken) {
    if (t.today && t.daily) todayByOrder.set(`${t.goodsId}:${t.userId}`, (todayByOrder.get(`${t.goodsId}:${t.userId}`) ?? 0) + t.quantity);
  }
  for (const b of boughtToday) {
    const extra = todayByOrder.get(`${b.goodsId}:${b.userId}`);
    if (extra) {
      b.units = Number(b.units) + extra;
      todayByOrder.delete(`${b.goodsId}:${b.userId}`);
    }
  }
  for (const [k, units] of todayByOrder) {
    const [goodsId, userId] = k.split(':').map(Number);
    boughtToday.push({ goodsId, userId, units });
  }
  const tx = slotPipeline(redis);
  for (const g of goods) {
    tx.del(
      keys.goods(g.id), keys.bought(g.id), keys.dailyBought(g.id), keys.reservations(g.id), keys.reservationDeadlines(g.id),
      keys.ordersTaken(g.id), keys.returnedRedemptions(g.id),
    );
    const settings = {
      price: g.pointsPrice,
      limit: g.perUserLimit ?? 0,
      daily: g.dailyLimit ?? 0,
      dyn: g.dynamicPricing ? 1 : 0,
      startsAt: g.startsAt?.getTime() ?? 0,
      endsAt: g.endsAt?.getTime() ?? 0,
      active: g.active ? 1 : 0,
    };
    if (g.hotBuckets > 0) {
      // a hot item: its units split evenly over its buckets (src/goods/bucket-stock.ts)
      for (const key of bucketKeys(keys, g.id, g.hotBuckets)) tx.del(key);
      tx.hset(keys.goods(g.id), { stock: 0, hot: g.hotBuckets, ...settings });
      for (let k = 0; k < g.hotBuckets; k++) tx.hset(keys.bucket(g.id, k), { stock: bucketShare(g.stock, g.hotBuckets, k), ...settings });
    } else {
      tx.hset(keys.goods(g.id), { stock: g.stock, ...settings });
    }
    tx.sadd(keys.goodsIndex(), String(g.id));
  }
  // hot goods count a member's units in the member's slot (lua/hot-charge-7.lua)
  const hot = new Map(goods.filter((g) => g.hotBuckets > 0).map((g) => [g.id, g.hotBuckets]));
  for (const b of bought) {
    if (hot.has(b.goodsId)) tx.hset(keys.hotBought(b.userId), String(b.goodsId), b.units);
    else tx.hset(keys.bought(b.goodsId), String(b.userId), b.units);
  }
  for (const b of boughtToday) {
    if (hot.has(b.goodsId)) tx.hset(keys.hotBought(b.userId), `d:${b.goodsId}`, `${day}:${b.units}`);
    else tx.hset(keys.dailyBought(b.goodsId), String(b.userId), `${day}:${b.units}`);
  }
  for (const t of taken) {
    tx.hset(keys.ordersTaken(t.goodsId), t.orderId, JSON.stringify({ u: Number(t.userId), q: t.quantity, p: Number(t.unitPoints), ...(t.today && t.daily ? { dy: day } : {}) }));
  }
  for (const r of returned) {
    const b = hot.get(r.goodsId) ?? 0;
    if (b > 0) {
      // a hot item's refund marks: its bucket's and the member's, so a replayed refund returns nothing more
      tx.hset(keys.bucketReturned(r.goodsId, returnBucket(r.opId, b)), r.opId, r.quantity);
      tx.hset(keys.hotBought(r.userId), `r:${r.opId}`, r.quantity);
    } else {
      tx.hset(keys.returnedRedemptions(r.goodsId), r.opId, r.quantity);
    }
  }
  await tx.exec();
  return goods.length;
}

/**
 * Idempotency records of recent ops (and the by-id references of redemptions), so a client
 * retrying an acknowledged op gets a replay. Paged by ledger id.
 */
async function rebuildOpRecords(sql: Sql, redis: RedisClient, keys: Keys, ttlSeconds: number): Promise<number> {
  let after = 0;
  let count = 0;
  for (;;) {
    const rows = await sql<
      Array<{ id: number; opId: string; userId: number; kind: string; delta: number; balanceAfter: number; bizType: string;
              bizId: string | null; h: string | null; k: string; at: number; goodsId: number | null; quantity: number | null;
              exchangeNo: string | null }>
    >`
      SELECT l.id, l.op_id AS "opId", l.user_id AS "userId", l.kind, l.delta, l.balance_after AS "balanceAfter",
             l.biz_type AS "bizType", l.biz_id AS "bizId", l.request_hash AS h, l.idem_key AS k,
             round(extract(epoch FROM l.created_at) * 1000)::bigint AS at,
             r.goods_id AS "goodsId", r.quantity, r.exchange_no AS "exchangeNo"
      FROM ledger_entries l LEFT JOIN redemptions r ON r.id = l.op_id
      WHERE l.idem_key IS NOT NULL AND l.created_at > now() - make_interval(secs => ${ttlSeconds}) AND l.id > ${after}
      ORDER BY l.id LIMIT ${PAGE}`;
    if (rows.length === 0) break;
    after = rows[rows.length - 1].id;
    const tx = slotPipeline(redis);
    for (const r of rows) {
      const op = {
        opId: r.opId, kind: r.kind, userId: r.userId, delta: r.delta, balanceAfter: r.balanceAfter,
        available: r.balanceAfter, bizType: r.bizType, bizId: r.bizId ?? '', at: r.at, h: r.h, k: r.k,
        ...(r.goodsId !== null ? { goodsId: r.goodsId, quantity: r.quantity, exchangeNo: r.exchangeNo } : {}),
      };
      const left = Math.max(1, Math.ceil(ttlSeconds - (Date.now() - r.at) / 1000));
      tx.set(keys.idem(r.userId, r.k), JSON.stringify(op), 'EX', left);
      if (r.goodsId !== null) tx.set(keys.opRef(r.userId, r.opId), r.k, 'EX', left);
    }
    await tx.exec();
    count += rows.length;
  }
  return count;
}

/**
 * Check-in streaks from the check-in ledger rows (bizId = the business day number): the last day,
 * the run of consecutive days ending there, the longest run, and the last result (its balance is
 * filled in when it is shown: the rebuild cannot know the balance of that moment).
 */
async function rebuildStreaks(sql: Sql, redis: RedisClient, keys: Keys): Promise<number> {
  let after = 0;
  let count = 0;
  for (;;) {
    const rows = await sql<Array<{ userId: number; last: number; streak: number; longest: number; points: number }>>`
      WITH d AS (
        SELECT user_id, biz_id::int AS day, max(delta) AS points FROM ledger_entries
        WHERE biz_type = 'checkin' AND user_id > ${after} AND user_id <= ${after} + 10000 GROUP BY 1, 2
      ), runs AS (
        SELECT user_id, day - row_number() OVER (PARTITION BY user_id ORDER BY day) AS grp, day, points FROM d
      ), spans AS (
        SELECT user_id, grp, max(day) AS last, count(*)::int AS len FROM runs GROUP BY 1, 2
      )
      SELECT s.user_id AS "userId", s.last, s.len AS streak,
             (SELECT max(len) FROM spans x WHERE x.user_id = s.user_id)::int AS longest,
             (SELECT points FROM d WHERE d.user_id = s.user_id AND d.day = s.last)::int AS points
      FROM spans s
      WHERE s.last = (SELECT max(last) FROM spans y WHERE y.user_id = s.user_id)
      ORDER BY s.user_id`;
    const [{ more }] = await sql<Array<{ more: boolean }>>`
      SELECT EXISTS (SELECT 1 FROM ledger_entries WHERE biz_type = 'checkin' AND user_id > ${after} + 10000) AS more`;
    const tx = slotPipeline(redis);
    for (const r of rows) {
      tx.del(keys.streak(r.userId));
      tx.hset(keys.streak(r.userId), {
        last: r.last,
        streak: r.streak,
        longest: r.longest,
        result: JSON.stringify({ day: r.last, streak: r.streak, points: r.points }),
      });
    }
    await tx.exec();
    count += rows.length;
    if (!more) break;
    after += 10_000;
  }
  return count;
}

/**
 * The boards from earns in the ledger (what countsOnBoards counts), by the business calendar: the
 * all-time board, and each period bucket still kept (BOARD_TTL_S), so history survives a rebuild.
 */
async function rebuildBoards(sql: Sql, redis: RedisClient, keys: Keys, timeZone: string): Promise<number> {
  const now = Date.now();
  const keepFromMs = now - Math.max(...Object.values(BOARD_TTL_S)) * 1000;
  const totals = new Map<string, { period: Period; members: Map<number, number> }>();
  const add = (period: Period, bucket: string, userId: number, points: number) => {
    const key = keys.board(period, bucket);
    const t = totals.get(key) ?? { period, members: new Map<number, number>() };
    t.members.set(userId, (t.members.get(userId) ?? 0) + points);
    totals.set(key, t);
  };
  let after = 0;
  for (;;) {
    // one member page at a time: a day's earns per member, by the zone's calendar
    const rows = await sql<Array<{ userId: number; day: string; points: number }>>`
      SELECT user_id AS "userId", to_char(created_at AT TIME ZONE ${timeZone}, 'YYYY-MM-DD') AS day, SUM(delta)::bigint AS points
      FROM ledger_entries
      WHERE kind = 'earn' AND NOT (biz_type = ANY(${[...OFF_BOARD_BIZ_TYPES]}::text[])) AND user_id > ${after} AND user_id <= ${after} + 5000
      GROUP BY 1, 2`;
    const [{ more }] = await sql<Array<{ more: boolean }>>`
      SELECT EXISTS (SELECT 1 FROM ledger_entries WHERE kind = 'earn' AND user_id > ${after} + 5000) AS more`;
    for (const r of rows) {
      const dayStart = dayStartMs(timeZone, dayFromString(r.day));
      const b = periodBuckets(dayStart, timeZone);
      add('all', b.all, r.userId, r.points);
      if (dayStart < keepFromMs) continue;
      for (const p of ['daily', 'weekly', 'monthly'] as const) add(p, b[p], r.userId, r.points);
    }
    if (!more) break;
    after += 5000;
  }
  let entries = 0;
  const tx = redis.pipeline();
  for (const [key, t] of totals) {
    tx.del(key);
    tx.zadd(key, ...[...t.members].flatMap(([u, pts]) => [pts, String(u)]));
    if (t.period !== 'all') tx.expire(key, BOARD_TTL_S[t.period]);
    entries += t.members.size;
  }
  await tx.exec();
  return entries;
}
