/**
 * Schemas shared by several routes: error body, pagination, numeric ids.
 */
import { Type } from '@sinclair/typebox';

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
  requestId: Type.String(),
});

export const IdParamsSchema = Type.Object(
  { id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) },
  { additionalProperties: false },
);

export const PageQuerySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const IdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(Type.String()),
});

/**
 * The error body as a route documents it: open to more fields. Responses are serialized from
 * their schema, and a closed one strips what an error carries beyond these five (the README names
 * them per code: POINTS_TO_USE_INVALID's `max`, ORDER_STATE_CONFLICT's and COUPON_NOT_ACTIVE's
 * `status`, …); routes whose errors carry known fields document them in their own schema.
 */
export const OpenErrorSchema = Type.Object(ErrorSchema.properties, {
  additionalProperties: true,
  description: 'The error body; some errors carry more fields',
});

/** Standard error responses to document on a route. */
export const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, OpenErrorSchema])) as Record<number, typeof OpenErrorSchema>;
