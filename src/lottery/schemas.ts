/**
 * Lottery request and response schemas (TypeBox): admin settings, the public view with odds, a
 * draw's answer, the member's draw history and the admin statistics.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ErrorSchema } from '../http/schemas.ts';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const PrizeKind = Type.Union([Type.Literal('points'), Type.Literal('goods'), Type.Literal('none')]);

/** Prizes have at most this weight, a lottery at most MAX_PRIZES of them: the total stays far below 2^48. */
export const MAX_WEIGHT = 1_000_000;
export const MAX_PRIZES = 50;

export const PrizeInputSchema = Type.Object(
  {
    id: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'PATCH only: an existing prize to keep (name, weight and stock may change)' }),
    ),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    kind: PrizeKind,
    points: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'required for a points prize' })),
    goodsId: Type.Optional(
      Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'required for a goods prize: an existing goods item' }),
    ),
    weight: Type.Integer({ minimum: 1, maximum: MAX_WEIGHT, description: 'relative chance among the prizes in stock' }),
    stock: Type.Optional(
      Nullable(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'units ever given out at most; null or absent = unlimited' })),
    ),
  },
  { additionalProperties: false },
);

const settingsFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  cost: Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'points paid per draw' }),
  cooldownSeconds: Type.Integer({ minimum: 0, maximum: 31_536_000, description: 'between two draws of one member; 0 = none' }),
  dailyDrawLimit: Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'draws per member per business day; null = no limit' })),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  active: Type.Boolean(),
  prizes: Type.Array(PrizeInputSchema, { minItems: 1, maxItems: MAX_PRIZES }),
};

export const CreateLotteryBodySchema = Type.Object(
  {
    name: settingsFields.name,
    cost: settingsFields.cost,
    cooldownSeconds: Type.Optional(settingsFields.cooldownSeconds),
    dailyDrawLimit: Type.Optional(settingsFields.dailyDrawLimit),
    startsAt: Type.Optional(settingsFields.startsAt),
    endsAt: Type.Optional(settingsFields.endsAt),
    active: Type.Optional(settingsFields.active),
    prizes: settingsFields.prizes,
  },
  { additionalProperties: false },
);

export const PatchLotteryBodySchema = Type.Partial(Type.Object(settingsFields), {
  additionalProperties: false,
  minProperties: 1,
});

export type PrizeInput = Static<typeof PrizeInputSchema>;
export type CreateLotteryBody = Static<typeof CreateLotteryBodySchema>;
export type PatchLotteryBody = Static<typeof PatchLotteryBodySchema>;

/** A prize as members see it (in a lottery, a draw, the history). */
export const PrizeSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  kind: PrizeKind,
  points: Type.Optional(Type.Integer()),
  goodsId: Type.Optional(Type.Integer()),
});

const PublicPrizeSchema = Type.Composite([
  PrizeSchema,
  Type.Object({
    odds: Type.Number({ description: 'chance of this prize in a draw now: its weight over the weights of the prizes in stock' }),
    remaining: Type.Optional(Type.Integer({ description: 'units left, for a prize with stock' })),
  }),
]);

export const PublicLotterySchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  cost: Type.Integer(),
  cooldownSeconds: Type.Integer(),
  dailyDrawLimit: Nullable(Type.Integer()),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  open: Type.Boolean({ description: 'draws are accepted now (inside the window, a prize left)' }),
  expectedPointsPerDraw: Type.Number({ description: 'points a draw pays on average at the current odds' }),
  prizes: Type.Array(PublicPrizeSchema),
});

const AdminPrizeSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  kind: PrizeKind,
  points: Nullable(Type.Integer()),
  goodsId: Nullable(Type.Integer()),
  weight: Type.Integer(),
  stock: Nullable(Type.Integer()),
  remaining: Nullable(Type.Integer()),
  odds: Type.Number(),
});

export const AdminLotterySchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  cost: Type.Integer(),
  cooldownSeconds: Type.Integer(),
  dailyDrawLimit: Nullable(Type.Integer()),
  startsAt: Nullable(Type.String({ format: 'date-time' })),
  endsAt: Nullable(Type.String({ format: 'date-time' })),
  active: Type.Boolean(),
  expectedPointsPerDraw: Type.Number({ description: 'from the weights, every prize in stock' }),
  prizes: Type.Array(AdminPrizeSchema),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const DrawSchema = Type.Object({
  drawId: Type.String(),
  lotteryId: Type.Integer(),
  cost: Type.Integer(),
  prize: PrizeSchema,
  exchangeNo: Type.Optional(Type.String({ description: 'goods prize: the exchange number of its redemption (id = drawId)' })),
  available: Type.Integer({ description: 'balance after paying the cost and receiving a points prize' }),
  createdAt: Type.String({ format: 'date-time' }),
});

export const DrawHistorySchema = Type.Object({
  items: Type.Array(Type.Omit(DrawSchema, ['available', 'exchangeNo'])),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export const LotteryStatsSchema = Type.Object({
  lotteryId: Type.Integer(),
  draws: Type.Integer({ description: 'persisted draws' }),
  pointsCollected: Type.Integer(),
  pointsPaid: Type.Integer(),
  payoutRatio: Nullable(Type.Number({ description: 'points paid / points collected' })),
  expectedPointsPerDraw: Type.Number({ description: 'from the current weights, every prize in stock' }),
  expectedPayoutRatio: Type.Number({ description: 'expected points per draw / current cost' }),
  pointsPaidPerDraw: Nullable(Type.Number()),
  payoutVsExpected: Nullable(Type.Number({ description: 'points paid per draw / expected points per draw' })),
  prizes: Type.Array(
    Type.Object({
      id: Type.Integer(),
      name: Type.String(),
      kind: PrizeKind,
      points: Nullable(Type.Integer()),
      retired: Type.Boolean(),
      wins: Type.Integer(),
      share: Nullable(Type.Number({ description: 'wins / draws' })),
      expectedShare: Type.Number({ description: 'weight / total weight of the current prizes (0 when retired)' }),
    }),
  ),
});

/** 409 answers of a draw: LOTTERY_COOLDOWN says when the member may draw again. */
export const DrawConflictSchema = Type.Composite([
  ErrorSchema,
  Type.Object({ retryAfterSeconds: Type.Optional(Type.Integer({ description: 'LOTTERY_COOLDOWN: seconds until the next draw is allowed' })) }),
]);

export const LotteryListQuerySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })),
  },
  { additionalProperties: false },
);
