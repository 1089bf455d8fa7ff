/**
 * Redemption saga: reserve units (goods slot) → charge points (user slot, outbox) → confirm;
 * on a failed charge the reservation is settled (released unless the op was charged after all).
 * A reservation left by a crashed API is settled the same way by the sweeper after its deadline.
 */
import { randomHex } from '../crypto/random-pool.ts';
import { DomainError } from '../errors/domain-error.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import type { Deps } from '../deps.ts';
import { recentOffsetMs } from '../engagement/business-day.ts';
import type { GoodsService } from '../goods/service.ts';
import { keyHash, newExchangeNo, newOpId } from '../points/idempotency.ts';
import type { Op } from '../points/op.ts';
import type { PointsService } from '../points/service.ts';
import { countOutcome } from '../metrics/outcomes.ts';
import { fromOp, holdId, priceChanged, redeemHash, replayOf, soldOutRefusal, type Hold } from './holds.ts';
import { HotRedemptions } from './hot-stock.ts';
import { REDEEM_SCRIPT, ScriptBatcher } from '../redis/script-batch.ts';
import { isCluster, type RedisClient } from '../redis/client.ts';

type Reply = Array<string | number | null>;

export interface Redemption {
  id: string;
  exchangeNo: string;
  goodsId: number;
  quantity: number;
  pointsSpent: number;
  available: number;
  status: 'confirmed' | 'fulfilled' | 'cancelled';
  createdAt: string;
}

export interface RedeemResult {
  redemption: Redemption;
  replayed: boolean;
}

export type SettleOutcome = 'confirmed' | 'released';

/**
 * After a SOLD_OUT answer, the same process answers SOLD_OUT for that item without asking Redis
 * for this long: in a flash sale nearly every request after the sell-out is one of those. It only
 * ever refuses more, never sells more; a unit released or restocked inside the window is offered
 * again once it passes.
 */
const SOLD_OUT_MEMO_MS = 25;

/**
 * When the window has passed, one request asks Redis again (the refresh) and the others keep the
 * memo's answer until it is back, rather than every request in that moment running the script. A
 * refresh that has not answered within this long no longer speaks for the others: the next request
 * asks too.
 */
const REFRESH_MAX_MS = 100;

/**
 * How a redemption runs. 'atonce': one script (lua/redeem-9.lua) over the goods slot and the
 * member's slot together — possible only while Redis is one node. 'saga': reserve (goods slot) →
 * charge (member's slot) → confirm, each step one slot, as a Redis Cluster requires.
 */
export type RedeemPath = 'atonce' | 'saga';

/** REDEEM_PATH 'auto' runs at once on a single Redis and as the saga on a cluster. */
export function redeemPath(setting: 'auto' | 'saga', redis: RedisClient): RedeemPath {
  return setting === 'saga' || isCluster(redis) ? 'saga' : 'atonce';
}

export class RedemptionService {
  private readonly soldOutUntil = new Map<number, number>();
  /** Items whose expired memo one request is refreshing, with when it started. */
  private readonly refreshing = new Map<number, number>();
  private readonly hot: HotRedemptions;
  /** The at-once path's script calls, gathered per turn of the event loop. */
  private readonly batcher?: ScriptBatcher;
  readonly path: RedeemPath;

  constructor(
    private readonly deps: Deps,
    private readonly points: PointsService,
    private readonly goods: GoodsService,
    /** The member's tier price factor, per mille (src/engagement/tiers.ts); list price without it. */
    private readonly priceFactor: (userId: number) => Promise<number> = async () => 1000,
    /** The goods campaign discount running for an item, per mille (src/catalog/campaigns.ts); none without it. */
    private readonly campaignDiscount: (goodsId: number, ms: number) => number = () => 1000,
    /**
     * The tier table as the at-once script reads it, JSON {min: [minPoints…], pm: [per mille…]}
     * (src/engagement/config.ts); without it redemptions run as the saga.
     */
    private readonly tierTable?: () => string,
  ) {
    this.path = tierTable ? redeemPath(deps.env.REDEEM_PATH, deps.redis) : 'saga';
    if (this.path === 'atonce') this.batcher = new ScriptBatcher(deps.redis, REDEEM_SCRIPT, deps.env.SCRIPT_BATCH_MAX);
    this.hot = new HotRedemptions(deps, points, goods, priceFactor);
  }

