/**
 * The redemption saga of hot goods (goods.hot_buckets = B > 0; layout in src/goods/bucket-stock.ts):
 *
 *   reserve in one bucket {g<id>:b<k>} (lua/hot-reserve-3.lua: sale, price, the bucket's stock, a
 *   hold keyed by (member, key) with a deadline) → charge in the member's slot
 *   (lua/hot-charge-7.lua: the per-member and daily limits against the member's own counts, and
 *   the points, in one step; the op and outbox as lua/charge-6.lua) → confirm in the bucket.
 *
 * The same round trips as an ordinary redemption, and no slot every request touches: buckets are
 * spread by (member, key), and a member's limit lives in the member's slot, where the member's
 * concurrent requests are serialized, so the limit stays exact. A refused charge (limit, points,
 * frozen) settles the hold like an ordinary one: a tombstone on the key, then the units go back to
 * the bucket. A hold an API crash left behind is settled by sweep() after its deadline.
 *
 * A request takes its units from one bucket: its first bucket is picked from (member, key), so
 * retries of one key meet their own hold; an empty bucket sends it on to the next, and SOLD_OUT is
 * answered only after every bucket said empty (or was seen empty by this process within the last
 * SOLD_OUT_MEMO_MS). A request for more units than any single bucket has left is SOLD_OUT even if
 * the buckets together have them: hot items are sold one or a few units at a time. While some
 * bucket still holds units for requests in flight, SOLD_OUT waits for them (HOLD_WAIT_MS).
 */
import { randomHex } from '../crypto/random-pool.ts';
import type { Deps } from '../deps.ts';
import { recentOffsetMs } from '../engagement/business-day.ts';
import { BucketStock } from '../goods/bucket-stock.ts';
import type { GoodsService } from '../goods/service.ts';
import { countOutcome } from '../metrics/outcomes.ts';
import { keyHash, newExchangeNo, newOpId } from '../points/idempotency.ts';
import type { Op } from '../points/op.ts';
import { opResult, type PointsService } from '../points/service.ts';
import { fnv1a } from '../redis/keys.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import { fromOp, holdId, priceChanged, redeemHash, replayOf, soldOutRefusal, type Hold } from './holds.ts';
import type { RedeemResult, SettleOutcome } from './service.ts';

/** How long a process trusts its copy of an item's B. A layout changes only while the item is off sale. */
const LAYOUT_TTL_MS = 1000;
/** As the ordinary path's memo (src/redemptions/service.ts): refuses more for a moment, never sells more. */
const SOLD_OUT_MEMO_MS = 25;
/**
 * A request that finds no bucket with its units while some bucket has fresh holds (made in the
 * last second: requests in flight, not orphans of a dead API) waits for them (a hold whose charge
 * the member's limit or balance refuses gives its units back within a round trip) and asks those
 * buckets again, for at most this long, before answering SOLD_OUT: so units held by requests
 * about to fail are sold to the ones waiting, not left over when the burst is gone.
 */
const HOLD_WAIT_MS = 200;
const HOLD_POLL_MS = 10;
/** Bounds the per-process caches against requests for many distinct ids. */
const CACHE_MAX = 10_000;

interface BucketHold {
  bucket: number;
  token: string;
  unitPrice: number;
  opId: string;
  limit: number;
  daily: number;
}

export class HotRedemptions {
  private readonly layout = new Map<number, { b: number; until: number }>();
  private readonly emptyUntil = new Map<string, number>();
  private readonly buckets: BucketStock;

  constructor(
    private readonly deps: Deps,
    private readonly points: PointsService,
    private readonly goods: GoodsService,
    private readonly priceFactor: (userId: number) => Promise<number>,
  ) {
    this.buckets = new BucketStock(deps);
  }

  /** The item's B as this process last read it, while that copy is trusted; else undefined. */
  cachedBuckets(goodsId: number, now = Date.now()): number | undefined {
    const cached = this.layout.get(goodsId);
    return cached && cached.until > now ? cached.b : undefined;
  }

