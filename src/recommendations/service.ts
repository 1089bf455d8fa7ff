/**
 * A member's recommendations (GET /v1/me/recommendations), answered from Redis alone: the model
 * the recommend role built (src/recommendations/model.ts), the member's live balance and tier
 * (their account in Redis) and each item's live price, stock and sale state (the quote script).
 * This class holds no Postgres client, and every read it makes is one that never loads anything
 * from Postgres (a member or an item Redis lacks is taken from the model or left out).
 *
 * Steps: the member's available points (live; the model's snapshot if Redis has no account) →
 * the model's goods whose list price can land in the points window at the member's tier →
 * ranked by the hybrid score (src/recommendations/scoring.ts), history items left out → quoted
 * live, best first, keeping those on sale, in stock, within the limits and priced within the
 * window until `limit` are found.
 */
import type { Quote } from '../goods/pricing.ts';
import type { Goods } from '../goods/service.ts';
import type { ModelReader } from './model.ts';
import { fitsWindow, peerBands, pointsWindow, rank, type Reason } from './scoring.ts';

/** Candidates the list-price window may hold (cheapest first past it). */
export const MAX_CANDIDATES = 500;
/** The highest stock factor of dynamic pricing (lua/includes/sale.lua). */
const MAX_STOCK_FACTOR = 1.2;

export interface Recommendation {
  goods: Goods;
  score: number;
  reason: Reason;
}

export interface RecommendationSources {
  model: ModelReader;
  /** live available points, null when Redis holds no account (never loaded from Postgres) */
  available(userId: number): Promise<number | null>;
  /** live tier price factor per mille, null when Redis holds no account */
  tierPerMille(userId: number): Promise<number | null>;
  /** the lowest goods campaign discount running now, per mille (this process's cache) */
  lowestDiscount(): number;
  /** live quotes of the goods Redis holds, at a tier factor */
  quote(userId: number, goodsIds: number[], tierPm: number): Promise<Map<number, Quote>>;
}

export class RecommendationService {
  constructor(private readonly s: RecommendationSources) {}

  async forMember(userId: number, limit: number): Promise<Recommendation[]> {
    const build = await this.s.model.current();
    if (!build) return [];
    const [member, live, liveTier] = await Promise.all([
      this.s.model.member(build, userId),
      this.s.available(userId),
      this.s.tierPerMille(userId),
    ]);
    const available = live ?? member?.balance ?? 0;
    if (available <= 0) return [];
    const tierPm = liveTier ?? 1000;
    const history = member?.history ?? [];

    // list prices whose member price (list × tier × campaign × stock factor) can reach the window
    const window = pointsWindow(available);
    const tier = tierPm / 1000;
    const lowList = Math.floor(window.low / (tier * MAX_STOCK_FACTOR));
    const highList = Math.ceil(window.high / (tier * (this.s.lowestDiscount() / 1000)));
    const seen = new Set(history);
    const candidateIds = (await this.s.model.goodsPricedBetween(build, lowList, highList, MAX_CANDIDATES)).filter((id) => !seen.has(id));
    if (candidateIds.length === 0) return [];

    const data = await this.s.model.rankingData(build, history, candidateIds, history.length > 0 ? peerBands(available) : []);
    const ranked = rank({
      history,
      lastCategoryId: history.length > 0 ? (data.categories.get(history[0]) ?? null) : null,
      candidates: candidateIds.map((id) => ({ id, categoryId: data.categories.get(id) ?? null })),
      vectors: data.vectors,
      peers: data.peers,
      popularity: data.popularity,
    });

    // live checks, best first, a batch at a time until the list is full
    const picked: Array<{ id: number; score: number; reason: Reason; quote: Quote }> = [];
    const batch = Math.max(2 * limit, 10);
    for (let i = 0; i < ranked.length && picked.length < limit; i += batch) {
      const slice = ranked.slice(i, i + batch);
      const quotes = await this.s.quote(userId, slice.map((r) => r.id), tierPm);
      for (const r of slice) {
        const q = quotes.get(r.id);
        if (!q || !buyable(q, available)) continue;
        picked.push({ id: r.id, score: r.score, reason: r.reason, quote: q });
        if (picked.length === limit) break;
      }
    }
    const items = await this.s.model.items(build, picked.map((p) => p.id));
    return picked.flatMap(({ id, score, reason, quote: q }) => {
      const item = items.get(id);
      if (!item) return [];
      const { base, tierFactor, campaignDiscount, stockFactor, price } = q;
      return [
        {
          goods: { ...item, active: true, stock: q.stock, price, pricing: { base, tierFactor, campaignDiscount, stockFactor, price } },
          score: Math.round(score * 10_000) / 10_000,
          reason,
        },
      ];
    });
  }
}

/** On sale, in stock, within the member's limits, and priced within the points window. */
function buyable(q: Quote, available: number): boolean {
  return q.saleOpen && q.stock > 0 && q.limitLeft !== 0 && q.dailyLeft !== 0 && fitsWindow(q.price, available);
}