  /**
   * `expectedPrice`: the unit price the member was shown (GET /v1/goods/:id); when the reserve
   * prices the item otherwise, nothing is held or charged and the answer is 409 PRICE_CHANGED
   * with the current price.
   */
  async redeem(userId: number, goodsId: number, quantity: number, idempotencyKey: string, expectedPrice?: number): Promise<RedeemResult> {
    // hot goods (stock split over bucket slots) take their own saga: src/redemptions/hot-stock.ts
    // (the cached layout without an await: this runs on every redemption)
    const buckets = this.hot.cachedBuckets(goodsId) ?? (await this.hot.bucketsOf(goodsId));
    if (buckets > 0) return this.hot.redeem(userId, goodsId, buckets, quantity, idempotencyKey, expectedPrice);
    const memo = this.soldOutUntil.get(goodsId);
    if (memo === undefined) return this.redeemUnits(userId, goodsId, quantity, idempotencyKey, expectedPrice);
    const now = Date.now();
    const since = this.refreshing.get(goodsId);
    if (memo > now || (since !== undefined && now - since < REFRESH_MAX_MS)) {
      return this.memoAnswer(userId, goodsId, quantity, idempotencyKey, expectedPrice);
    }
    // this request refreshes the memo: SOLD_OUT again renews it (takeUnits); any other answer (units
    // taken, a limit, a replay, an error) ends it, so that the requests after it ask Redis themselves
    this.refreshing.set(goodsId, now);
    try {
      return await this.redeemUnits(userId, goodsId, quantity, idempotencyKey, expectedPrice);
    } finally {
      if (this.refreshing.get(goodsId) === now) this.refreshing.delete(goodsId);
      if ((this.soldOutUntil.get(goodsId) ?? 0) <= Date.now()) this.soldOutUntil.delete(goodsId);
    }
  }

  /** The redemption itself: one script (at once) or the saga. */
  private async redeemUnits(userId: number, goodsId: number, quantity: number, idempotencyKey: string, expectedPrice?: number): Promise<RedeemResult> {
    const kh = keyHash(idempotencyKey);
    const hash = redeemHash(goodsId, quantity, expectedPrice);
    if (this.path === 'atonce') return this.redeemAtOnce(userId, goodsId, quantity, kh, hash, expectedPrice);
    const [prior, factor] = await Promise.all([this.points.findByKey(userId, kh), this.priceFactor(userId)]);
    const replay = replayOf(prior, hash);
    if (replay) return replay;
    // The op id is fresh for the first attempt of a key; concurrent attempts with the same
    // key share the first one's hold and op id (the reserve script keys holds by member and key).
    const reservation = await this.reserve(userId, kh, goodsId, quantity, hash, factor, expectedPrice);
    const { opId } = reservation;
    let charged: { op: Op; replayed: boolean };
    try {
      charged = await this.points.charge(userId, opId, kh, hash, reservation.unitPrice * quantity, reservation.token, {
        goodsId,
        quantity,
        exchangeNo: newExchangeNo(),
        bizType: 'redemption',
        bizId: String(goodsId),
      });
    } catch (err) {
      await this.settle(goodsId, userId, opId, kh, reservation.token);
      throw err;
    }
    if (charged.op.opId === opId && charged.op.t === reservation.token) {
      // The answer does not wait for confirm: if it is lost, the sweeper confirms after the deadline.
      this.confirm(goodsId, holdId(userId, kh), reservation.token).catch(() => {});
    } else {
      // A concurrent attempt with the same key was charged first: give our units back.
      await this.settle(goodsId, userId, opId, kh, reservation.token);
    }
    return { redemption: fromOp(charged.op), replayed: charged.replayed };
  }

