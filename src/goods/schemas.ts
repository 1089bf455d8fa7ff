/**
 * TypeBox schemas of the goods routes: the item as listed, admin bodies, the search query, the
 * hot list.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { GOODS_TYPES } from './service.ts';
import { SORTS } from './search.ts';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const GoodsType = Type.Union(GOODS_TYPES.map((t) => Type.Literal(t)));
const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const Tag = Type.String({ minLength: 1, maxLength: 32, pattern: '^\\S+$', description: 'No spaces; stored lower-cased' });

export const PriceBreakdownSchema = Type.Object(
  {
    base: Type.Integer({ description: 'The list price (pointsPrice)' }),
    tierFactor: Type.Number({ description: "The member's tier price factor" }),
    campaignDiscount: Type.Number({ description: 'The factor of the goods campaign running for the item (1: none; dynamic pricing only)' }),
    stockFactor: Type.Number({ description: '1.2 below 10 units left, 1.1 below 50, else 1 (dynamic pricing only)' }),
    price: Type.Integer({ description: 'round half up(base × tierFactor × campaignDiscount × stockFactor), at least 1' }),
  },
  { description: "How the caller's price is made (only with a bearer token)" },
);

export const GoodsSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  categoryId: Nullable(Type.Integer()),
  tags: Type.Array(Type.String()),
  imageUrl: Nullable(Type.String()),
  type: GoodsType,
  pointsPrice: Type.Integer({ description: 'The list price in points' }),
  price: Type.Integer({ description: "The caller's price of one unit now (with a token); the list price without" }),
  pricing: Type.Optional(PriceBreakdownSchema),
  cashPrice: Nullable(Type.Integer({ description: 'Minor units of the currency; null: not sold for cash' })),
  stock: Type.Integer(),
  perUserLimit: Nullable(Type.Integer()),
  dailyLimit: Nullable(Type.Integer({ description: 'Units per member per business day (BUSINESS_TIMEZONE)' })),
  dynamicPricing: Type.Boolean(),
  hotBuckets: Type.Integer({ description: '0: ordinary; 2..64: a hot item whose stock is split over that many Redis slots' }),
  couponValidDays: Nullable(Type.Integer({ description: 'Coupon goods: days an issued coupon stays valid' })),
  vipDays: Nullable(Type.Integer({ description: 'VIP goods: days of membership a purchase adds' })),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  active: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
});

const goodsFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.String({ maxLength: 2000 }),
  categoryId: Nullable(Id),
  tags: Type.Array(Tag, { maxItems: 20 }),
  imageUrl: Nullable(Type.String({ format: 'uri', pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', maxLength: 2048, description: 'An http(s) URL' })),
  type: GoodsType,
  pointsPrice: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
  cashPrice: Nullable(Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 })),
  perUserLimit: Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  dailyLimit: Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  dynamicPricing: Type.Boolean(),
  hotBuckets: Type.Union([Type.Literal(0), Type.Integer({ minimum: 2, maximum: 64 })], {
    description:
      'Hot item: its stock is split over this many Redis slots so a flash sale is not capped by one cluster master (2..64; 0 = off). ' +
      'Not with dynamicPricing; changes only while the item is off sale and has sold nothing (409 HOT_BUCKETS_LOCKED)',
  }),
  couponValidDays: Type.Integer({ minimum: 1, maximum: 3650, description: 'Coupon goods only (default 30)' }),
  vipDays: Type.Integer({ minimum: 1, maximum: 3650, description: 'VIP goods only (default 30)' }),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  active: Type.Boolean(),
};

export const CreateGoodsBodySchema = Type.Object(
  {
    name: goodsFields.name,
    description: Type.Optional(goodsFields.description),
    categoryId: Type.Optional(goodsFields.categoryId),
    tags: Type.Optional(goodsFields.tags),
    imageUrl: Type.Optional(goodsFields.imageUrl),
    type: goodsFields.type,
    pointsPrice: goodsFields.pointsPrice,
    cashPrice: Type.Optional(goodsFields.cashPrice),
    stock: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
    perUserLimit: Type.Optional(goodsFields.perUserLimit),
    dailyLimit: Type.Optional(goodsFields.dailyLimit),
    dynamicPricing: Type.Optional(goodsFields.dynamicPricing),
    hotBuckets: Type.Optional(goodsFields.hotBuckets),
    couponValidDays: Type.Optional(goodsFields.couponValidDays),
    vipDays: Type.Optional(goodsFields.vipDays),
    startsAt: Type.Optional(goodsFields.startsAt),
    endsAt: Type.Optional(goodsFields.endsAt),
    active: Type.Optional(goodsFields.active),
  },
  { additionalProperties: false },
);

export const PatchGoodsBodySchema = Type.Partial(Type.Object(goodsFields), {
  additionalProperties: false,
  minProperties: 1,
});

export const RestockBodySchema = Type.Object(
  { quantity: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }) },
  { additionalProperties: false },
);

export const SearchQuerySchema = Type.Object(
  {
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Words to find in name, description and tags; parts of words match too' })),
    category: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'A category id' })),
    tag: Type.Optional(Tag),
    minPoints: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'List price at least' })),
    maxPoints: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'List price at most' })),
    inStock: Type.Optional(Type.Boolean({ description: 'Only items with live stock left' })),
    sort: Type.Union(SORTS.map((s) => Type.Literal(s)), {
      default: 'new',
      description: 'new (newest first), price / -price (list price up / down), popular (redemptions in the last 7 days)',
    }),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "The previous page's nextCursor, with the same sort" })),
  },
  { additionalProperties: false },
);

export const GoodsPageSchema = Type.Object({
  items: Type.Array(GoodsSchema),
  nextCursor: Nullable(Type.String({ description: 'null on the last page; an inStock page may be short and still have one' })),
});

export const HotGoodsSchema = Type.Object({
  items: Type.Array(
    Type.Object({
      id: Type.Integer(),
      name: Type.String(),
      imageUrl: Nullable(Type.String()),
      type: GoodsType,
      categoryId: Nullable(Type.Integer()),
      pointsPrice: Type.Integer(),
      stock: Type.Integer({ description: 'Live stock' }),
      redemptionsLast7Days: Type.Integer(),
    }),
  ),
  refreshedAt: Nullable(Type.String({ format: 'date-time', description: 'When the list was last computed (null: not yet)' })),
});
