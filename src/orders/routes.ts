/**
 * Orders (member and admin), the payment webhook, coupons and VIP.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors, ErrorSchema, IdempotencyHeadersSchema, PageQuerySchema } from '../http/schemas.ts';
import { adminWrite } from '../admin/idempotency.ts';
import { transition, type Transition } from './lifecycle.ts';
import { requireIdempotencyKey } from '../points/idempotency.ts';
import { ORDER_STATUSES } from './lifecycle.ts';
import { listCoupons, useCoupon, vipOf } from './rewards.ts';
import { applyPaymentEvent } from './webhook.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = () => Type.String({ format: 'date-time' });
const StatusSchema = Type.Union(ORDER_STATUSES.map((s) => Type.Literal(s)));

export const ReceiverSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    phone: Type.String({ minLength: 3, maxLength: 32, pattern: '^[0-9+()\\s.-]+$' }),
    address: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);

const OrderSchema = Type.Object({
  id: Type.String(),
  orderNo: Type.String({ description: 'OD + 22 characters (orders) or the exchange number PM… (redemptions)' }),
  source: Type.Union([Type.Literal('order'), Type.Literal('redemption')]),
  status: StatusSchema,
  items: Type.Array(
    Type.Object({
      position: Type.Integer(),
      goodsId: Type.Integer(),
      goodsType: Type.String(),
      quantity: Type.Integer(),
      unitPoints: Type.Integer({ description: 'Points per unit as charged (0 for items paid in cash)' }),
      unitCash: Type.Integer({ description: 'Cash per unit in minor units (0 for items paid in points)' }),
    }),
  ),
  pointsTotal: Type.Integer({ description: 'Points of the items priced in points' }),
  pointsToUse: Type.Integer({ description: 'Points paying part of the cash total' }),
  cashTotal: Type.Integer({ description: 'Minor units' }),
  cashDue: Type.Integer({ description: 'Minor units still to pay: cashTotal − pointsToUse / POINTS_PER_CURRENCY_UNIT' }),
  paymentId: Nullable(Type.String()),
  paymentDeadline: Nullable(DateTime()),
  receiver: Type.Union([
    Type.Object({ name: Type.String(), phone: Type.String({ description: 'Masked in lists (138****5678)' }), address: Type.String() }),
    Type.Null(),
  ]),
  carrier: Nullable(Type.String()),
  trackingNo: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  createdAt: DateTime(),
  paidAt: Nullable(DateTime()),
  shippedAt: Nullable(DateTime()),
  completedAt: Nullable(DateTime()),
  cancelledAt: Nullable(DateTime()),
  refundedAt: Nullable(DateTime()),
});

const OrderDetailSchema = Type.Intersect([
  OrderSchema,
  Type.Object({
    history: Type.Array(
      Type.Object({
        from: Nullable(Type.String()),
        to: Type.String(),
        actorId: Type.Union([Type.Integer(), Type.Null()]),
        reason: Nullable(Type.String()),
        at: DateTime(),
      }),
    ),
  }),
]);

const OrderPageSchema = Type.Object({ items: Type.Array(OrderSchema), nextCursor: Nullable(Type.String()) });
const OrderParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) }, { additionalProperties: false });

const CouponSchema = Type.Object({
  code: Type.String({ description: 'CP + 8 characters [A-Z0-9]' }),
  goodsId: Type.Integer(),
  orderId: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('used'), Type.Literal('expired'), Type.Literal('revoked')]),
  validUntil: DateTime(),
  usedAt: Nullable(DateTime()),
  createdAt: DateTime(),
});

/** 409 answers of a placement: PRICE_CHANGED and GOODS_NOT_ORDERABLE name the item; PRICE_CHANGED carries its price now. */
const PlaceConflictSchema = Type.Composite([
  ErrorSchema,
  Type.Object({
    goodsId: Type.Optional(Type.Integer({ description: 'PRICE_CHANGED, GOODS_NOT_ORDERABLE: the item refused' })),
    currentPrice: Type.Optional(Type.Integer({ description: 'PRICE_CHANGED: the unit price now' })),
    expectedPrice: Type.Optional(Type.Integer({ description: 'PRICE_CHANGED: the unit price the request expected' })),
  }),
]);