  /**
   * The sold-out memo's answer, for the reserve script, which would say the same: the key's first
   * answer when it has a record (a replay), else SOLD_OUT. An item just seen sold out needs no
   * price, and the request hash is computed only to compare with a record: most of a flash sale's
   * requests end here, and have none.
   */
  private async memoAnswer(userId: number, goodsId: number, quantity: number, idempotencyKey: string, expectedPrice?: number): Promise<RedeemResult> {
    const prior = await this.points.findByKey(userId, keyHash(idempotencyKey));
    const replay = prior && replayOf(prior, redeemHash(goodsId, quantity, expectedPrice));
    if (replay) return replay;
    throw soldOutRefusal();
  }

  /**
   * The whole redemption in one script (a single-node Redis): one round trip, nothing held. The
   * call is gathered with the others of this turn into one (src/redis/script-batch.ts).
   */
  private async redeemAtOnce(userId: number, goodsId: number, quantity: number, kh: string, hash: string, expectedPrice?: number): Promise<RedeemResult> {
    const { keys, env } = this.deps;
    const opId = newOpId();
    const now = Date.now();
    const extra = JSON.stringify({ goodsId, quantity, exchangeNo: newExchangeNo(), bizType: 'redemption', bizId: String(goodsId) });
    const redemptionKeys = [
      keys.goods(goodsId),
      keys.bought(goodsId),
      keys.dailyBought(goodsId),
      keys.account(userId),
      keys.lotsByExpiry(userId),
      keys.lotRemaining(userId),
      keys.idem(userId, kh),
      keys.opRef(userId, opId),
      keys.outboxOf(userId),
    ];
    const args = [
      opId,
      userId,
      quantity,
      hash,
      env.IDEMPOTENCY_TTL_SECONDS,
      '',
      randomHex(8),
      kh,
      this.tierTable!(),
      this.campaignDiscount(goodsId, now),
      recentOffsetMs(env.BUSINESS_TIMEZONE, now),
      expectedPrice ?? '',
      extra,
    ];
    const call = () => this.points.withHydration(userId, () => this.batcher!.run(redemptionKeys, args));
    const reply = await this.takeUnits('redeem', goodsId, call, expectedPrice);
    const op = JSON.parse(String(reply[1])) as Op;
    return { redemption: fromOp(op), replayed: Number(reply[2]) === 1 };
  }

  /**
   * Runs a script that takes units (the at-once redemption or the saga's reserve), loading the item
   * into Redis once if the script did not find it; counts the outcome, remembers a sell-out, and
   * throws the refusal (PRICE_CHANGED with the current price). Returns the reply of a success.
   */
  private async takeUnits(script: 'redeem' | 'reserve', goodsId: number, call: () => Promise<Reply>, expectedPrice?: number): Promise<Reply> {
    let reply = await call();
    if (Number(reply[0]) === ScriptCode.GoodsNotFound && (await this.goods.ensureInRedis(goodsId))) reply = await call();
    const code = Number(reply[0]);
    countOutcome(script, code);
    if (code === ScriptCode.SoldOut && Number(reply[1]) === 0) this.soldOutUntil.set(goodsId, Date.now() + SOLD_OUT_MEMO_MS);
    if (code === ScriptCode.PriceChanged) throw priceChanged(Number(reply[1]), expectedPrice);
    if (code !== 1) throw scriptError(code);
    return reply;
  }

  private async reserve(userId: number, kh: string, goodsId: number, quantity: number, hash: string, factor: number, expectedPrice?: number) {
    const { redis, keys, env } = this.deps;
    const opId = newOpId();
    const now = Date.now();
    const call = () =>
      redis.pmReserve(
        keys.goods(goodsId),
        keys.bought(goodsId),
        keys.reservations(goodsId),
        keys.reservationDeadlines(goodsId),
        keys.dailyBought(goodsId),
        opId,
        userId,
        quantity,
        hash,
        env.RESERVATION_TIMEOUT_MS,
        '',
        randomHex(8),
        kh,
        factor,
        this.campaignDiscount(goodsId, now),
        recentOffsetMs(env.BUSINESS_TIMEZONE, now),
        expectedPrice ?? '',
      );
    const reply = await this.takeUnits('reserve', goodsId, call, expectedPrice);
    return { token: String(reply[1]), unitPrice: Number(reply[2]), opId: String(reply[4]) };
  }

