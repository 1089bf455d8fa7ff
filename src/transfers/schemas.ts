/**
 * Transfer request and answer schemas (served in the OpenAPI document).
 */
import { Type, type Static } from '@sinclair/typebox';
import { ErrorSchema } from '../http/schemas.ts';

export const TransferBodySchema = Type.Object(
  {
    toUsername: Type.String({ minLength: 3, maxLength: 32, pattern: '^[A-Za-z0-9_]+$', description: "The receiver's username" }),
    amount: Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Points to transfer (at most TRANSFER_DAILY_MAX per business day)' }),
    note: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]*$', description: 'Shown to both members' })),
  },
  { additionalProperties: false },
);
export type TransferBody = Static<typeof TransferBodySchema>;

export const TransferSchema = Type.Object({
  transferId: Type.String(),
  toUsername: Type.String(),
  amount: Type.Integer(),
  available: Type.Integer({ description: "The sender's available points after the transfer" }),
  createdAt: Type.String({ format: 'date-time' }),
});

export const TransferConflictSchema = Type.Composite([
  ErrorSchema,
  Type.Object({
    remainingToday: Type.Optional(Type.Integer({ description: 'TRANSFER_LIMIT_REACHED: points the member may still transfer today' })),
    dailyMax: Type.Optional(Type.Integer({ description: 'TRANSFER_LIMIT_REACHED: the daily maximum' })),
  }),
]);

export const TransferHistorySchema = Type.Object({
  items: Type.Array(
    Type.Object({
      transferId: Type.String(),
      direction: Type.Union([Type.Literal('sent'), Type.Literal('received')]),
      counterparty: Type.String({ description: 'The username of the other member' }),
      amount: Type.Integer(),
      note: Type.Union([Type.String(), Type.Null()]),
      status: Type.Union([Type.Literal('pending'), Type.Literal('completed')], {
        description: 'pending: debited, the credit not yet persisted (received transfers are listed once completed)',
      }),
      createdAt: Type.String({ format: 'date-time' }),
      completedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    }),
  ),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
