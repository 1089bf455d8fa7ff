/**
 * A member's price of a goods item right now, with its breakdown, from the quote script: the
 * reserve script's own formula (lua/includes/sale.lua) on the live stock, with the same factors
 * the API passes to a reserve — the member's tier price factor and the goods campaign running
 * for the item (from this process's cache). So the price shown is the price a redemption made
 * at that instant charges; what changes in between (stock crossing 10 or 50, a campaign starting
 * or ending, a tier reached) is caught by `expectedPrice` (409 PRICE_CHANGED).
 */
import type { Deps } from '../deps.ts';
import { recentOffsetMs } from '../engagement/business-day.ts';
import { DomainError } from '../errors/domain-error.ts';
import { ScriptCode } from '../redis/script-codes.ts';
import type { GoodsService, PriceBreakdown } from './service.ts';
import { BucketStock } from './bucket-stock.ts';

/** The goods campaign discount (per mille of the price paid; 1000 = none) for an item at an instant. */
export interface CampaignDiscounts {
  discountFor(goodsId: number, ms: number): number;
}

export interface Quote extends PriceBreakdown {
  stock: number;
  dynamicPricing: boolean;
  saleOpen: boolean;
  /** units the per-member limit still allows (null: no limit) */
  limitLeft: number | null;
  /** units the daily limit still allows today (null: no limit) */
  dailyLeft: number | null;
}

export class GoodsPricing {
  constructor(
    private readonly deps: Deps,
    private readonly goods: GoodsService,
    private readonly tierPerMille: (userId: number) => Promise<number>,
    private readonly campaigns: CampaignDiscounts,
  ) {}

  /** One unit of each item for the member; the tier is read once. Unknown ids are left out. */
  async quoteMany(userId: number, goodsIds: number[]): Promise<Map<number, Quote>> {
    const tierPm = await this.tierPerMille(userId);
    const quotes = await Promise.all(goodsIds.map((id) => this.quoteAt(userId, id, tierPm)));
    return new Map(goodsIds.flatMap((id, i) => (quotes[i] ? [[id, quotes[i]] as const] : [])));
  }

  /**
   * Quotes from Redis alone at a given tier factor: goods Redis does not hold are left out rather
   * than loaded from Postgres (for reads that must stay off it).
   */
  async quoteLoaded(userId: number, goodsIds: number[], tierPm: number): Promise<Map<number, Quote>> {
    const quotes = await Promise.all(goodsIds.map((id) => this.quoteAt(userId, id, tierPm, false)));
    return new Map(goodsIds.flatMap((id, i) => (quotes[i] ? [[id, quotes[i]] as const] : [])));
  }

  async quote(userId: number, goodsId: number): Promise<Quote> {
    const q = await this.quoteAt(userId, goodsId, await this.tierPerMille(userId));
    if (!q) throw new DomainError('GOODS_NOT_FOUND', `No goods with id ${goodsId}`);
    return q;
  }

  private async quoteAt(userId: number, goodsId: number, tierPm: number, loadMissing = true): Promise<Quote | null> {
    const { redis, keys, env } = this.deps;
    const now = Date.now();
    const call = () =>
      redis.pmQuote(
        keys.goods(goodsId),
        keys.bought(goodsId),
        keys.dailyBought(goodsId),
        userId,
        tierPm,
        this.campaigns.discountFor(goodsId, now),
        recentOffsetMs(env.BUSINESS_TIMEZONE, now),
        '',
      );
    let reply = await call();
    if (Number(reply[0]) === ScriptCode.GoodsNotFound) {
      if (!loadMissing || !(await this.goods.ensureInRedis(goodsId))) return null;
      reply = await call();
    }
    let [, price, base, stock, dyn, campaignPm, sf10, open, limitLeft, dailyLeft] = reply.map(Number);
    // a hot item's goods hash holds no units (src/goods/bucket-stock.ts): its stock is the buckets'
    // sum and the member's counts are in the member's slot; its price does not depend on stock
    if (stock === 0) {
      const hot = await this.hotView(userId, goodsId, now);
      if (hot) {
        stock = hot.stock;
        if (limitLeft >= 0) limitLeft = Math.max(0, limitLeft - hot.bought);
        if (dailyLeft >= 0) dailyLeft = Math.max(0, dailyLeft - hot.today);
      }
    }
    return {
      base,
      tierFactor: tierPm / 1000,
      campaignDiscount: campaignPm / 1000,
      stockFactor: sf10 / 10,
      price,
      stock,
      dynamicPricing: dyn === 1,
      saleOpen: open === 1,
      limitLeft: limitLeft < 0 ? null : limitLeft,
      dailyLeft: dailyLeft < 0 ? null : dailyLeft,
    };
  }

  /** A hot item's live stock and the member's units of it (all, and today's); null for an ordinary item. */
  private async hotView(userId: number, goodsId: number, now: number) {
    const { redis, keys, env } = this.deps;
    const buckets = new BucketStock(this.deps);
    const b = await buckets.layoutOf(goodsId);
    if (!b) return null;
    const [stock, [bought, daily]] = await Promise.all([
      buckets.liveStock(goodsId, b),
      redis.hmget(keys.hotBought(userId), String(goodsId), `d:${goodsId}`),
    ]);
    const day = Math.floor((now + recentOffsetMs(env.BUSINESS_TIMEZONE, now)) / 86_400_000);
    const [d, n] = (daily ?? '').split(':');
    return { stock: stock ?? 0, bought: Number(bought ?? 0), today: daily !== null && Number(d) === day ? Number(n) : 0 };
  }
}