  private confirm(goodsId: number, hold: string, token: string): Promise<number> {
    const { redis, keys } = this.deps;
    return redis.pmConfirm(keys.reservations(goodsId), keys.reservationDeadlines(goodsId), hold, token);
  }

  /**
   * Settles a reservation whose charge is unknown: a tombstone in the member's record makes any
   * later charge with this token fail, so the outcome is final — confirmed if the key's op is this
   * op charged with this token, released otherwise.
   */
  async settle(goodsId: number, userId: number, opId: string, kh: string, token: string): Promise<SettleOutcome> {
    const { redis, keys, env } = this.deps;
    const abort = await redis.pmAbort(keys.idem(userId, kh), token, env.IDEMPOTENCY_TTL_SECONDS);
    if (Number(abort[0]) === 1) {
      const op = JSON.parse(String(abort[1])) as Op;
      if (op.opId === opId && op.t === token) {
        await this.confirm(goodsId, holdId(userId, kh), token);
        return 'confirmed';
      }
    }
    await redis.pmRelease(
      keys.goods(goodsId),
      keys.bought(goodsId),
      keys.reservations(goodsId),
      keys.reservationDeadlines(goodsId),
      keys.dailyBought(goodsId),
      holdId(userId, kh),
      token,
    );
    return 'released';
  }

  /** Settles reservations past their deadline, for every goods item with Redis state (hot goods' buckets too). */
  async sweep(graceMs = 0, batch = 500): Promise<{ confirmed: number; released: number }> {
    const { redis, keys } = this.deps;
    const [sec, usec] = await redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const counts = { confirmed: 0, released: 0 };
    for (const gid of await redis.smembers(keys.goodsIndex())) {
      const due = await redis.zrangebyscore(keys.reservationDeadlines(gid), '-inf', now - graceMs, 'LIMIT', 0, batch);
      if (due.length === 0) continue;
      const raws = await redis.hmget(keys.reservations(gid), ...due);
      for (let i = 0; i < due.length; i++) {
        const raw = raws[i];
        if (raw === null) {
          await redis.zrem(keys.reservationDeadlines(gid), due[i]);
          continue;
        }
        const r = JSON.parse(raw) as Hold;
        counts[await this.settle(Number(gid), r.u, r.o, r.k, r.t)]++;
      }
    }
    await this.hot.sweep(now, graceMs, batch, counts);
    return counts;
  }

  /** Own redemption by id: persisted row, or the live op while it is still on its way to Postgres. */
  async getOwn(userId: number, id: string): Promise<Omit<Redemption, 'available'>> {
    const [row] = await this.deps.sql<Array<Omit<Redemption, 'available' | 'createdAt'> & { createdAt: Date }>>`
      SELECT id, exchange_no AS "exchangeNo", goods_id AS "goodsId", quantity, points_spent AS "pointsSpent",
             status, created_at AS "createdAt"
      FROM redemptions WHERE id = ${id} AND user_id = ${userId}`;
    if (row) return { ...row, createdAt: row.createdAt.toISOString() };
    const op = await this.points.findOwnOpById(userId, id);
    if (op && op.kind === 'spend' && op.bizType === 'redemption') {
      const { available: _available, ...rest } = fromOp(op);
      return rest;
    }
    throw new DomainError('REDEMPTION_NOT_FOUND', 'No such redemption');
  }

  async listOwn(userId: number, limit: number, cursor?: string) {
    const { sql } = this.deps;
    const after = cursor ? decodeCursor(cursor) : null;
    const rows = await sql<Array<Omit<Redemption, 'available' | 'createdAt'> & { createdAt: Date }>>`
      SELECT id, exchange_no AS "exchangeNo", goods_id AS "goodsId", quantity, points_spent AS "pointsSpent",
             status, created_at AS "createdAt"
      FROM redemptions WHERE user_id = ${userId}
      ${after ? sql`AND (created_at, id) < (to_timestamp(${after.ms} / 1000.0), ${after.id})` : sql``}
      ORDER BY created_at DESC NULLS LAST, id DESC NULLS LAST LIMIT ${limit + 1}`;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() })),
      nextCursor: rows.length > limit ? encodeCursor(last.createdAt.getTime(), last.id) : null,
    };
  }
}

export { holdId, type Hold } from './holds.ts';