  /**
   * An item's B (0: ordinary, or unknown to Redis and Postgres alike), from this process's cache;
   * an item missing from Redis is loaded into it first, so its layout is known.
   */
  async bucketsOf(goodsId: number): Promise<number> {
    const now = Date.now();
    const cached = this.cachedBuckets(goodsId, now);
    if (cached !== undefined) return cached;
    let b = await this.buckets.layoutOf(goodsId);
    if (b === null && (await this.goods.ensureInRedis(goodsId))) b = await this.buckets.layoutOf(goodsId);
    if (this.layout.size >= CACHE_MAX) this.layout.clear();
    this.layout.set(goodsId, { b: b ?? 0, until: now + LAYOUT_TTL_MS });
    return b ?? 0;
  }

  async redeem(userId: number, goodsId: number, buckets: number, quantity: number, idempotencyKey: string, expectedPrice?: number): Promise<RedeemResult> {
    const kh = keyHash(idempotencyKey);
    const hash = redeemHash(goodsId, quantity, expectedPrice);
    const soldOut = this.allEmpty(goodsId, buckets);
    const [prior, factor] = await Promise.all([this.points.findByKey(userId, kh), soldOut ? 1000 : this.priceFactor(userId)]);
    const replay = replayOf(prior, hash);
    if (replay) return replay;
    if (soldOut) throw soldOutRefusal();
    const hold = await this.reserve(userId, kh, goodsId, buckets, quantity, hash, factor, expectedPrice);
    let charged: { op: Op; replayed: boolean };
    try {
      charged = await this.charge(userId, kh, hash, goodsId, quantity, hold);
    } catch (err) {
      await this.settle(goodsId, hold.bucket, userId, hold.opId, kh, hold.token);
      throw err;
    }
    if (charged.op.opId === hold.opId && charged.op.t === hold.token) {
      // as the ordinary path: the answer does not wait for confirm; the sweeper confirms a lost one
      this.confirm(goodsId, hold.bucket, holdId(userId, kh), hold.token).catch(() => {});
    } else {
      // a concurrent attempt with the same key was charged first: give our units back
      await this.settle(goodsId, hold.bucket, userId, hold.opId, kh, hold.token);
    }
    return { redemption: fromOp(charged.op), replayed: charged.replayed };
  }

