/**
 * Quick options (GET /v1/me/quick-options): up to three goods a member can take right now for a
 * good share of their points — in stock, on sale, priced (the member's own price, as a redemption
 * would charge it) between 0.3× and 1.0× of their available points, nearest to 0.7× first.
 * Below MIN_POINTS available, none.
 *
 * Candidates come from Postgres by list price: every price factor is known to lie between the
 * tier factor × the lowest running campaign discount and the tier factor × 1.2 (stock), so the
 * list-price window that can reach [0.3×, 1.0×] is exact; of those, the CANDIDATES nearest to 0.7×
 * at list price × tier are quoted (lua/quote-3.lua: live stock, campaign, limits) and ranked on
 * their real price.
 */
import type { Sql } from '../db/client.ts';
import type { GoodsPricing, Quote } from '../goods/pricing.ts';
import { recentRedemptions } from '../goods/popularity.ts';
import type { GoodsType } from '../goods/service.ts';
import type { Balance } from '../points/service.ts';

export const MIN_POINTS = 100;
const OPTIONS = 3;
const CANDIDATES = 30;
const EXPIRY_HORIZON_MS = 7 * 86_400_000;
/** The highest stock factor (lua/includes/sale.lua): 1.2, in tenths. */
const MAX_STOCK_FACTOR_10 = 12;

export interface QuickOption {
  goodsId: number;
  name: string;
  imageUrl: string | null;
  type: GoodsType;
  price: number;
  stock: number;
  canRedeem: boolean;
  redeemedLast7Days: number;
  pointsAfter: number;
  expiringWarning: { points: number; message: string } | null;
}

export class QuickOptions {
  constructor(
    private readonly sql: Sql,
    private readonly pricing: GoodsPricing,
    private readonly balance: (userId: number, horizonMs: number) => Promise<Balance>,
    private readonly tierPerMille: (userId: number) => Promise<number>,
    /** the lowest goods campaign discount running anywhere now (per mille; 1000 = none) */
    private readonly lowestDiscount: () => number,
  ) {}

  async forMember(userId: number): Promise<{ available: number; minPoints: number; items: QuickOption[] }> {
    const bal = await this.balance(userId, EXPIRY_HORIZON_MS);
    const available = bal.available;
    if (available < MIN_POINTS) return { available, minPoints: MIN_POINTS, items: [] };
    const tierPm = await this.tierPerMille(userId);
    // list prices whose member price can land in [0.3 A, A], a unit wider each way for the rounding
    const lowList = Math.max(0, Math.floor((3 * available * 10_000) / (10 * tierPm * MAX_STOCK_FACTOR_10)) - 1);
    const highList = Math.ceil((available * 1_000_000) / (tierPm * this.lowestDiscount())) + 1;
    const rows = await this.sql<Array<{ id: number; name: string; imageUrl: string | null; type: GoodsType }>>`
      SELECT id, name, image_url AS "imageUrl", type FROM goods
      WHERE active AND (starts_at IS NULL OR starts_at <= now()) AND (ends_at IS NULL OR ends_at > now())
        AND points_price BETWEEN ${lowList} AND ${highList}
      ORDER BY abs(points_price * ${tierPm} - ${available * 700}), id
      LIMIT ${CANDIDATES}`;
    const quotes = await this.pricing.quoteMany(userId, rows.map((r) => r.id));
    const target = (q: Quote) => Math.abs(10 * q.price - 7 * available);
    const picked = rows
      .flatMap((r) => {
        const q = quotes.get(r.id);
        return q && q.saleOpen && q.stock > 0 && 10 * q.price >= 3 * available && q.price <= available ? [{ row: r, q }] : [];
      })
      .sort((a, b) => target(a.q) - target(b.q) || a.q.price - b.q.price || a.row.id - b.row.id)
      .slice(0, OPTIONS);
    const redeemed = await recentRedemptions(this.sql, picked.map((p) => p.row.id), Date.now());
    const expiring = bal.expiring.reduce((sum, e) => sum + e.points, 0);
    return {
      available,
      minPoints: MIN_POINTS,
      items: picked.map(({ row, q }) => ({
        goodsId: row.id,
        name: row.name,
        imageUrl: row.imageUrl,
        type: row.type,
        price: q.price,
        stock: q.stock,
        canRedeem: (q.limitLeft === null || q.limitLeft >= 1) && (q.dailyLeft === null || q.dailyLeft >= 1),
        redeemedLast7Days: redeemed.get(row.id) ?? 0,
        pointsAfter: available - q.price,
        expiringWarning:
          expiring >= q.price
            ? { points: expiring, message: `${expiring} of your points expire within 7 days: this redemption would use them before they go` }
            : null,
      })),
    };
  }
}
