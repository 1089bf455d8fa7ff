/**
 * An order's stock steps, in each item's goods slot: take its units (priced like a redemption's,
 * in the same atomic step), give them back on a cancellation or refund; and a refunded
 * redemption's units returned once. Goods not in Redis yet are loaded from Postgres first.
 */
import type { Deps } from '../deps.ts';
import type { GoodsService } from '../goods/service.ts';
import { dayNumber, offsetMs } from '../engagement/business-day.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import { BucketStock } from '../goods/bucket-stock.ts';
import { priceChanged } from '../redemptions/holds.ts';

export interface Pricing {
  /** the member's tier price factor, per mille */
  tierPerMille(userId: number): Promise<number>;
  /** the goods campaign discount running for the item now, per mille (1000: none) */
  campaignPerMille(goodsId: number): number;
}

export class OrderStock {
  constructor(
    private readonly deps: Deps,
    private readonly goods: GoodsService,
    private readonly pricing: Pricing,
  ) {}

  /** Takes `quantity` units for the order; returns the unit price in points. Retrying replays. */
  async take(orderId: string, userId: number, goodsId: number, quantity: number, expectedPrice?: number): Promise<number> {
    const { redis, keys, env } = this.deps;
    const tier = await this.pricing.tierPerMille(userId);
    const call = () =>
      redis.pmTake(
        keys.goods(goodsId), keys.bought(goodsId), keys.dailyBought(goodsId), keys.ordersTaken(goodsId),
        orderId, userId, quantity, '', tier, this.pricing.campaignPerMille(goodsId),
        offsetMs(env.BUSINESS_TIMEZONE, Date.now()), expectedPrice ?? '',
      );
    let reply = await call();
    if (Number(reply[0]) === ScriptCode.GoodsNotFound && (await this.goods.ensureInRedis(goodsId))) reply = await call();
    const code = Number(reply[0]);
    if (code === ScriptCode.PriceChanged) throw priceChanged(Number(reply[1]), expectedPrice, goodsId);
    if (code !== 1) throw scriptError(code);
    return Number(reply[1]);
  }

  /** Gives an order's units of one item back (nothing if it never took them or gave them back already). */
  async giveBack(orderId: string, userId: number, goodsId: number, quantity: number): Promise<boolean> {
    return this.run('order', orderId, goodsId, userId, quantity, '');
  }

  /** Returns a refunded redemption's units, once (marked under its op id); a hot item's go to a bucket. */
  async returnRedemption(opId: string, userId: number, goodsId: number, quantity: number, redeemedAt?: Date): Promise<boolean> {
    const day = redeemedAt ? dayNumber(this.deps.env.BUSINESS_TIMEZONE, redeemedAt.getTime()) : '';
    const buckets = new BucketStock(this.deps);
    let layout = await buckets.layoutOf(goodsId);
    if (layout === null && (await this.goods.ensureInRedis(goodsId))) layout = await buckets.layoutOf(goodsId);
    if (layout !== null && layout > 0) {
      let returned = await buckets.returnRedemption(goodsId, layout, opId, userId, quantity, day);
      if (returned === null && (await this.goods.ensureInRedis(goodsId))) returned = await buckets.returnRedemption(goodsId, layout, opId, userId, quantity, day);
      if (returned === null) throw scriptError(ScriptCode.GoodsNotFound);
      return returned;
    }
    return this.run('redemption', opId, goodsId, userId, quantity, day);
  }

  private async run(mode: 'order' | 'redemption', id: string, goodsId: number, userId: number, quantity: number, day: number | ''): Promise<boolean> {
    const { redis, keys } = this.deps;
    const call = () =>
      redis.pmGiveBack(
        keys.goods(goodsId), keys.bought(goodsId), keys.dailyBought(goodsId), keys.ordersTaken(goodsId), keys.returnedRedemptions(goodsId),
        mode, id, userId, quantity, day,
      );
    let r = Number(await call());
    if (r === ScriptCode.GoodsNotFound && (await this.goods.ensureInRedis(goodsId))) r = Number(await call());
    if (r === ScriptCode.GoodsNotFound) throw scriptError(r);
    return r === 1;
  }
}