  /** Holds the units in the first bucket, from the one (member, key) picks, that has them. */
  private async reserve(
    userId: number, kh: string, goodsId: number, buckets: number, quantity: number, hash: string, factor: number, expectedPrice?: number,
  ): Promise<BucketHold> {
    const { redis, keys, env } = this.deps;
    const opId = newOpId();
    const token = randomHex(8);
    const first = fnv1a(holdId(userId, kh)) % buckets;
    const call = (k: number) =>
      redis.pmHotReserve(
        keys.bucket(goodsId, k), keys.bucketReservations(goodsId, k), keys.bucketDeadlines(goodsId, k),
        opId, userId, quantity, hash, env.RESERVATION_TIMEOUT_MS, '', token, kh, factor, expectedPrice ?? '',
      );
    const waitUntil = Date.now() + HOLD_WAIT_MS;
    let order = Array.from({ length: buckets }, (_, i) => (first + i) % buckets);
    for (;;) {
      const pending: number[] = [];
      for (const k of order) {
        // the first bucket is always asked: a retry of this key finds its own hold there
        if (k !== first && this.seenEmpty(goodsId, k)) continue;
        let reply = await call(k);
        if (Number(reply[0]) === ScriptCode.GoodsNotFound && (await this.goods.ensureInRedis(goodsId))) reply = await call(k);
        const code = Number(reply[0]);
        if (code === 1) {
          countOutcome('reserve', code);
          return {
            bucket: k, token: String(reply[1]), unitPrice: Number(reply[2]), opId: String(reply[4]), limit: Number(reply[5]), daily: Number(reply[6]),
          };
        }
        if (code === ScriptCode.SoldOut) {
          if (Number(reply[2]) > 0) pending.push(k);
          else if (Number(reply[1]) === 0) this.markEmpty(goodsId, k);
          continue;
        }
        countOutcome('reserve', code);
        if (code === ScriptCode.PriceChanged) throw priceChanged(Number(reply[1]), expectedPrice);
        throw scriptError(code);
      }
      if (pending.length === 0 || Date.now() >= waitUntil) break;
      // only the buckets whose holds may give units back are asked again
      order = pending;
      await new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS));
    }
    countOutcome('reserve', ScriptCode.SoldOut);
    throw scriptError(ScriptCode.SoldOut);
  }

  private async charge(userId: number, kh: string, hash: string, goodsId: number, quantity: number, hold: BucketHold) {
    const { redis, keys, env } = this.deps;
    const extra = { goodsId, quantity, exchangeNo: newExchangeNo(), bizType: 'redemption', bizId: String(goodsId) };
    const reply = await this.points.withHydration(userId, () =>
      redis.pmHotCharge(
        keys.account(userId), keys.lotsByExpiry(userId), keys.lotRemaining(userId), keys.idem(userId, kh),
        keys.opRef(userId, hold.opId), keys.outboxOf(userId), keys.hotBought(userId),
        hold.opId, userId, hold.unitPrice * quantity, hash, env.IDEMPOTENCY_TTL_SECONDS, '', hold.token, JSON.stringify(extra), kh, '',
        goodsId, quantity, hold.limit, hold.daily, recentOffsetMs(env.BUSINESS_TIMEZONE, Date.now()),
      ),
    );
    countOutcome('charge', Number(reply[0]));
    return opResult(reply);
  }

  private confirm(goodsId: number, bucket: number, hold: string, token: string): Promise<number> {
    const { redis, keys } = this.deps;
    return redis.pmConfirm(keys.bucketReservations(goodsId, bucket), keys.bucketDeadlines(goodsId, bucket), hold, token);
  }

  /** As RedemptionService.settle, for a hold in a bucket: confirmed if the key's op is this charge, else released. */
  async settle(goodsId: number, bucket: number, userId: number, opId: string, kh: string, token: string): Promise<SettleOutcome> {
    const { redis, keys, env } = this.deps;
    const abort = await redis.pmAbort(keys.idem(userId, kh), token, env.IDEMPOTENCY_TTL_SECONDS);
    if (Number(abort[0]) === 1) {
      const op = JSON.parse(String(abort[1])) as Op;
      if (op.opId === opId && op.t === token) {
        await this.confirm(goodsId, bucket, holdId(userId, kh), token);
        return 'confirmed';
      }
    }
    await redis.pmHotRelease(keys.bucket(goodsId, bucket), keys.bucketReservations(goodsId, bucket), keys.bucketDeadlines(goodsId, bucket), holdId(userId, kh), token);
    this.emptyUntil.delete(`${goodsId}:${bucket}`);
    return 'released';
  }

  /** Settles bucket holds past their deadline, for every hot item with Redis state; adds to `counts`. */
  async sweep(now: number, graceMs: number, batch: number, counts: Record<SettleOutcome, number>): Promise<void> {
    const { redis, keys } = this.deps;
    for (const gid of await redis.smembers(keys.goodsIndex())) {
      const buckets = Number((await redis.hget(keys.goods(gid), 'hot')) ?? 0);
      for (let k = 0; k < buckets; k++) {
        const due = await redis.zrangebyscore(keys.bucketDeadlines(gid, k), '-inf', now - graceMs, 'LIMIT', 0, batch);
        if (due.length === 0) continue;
        const raws = await redis.hmget(keys.bucketReservations(gid, k), ...due);
        for (let i = 0; i < due.length; i++) {
          const raw = raws[i];
          if (raw === null) {
            await redis.zrem(keys.bucketDeadlines(gid, k), due[i]);
            continue;
          }
          const r = JSON.parse(raw) as Hold;
          counts[await this.settle(Number(gid), k, r.u, r.o, r.k, r.t)]++;
        }
      }
    }
  }

  private seenEmpty(goodsId: number, k: number): boolean {
    return (this.emptyUntil.get(`${goodsId}:${k}`) ?? 0) > Date.now();
  }

  private allEmpty(goodsId: number, buckets: number): boolean {
    for (let k = 0; k < buckets; k++) if (!this.seenEmpty(goodsId, k)) return false;
    return true;
  }

  private markEmpty(goodsId: number, k: number): void {
    if (this.emptyUntil.size >= CACHE_MAX) this.emptyUntil.clear();
    this.emptyUntil.set(`${goodsId}:${k}`, Date.now() + SOLD_OUT_MEMO_MS);
  }
}