const routes: FastifyPluginAsyncTypebox = async (app) => {
  /** An admin's order transition: written with its Idempotency-Key in one transaction; side effects after. */
  const adminTransition = (request: FastifyRequest, reply: FastifyReply, t: Transition) =>
    adminWrite(request, reply, 200, {
      write: async (tx) => {
        await transition(tx, t);
        return { id: t.orderId };
      },
      after: async ({ id }) => {
        await app.orders.afterTransition(id);
        return app.orders.get(id);
      },
    });

  app.post(
    '/v1/orders',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'placeOrder',
        summary: 'Place an order: points, cash or both (Idempotency-Key required)',
        description:
          'Items with a cash price are paid in cash, the others in points (tier, campaign and stock priced); `pointsToUse` pays part of the cash. ' +
          'Cash due 0 → `paid` at once; otherwise `pending_payment` with a `paymentId`, the points frozen and the stock taken until the payment webhook or the timeout.',
        tags: ['orders'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        body: Type.Object(
          {
            items: Type.Array(
              Type.Object(
                {
                  goodsId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
                  quantity: Type.Integer({ minimum: 1, maximum: 100 }),
                  expectedPrice: Type.Optional(Type.Integer({ minimum: 1, description: 'The unit points price shown; any other → 409 PRICE_CHANGED' })),
                },
                { additionalProperties: false },
              ),
              { minItems: 1, maxItems: 20 },
            ),
            pointsToUse: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
            receiver: Type.Optional(ReceiverSchema),
          },
          { additionalProperties: false },
        ),
        response: { 201: OrderSchema, ...errors(400, 401, 404), 409: PlaceConflictSchema, ...errors(422, 503) },
      },
    },
    async (request, reply) => {
      const key = requireIdempotencyKey(request.headers['idempotency-key']);
      const { order, replayed } = await app.orders.place(request.userId, request.body, key);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(order);
    },
  );

  app.get(
    '/v1/me/orders',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'listMyOrders',
        summary: 'My orders (redemptions included), newest first',
        tags: ['orders'],
        security: [{ bearer: [] }],
        querystring: Type.Composite([PageQuerySchema, Type.Object({ status: Type.Optional(StatusSchema) })], { additionalProperties: false }),
        response: { 200: OrderPageSchema, ...errors(400, 401) },
      },
    },
    async (request) => app.orders.list({ userId: request.userId, ...request.query }),
  );

  app.get(
    '/v1/me/orders/:id',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'getMyOrder',
        summary: 'One of my orders with its history (404 for anyone else’s)',
        tags: ['orders'],
        security: [{ bearer: [] }],
        params: OrderParams,
        response: { 200: OrderDetailSchema, ...errors(401, 404) },
      },
    },
    async (request) => app.orders.get(request.params.id, request.userId),
  );

  app.post(
    '/v1/me/orders/:id/cancel',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'cancelMyOrder',
        summary: 'Cancel my order while unpaid or paid and not shipped: points and stock come back',
        tags: ['orders'],
        security: [{ bearer: [] }],
        params: OrderParams,
        response: { 200: OrderDetailSchema, ...errors(401, 404, 409, 503) },
      },
    },
    async (request) => app.orders.cancelOwn(request.userId, request.params.id),
  );

  app.post(
    '/v1/me/orders/:id/confirm-receipt',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'confirmOrderReceipt',
        summary: 'Confirm a shipped order arrived: it completes',
        tags: ['orders'],
        security: [{ bearer: [] }],
        params: OrderParams,
        response: { 200: OrderDetailSchema, ...errors(401, 404, 409, 503) },
      },
    },
    async (request) => app.orders.confirmReceipt(request.userId, request.params.id),
  );

  app.get(
    '/v1/admin/orders',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'listOrders',
        summary: 'All orders by status and creation time, newest first',
        tags: ['admin'],
        security: [{ bearer: [] }],
        querystring: Type.Composite(
          [
            PageQuerySchema,
            Type.Object({
              status: Type.Optional(StatusSchema),
              from: Type.Optional(Type.String({ format: 'date-time' })),
              to: Type.Optional(Type.String({ format: 'date-time' })),
              userId: Type.Optional(Type.Integer({ minimum: 1 })),
            }),
          ],
          { additionalProperties: false },
        ),
        response: { 200: OrderPageSchema, ...errors(400, 401, 403) },
      },
    },
    async (request) => app.orders.list(request.query),
  );

  app.get(
    '/v1/admin/orders/:id',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'getOrder',
        summary: 'An order with its history',
        tags: ['admin'],
        security: [{ bearer: [] }],
        params: OrderParams,
        response: { 200: OrderDetailSchema, ...errors(401, 403, 404) },
      },
    },
    async (request) => app.orders.get(request.params.id),
  );

  app.post(
    '/v1/admin/orders/:id/ship',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'shipOrder',
        summary: 'Mark a paid order shipped',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        params: OrderParams,
        body: Type.Object(
          { carrier: Type.String({ minLength: 1, maxLength: 64 }), trackingNo: Type.String({ minLength: 1, maxLength: 64 }) },
          { additionalProperties: false },
        ),
        response: { 200: OrderDetailSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const { carrier, trackingNo } = request.body;
      return adminTransition(request, reply, { orderId: request.params.id, to: 'shipped', from: ['paid'], actorId: request.userId, carrier, trackingNo, data: { carrier, trackingNo } });
    },
  );

  app.post(
    '/v1/admin/orders/:id/cancel',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'cancelOrder',
        summary: 'Cancel an unpaid, or paid and not shipped, order',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        params: OrderParams,
        body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
        response: { 200: OrderDetailSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      adminTransition(request, reply, { orderId: request.params.id, to: 'cancelled', from: ['pending_payment', 'paid'], actorId: request.userId, reason: request.body.reason }),
  );

  app.post(
    '/v1/admin/orders/:id/refund',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'refundOrder',
        summary: 'Refund a paid, shipped or completed order: points, stock and bought counts back; rewards revoked; purchase earn taken back',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        params: OrderParams,
        body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
        response: { 200: OrderDetailSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => adminTransition(request, reply, { orderId: request.params.id, to: 'refunded', actorId: request.userId, reason: request.body.reason }),
  );

  // The provider's webhook: the raw body is what is signed, so it is kept as received.
  await app.register(async (scoped) => {
    scoped.removeContentTypeParser('application/json');
    scoped.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    scoped.post(
      '/v1/payments/webhook',
      {
        config: { rateLimit: false },
        schema: {
          operationId: 'paymentWebhook',
          summary: "The payment provider's signed event (succeeded | failed); each eventId applies once",
          description:
            'Headers: `x-payment-timestamp` (Unix seconds, within 5 minutes) and `x-payment-signature: sha256=<hex HMAC-SHA256(PAYMENT_WEBHOOK_SECRET, "<timestamp>.<raw body>")>`. ' +
            'Body: {eventId, paymentId, status: "succeeded"|"failed", amount (minor units)}.',
          tags: ['payments'],
          security: [],
          headers: Type.Object({
            'x-payment-timestamp': Type.Optional(Type.String()),
            'x-payment-signature': Type.Optional(Type.String()),
          }),
          response: {
            200: Type.Object({
              received: Type.Boolean(),
              duplicate: Type.Boolean({ description: 'This eventId was applied before: nothing changed now' }),
              outcome: Type.String({ description: 'paid | cancelled | already_paid | already_cancelled' }),
              orderId: Type.String(),
            }),
            ...errors(400, 401, 404, 409, 415, 503),
          },
        },
      },
      async (request) => {
        const event = app.paymentProvider.verify(request.headers, String(request.body ?? ''));
        const r = await applyPaymentEvent(app.sql, event, app.paymentAlarm);
        if (!r.duplicate) await app.orders.afterTransition(r.orderId);
        return { received: true, duplicate: r.duplicate, outcome: r.outcome, orderId: r.orderId };
      },
    );
  });

  app.get(
    '/v1/me/coupons',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'listMyCoupons',
        summary: 'My coupons, newest first',
        tags: ['orders'],
        security: [{ bearer: [] }],
        querystring: Type.Composite([PageQuerySchema, Type.Object({ status: Type.Optional(CouponSchema.properties.status) })], {
          additionalProperties: false,
        }),
        response: { 200: Type.Object({ items: Type.Array(CouponSchema), nextCursor: Nullable(Type.String()) }), ...errors(400, 401) },
      },
    },
    async (request) => listCoupons(app.sql, request.userId, request.query.limit, request.query.cursor, request.query.status),
  );

  app.post(
    '/v1/admin/coupons/:code/use',
    {
      onRequest: app.requireAdmin,
      schema: {
        operationId: 'useCoupon',
        summary: 'Mark a coupon used (Idempotency-Key required); a used coupon stays used',
        tags: ['admin'],
        security: [{ bearer: [] }],
        headers: IdempotencyHeadersSchema,
        params: Type.Object({ code: Type.String({ pattern: '^CP[A-Z0-9]{8}$' }) }, { additionalProperties: false }),
        response: { 200: CouponSchema, ...errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) =>
      adminWrite(request, reply, 200, { write: async (tx) => (await useCoupon(tx, request.params.code, request.userId)).coupon }),
  );

  app.get(
    '/v1/me/vip',
    {
      onRequest: app.authenticate,
      schema: {
        operationId: 'getMyVip',
        summary: 'My VIP membership: active now, until when, and its periods',
        tags: ['orders'],
        security: [{ bearer: [] }],
        response: {
          200: Type.Object({
            active: Type.Boolean(),
            endsAt: Nullable(DateTime()),
            periods: Type.Array(Type.Object({ orderId: Type.String(), days: Type.Integer(), startsAt: DateTime(), endsAt: DateTime() })),
          }),
          ...errors(401),
        },
      },
    },
    async (request) => vipOf(app.sql, request.userId),
  );
};

export default routes;
