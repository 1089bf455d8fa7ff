/**
 * Bad input, table-driven, over every route: each case must be answered with a 4xx, a stable
 * error code, a message and the request id — and must write nothing, neither in Redis (keys under
 * this file's prefix, the members' accounts and outboxes, the goods' sale state) nor in Postgres
 * (row counts, goods and account rows).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions } from 'fastify';
import { createTestContext, type TestContext } from '../support/context.ts';
import { bearer, expectError, snapshot, type Snapshot } from './helpers.ts';

interface State {
  member: { id: number; token: string };
  admin: { id: number; token: string };
  /** price 10, stock 5, per-member limit 2 */
  goodsId: number;
  /** price 10, stock 5, no limit */
  plainId: number;
  inactiveId: number;
  futureId: number;
  takenEmail: string;
}

interface Case {
  /** the route as the OpenAPI document names it */
  route: string;
  name: string;
  status: number;
  code: string;
  req: (s: State) => InjectOptions;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2**53 - 1: the largest id a schema accepts
const UNKNOWN_HEX_ID = 'ab'.repeat(16);

const R = {
  register: 'POST /v1/auth/register',
  login: 'POST /v1/auth/login',
  points: 'GET /v1/me/points',
  ledger: 'GET /v1/me/ledger',
  earn: 'POST /v1/points/earn',
  grant: 'POST /v1/admin/points/grant',
  createGoods: 'POST /v1/admin/goods',
  patchGoods: 'PATCH /v1/admin/goods/{id}',
  restock: 'POST /v1/admin/goods/{id}/restock',
  listGoods: 'GET /v1/goods',
  getGoods: 'GET /v1/goods/{id}',
  redeem: 'POST /v1/redemptions',
  myRedemptions: 'GET /v1/me/redemptions',
  getRedemption: 'GET /v1/redemptions/{id}',
  board: 'GET /v1/leaderboards/{period}',
  boardMe: 'GET /v1/leaderboards/{period}/me',
} as const;

const member = (s: State) => bearer(s.member.token);
const admin = (s: State) => bearer(s.admin.token);
const idem = (key = `k-${Math.random().toString(36).slice(2)}`) => ({ 'idempotency-key': key });
const cursorOf = (text: string) => Buffer.from(text).toString('base64url');

// ---- body routes: a valid body and the headers a well-formed call carries ----

interface BodyRoute {
  route: string;
  method: 'POST' | 'PATCH';
  url: (s: State) => string;
  headers: (s: State) => Record<string, string>;
  valid: (s: State) => Record<string, unknown>;
}

const bodyRoutes: BodyRoute[] = [
  {
    route: R.register,
    method: 'POST',
    url: () => '/v1/auth/register',
    headers: () => ({}),
    valid: () => ({ username: 'newbie', email: 'newbie@example.com', password: 'long-enough-pw' }),
  },
  {
    route: R.login,
    method: 'POST',
    url: () => '/v1/auth/login',
    headers: () => ({}),
    valid: (s) => ({ email: s.takenEmail, password: 'long-enough-pw' }),
  },
  {
    route: R.earn,
    method: 'POST',
    url: () => '/v1/points/earn',
    headers: (s) => ({ ...member(s), ...idem() }),
    valid: () => ({ action: 'share' }),
  },
  {
    route: R.grant,
    method: 'POST',
    url: () => '/v1/admin/points/grant',
    headers: (s) => ({ ...admin(s), ...idem() }),
    valid: (s) => ({ userId: s.member.id, amount: 5, reason: 'bonus' }),
  },
  {
    route: R.createGoods,
    method: 'POST',
    url: () => '/v1/admin/goods',
    headers: (s) => ({ ...admin(s), ...idem() }),
    valid: () => ({ name: 'Mug', type: 'physical', pointsPrice: 10, stock: 3 }),
  },
  {
    route: R.patchGoods,
    method: 'PATCH',
    url: (s) => `/v1/admin/goods/${s.goodsId}`,
    headers: (s) => ({ ...admin(s), ...idem() }),
    valid: () => ({ name: 'Renamed' }),
  },
  {
    route: R.restock,
    method: 'POST',
    url: (s) => `/v1/admin/goods/${s.goodsId}/restock`,
    headers: (s) => ({ ...admin(s), ...idem() }),
    valid: () => ({ quantity: 1 }),
  },
  {
    route: R.redeem,
    method: 'POST',
    url: () => '/v1/redemptions',
    headers: (s) => ({ ...member(s), ...idem() }),
    valid: (s) => ({ goodsId: s.goodsId, quantity: 1 }),
  },
];

const byRoute = (route: string) => bodyRoutes.find((b) => b.route === route)!;

/** A JSON body case on one route: the valid body with `edit` applied. */
function body(
  route: string,
  name: string,
  edit: (valid: Record<string, unknown>, s: State) => unknown,
  status = 400,
  code = 'VALIDATION_FAILED',
): Case {
  const b = byRoute(route);
  return {
    route,
    name,
    status,
    code,
    req: (s) => ({ method: b.method, url: b.url(s), headers: b.headers(s), payload: edit(b.valid(s), s) as object }),
  };
}

/** A raw payload (bytes exactly as given) with a content type, on one route. */
function raw(route: string, name: string, contentType: string | null, payload: string | undefined, status: number, code: string): Case {
  const b = byRoute(route);
  return {
    route,
    name,
    status,
    code,
    req: (s) => ({
      method: b.method,
      url: b.url(s),
      headers: { ...b.headers(s), ...(contentType ? { 'content-type': contentType } : {}) },
      ...(payload === undefined ? {} : { payload }),
    }),
  };
}

const without = (o: Record<string, unknown>, k: string) => {
  const { [k]: _gone, ...rest } = o;
  return rest;
};

// The same transport-level abuse on every body route.
const transportCases: Case[] = bodyRoutes.flatMap((b) => [
  raw(b.route, 'malformed JSON', 'application/json', '{"a":', 400, 'VALIDATION_FAILED'),
  raw(b.route, 'trailing garbage after JSON', 'application/json', '{} x', 400, 'VALIDATION_FAILED'),
  raw(b.route, 'empty body with a JSON content type', 'application/json', '', 400, 'VALIDATION_FAILED'),
  raw(b.route, 'no body at all', null, undefined, 400, 'VALIDATION_FAILED'),
  raw(b.route, 'JSON null', 'application/json', 'null', 400, 'VALIDATION_FAILED'),
  raw(b.route, 'JSON array', 'application/json', '[]', 400, 'VALIDATION_FAILED'),
  raw(b.route, 'JSON string', 'application/json', '"hello"', 400, 'VALIDATION_FAILED'),
  raw(b.route, '__proto__ key', 'application/json', '{"__proto__":{"role":"admin"}}', 400, 'VALIDATION_FAILED'),
  raw(b.route, 'constructor.prototype key', 'application/json', '{"constructor":{"prototype":{"x":1}}}', 400, 'VALIDATION_FAILED'),
  raw(b.route, 'text/plain content type', 'text/plain', '{}', 400, 'VALIDATION_FAILED'),
  raw(b.route, 'XML content type', 'application/xml', '<a/>', 415, 'UNSUPPORTED_MEDIA_TYPE'),
  raw(b.route, 'form content type', 'application/x-www-form-urlencoded', 'a=1', 415, 'UNSUPPORTED_MEDIA_TYPE'),
  raw(b.route, 'body over 64 KiB', 'application/json', JSON.stringify({ pad: 'x'.repeat(70_000) }), 413, 'PAYLOAD_TOO_LARGE'),
  body(b.route, 'extra field', (v) => ({ ...v, extra: 1 })),
]);

const NUL = '\u0000';
const LONE_SURROGATE = '\ud800';

const cases: Case[] = [
  ...transportCases,

  // ---- register ----
  body(R.register, 'missing username', (v) => without(v, 'username')),
  body(R.register, 'missing email', (v) => without(v, 'email')),
  body(R.register, 'missing password', (v) => without(v, 'password')),
  body(R.register, 'role smuggled in', (v) => ({ ...v, role: 'admin' })),
  body(R.register, 'username too short', (v) => ({ ...v, username: 'ab' })),
  body(R.register, 'username with a dash', (v) => ({ ...v, username: 'bad-name' })),
  body(R.register, 'username a number', (v) => ({ ...v, username: 12345 })),
  body(R.register, 'email not an email', (v) => ({ ...v, email: 'not-an-email' })),
  body(R.register, 'email an array', (v) => ({ ...v, email: ['a@b.co'] })),
  body(R.register, 'password too short', (v) => ({ ...v, password: 'short' })),
  body(R.register, 'password too long', (v) => ({ ...v, password: 'p'.repeat(129) })),
  body(R.register, 'password null', (v) => ({ ...v, password: null })),
  body(R.register, 'password with a NUL', (v) => ({ ...v, password: `long-enough${NUL}` })),
  body(R.register, 'email already taken (other case)', (v, s) => ({ ...v, email: s.takenEmail.toUpperCase() }), 409, 'EMAIL_TAKEN'),

  // ---- login ----
  body(R.login, 'missing password', (v) => without(v, 'password')),
  body(R.login, 'missing email', (v) => without(v, 'email')),
  body(R.login, 'email a number', (v) => ({ ...v, email: 12345 })),
  body(R.login, 'empty password', (v) => ({ ...v, password: '' })),
  body(R.login, 'email with a NUL', (v) => ({ ...v, email: `a${NUL}@example.com` })),
  body(R.login, 'wrong password', (v) => ({ ...v, password: 'wrong-password' }), 401, 'INVALID_CREDENTIALS'),
  body(R.login, 'unknown email', (v) => ({ ...v, email: 'nobody@example.com' }), 401, 'INVALID_CREDENTIALS'),

  // ---- me/points, me/ledger ----
  { route: R.points, name: 'no token', status: 401, code: 'UNAUTHORIZED', req: () => ({ url: '/v1/me/points' }) },
  { route: R.points, name: 'POST on a GET-only route', status: 404, code: 'NOT_FOUND', req: (s) => ({ method: 'POST', url: '/v1/me/points', headers: member(s), payload: {} }) },
  ...[
    ['limit=0', 'limit=0'],
    ['limit=-1', 'limit=-1'],
    ['limit=abc', 'limit=abc'],
    ['limit=1000', 'limit=1000'],
    ['limit=1.5', 'limit=1.5'],
    ['limit=1e20', 'limit=1e20'],
    ['limit empty', 'limit='],
    ['limit twice', 'limit=1&limit=2'],
    ['unknown parameter', 'foo=1'],
    ['cursor not base64 of a cursor', 'cursor=garbage'],
    ['cursor too long', `cursor=${'a'.repeat(201)}`],
    ['cursor empty', 'cursor='],
    ['cursor with an id beyond 2^53', `cursor=${cursorOf('1700000000000:99999999999999999999')}`],
    ['cursor with a 64-digit id', `cursor=${cursorOf(`1700000000000:${'9'.repeat(64)}`)}`],
  ].map(([name, qs]): Case => ({
    route: R.ledger,
    name,
    status: 400,
    code: 'VALIDATION_FAILED',
    req: (s) => ({ url: `/v1/me/ledger?${qs}`, headers: member(s) }),
  })),

  // ---- earn ----
  body(R.earn, 'missing action', (v) => without(v, 'action')),
  body(R.earn, 'action empty', () => ({ action: '' })),
  body(R.earn, 'action upper case', () => ({ action: 'SHARE' })),
  body(R.earn, 'action a number', () => ({ action: 5 })),
  body(R.earn, 'action too long', () => ({ action: 'a'.repeat(65) })),
  body(R.earn, 'unknown action', () => ({ action: 'dance' }), 404, 'RULE_NOT_FOUND'),
  body(R.earn, 'signup-only rule', () => ({ action: 'register' }), 404, 'RULE_NOT_FOUND'),
  {
    route: R.earn,
    name: 'no Idempotency-Key',
    status: 400,
    code: 'IDEMPOTENCY_KEY_REQUIRED',
    req: (s) => ({ method: 'POST', url: '/v1/points/earn', headers: member(s), payload: { action: 'share' } }),
  },
  ...[
    ['empty Idempotency-Key', '', 'IDEMPOTENCY_KEY_REQUIRED'],
    ['Idempotency-Key with spaces', 'has spaces', 'VALIDATION_FAILED'],
    ['Idempotency-Key with a slash', 'a/b', 'VALIDATION_FAILED'],
    ['Idempotency-Key of 129 chars', 'k'.repeat(129), 'VALIDATION_FAILED'],
    ['Idempotency-Key of 300 chars', 'k'.repeat(300), 'VALIDATION_FAILED'],
  ].map(([name, key, code]): Case => ({
    route: R.earn,
    name,
    status: 400,
    code,
    req: (s) => ({ method: 'POST', url: '/v1/points/earn', headers: { ...member(s), 'idempotency-key': key }, payload: { action: 'share' } }),
  })),
  {
    route: R.earn,
    name: 'two Idempotency-Key headers',
    status: 400,
    code: 'VALIDATION_FAILED',
    req: (s) => ({
      method: 'POST',
      url: '/v1/points/earn',
      headers: { ...member(s), 'idempotency-key': ['k-one', 'k-two'] },
      payload: { action: 'share' },
    }),
  },
  { route: R.earn, name: 'no token', status: 401, code: 'UNAUTHORIZED', req: () => ({ method: 'POST', url: '/v1/points/earn', headers: idem(), payload: { action: 'share' } }) },

  // ---- grant ----
  body(R.grant, 'missing userId', (v) => without(v, 'userId')),
  body(R.grant, 'missing amount', (v) => without(v, 'amount')),
  body(R.grant, 'missing reason', (v) => without(v, 'reason')),
  body(R.grant, 'amount 0', (v) => ({ ...v, amount: 0 })),
  body(R.grant, 'amount negative', (v) => ({ ...v, amount: -100 })),
  body(R.grant, 'amount "5" (a string)', (v) => ({ ...v, amount: '5' })),
  body(R.grant, 'amount 1.5', (v) => ({ ...v, amount: 1.5 })),
  body(R.grant, 'amount 1e20', (v) => ({ ...v, amount: 1e20 })),
  body(R.grant, 'amount 2^53', (v) => ({ ...v, amount: 2 ** 53 })),
  body(R.grant, 'amount over 1e9', (v) => ({ ...v, amount: 1_000_000_001 })),
  body(R.grant, 'amount null', (v) => ({ ...v, amount: null })),
  body(R.grant, 'amount a boolean', (v) => ({ ...v, amount: true })),
  body(R.grant, 'userId "1" (a string)', (v, s) => ({ ...v, userId: String(s.member.id) })),
  body(R.grant, 'userId 0', (v) => ({ ...v, userId: 0 })),
  body(R.grant, 'userId negative', (v) => ({ ...v, userId: -1 })),
  body(R.grant, 'userId 2^53', (v) => ({ ...v, userId: 2 ** 53 })),
  body(R.grant, 'userId 1e20', (v) => ({ ...v, userId: 1e20 })),
  body(R.grant, 'reason empty', (v) => ({ ...v, reason: '' })),
  body(R.grant, 'reason too long', (v) => ({ ...v, reason: 'r'.repeat(501) })),
  body(R.grant, 'reason a number', (v) => ({ ...v, reason: 7 })),
  body(R.grant, 'reason with a NUL', (v) => ({ ...v, reason: `x${NUL}y` })),
  body(R.grant, 'reason with a lone surrogate', (v) => ({ ...v, reason: `x${LONE_SURROGATE}y` })),
  body(R.grant, 'unknown member (largest id)', (v) => ({ ...v, userId: MAX_SAFE }), 404, 'USER_NOT_FOUND'),
  {
    route: R.grant,
    name: 'no Idempotency-Key',
    status: 400,
    code: 'IDEMPOTENCY_KEY_REQUIRED',
    req: (s) => ({ method: 'POST', url: '/v1/admin/points/grant', headers: admin(s), payload: { userId: s.member.id, amount: 5, reason: 'x' } }),
  },
  {
    route: R.grant,
    name: 'invalid Idempotency-Key',
    status: 400,
    code: 'VALIDATION_FAILED',
    req: (s) => ({
      method: 'POST',
      url: '/v1/admin/points/grant',
      headers: { ...admin(s), 'idempotency-key': 'no spaces allowed' },
      payload: { userId: s.member.id, amount: 5, reason: 'x' },
    }),
  },
  {
    route: R.grant,
    name: 'member token',
    status: 403,
    code: 'FORBIDDEN',
    req: (s) => ({ method: 'POST', url: '/v1/admin/points/grant', headers: { ...member(s), ...idem() }, payload: { userId: s.member.id, amount: 5, reason: 'x' } }),
  },

  // ---- create goods ----
  body(R.createGoods, 'missing name', (v) => without(v, 'name')),
  body(R.createGoods, 'missing type', (v) => without(v, 'type')),
  body(R.createGoods, 'missing pointsPrice', (v) => without(v, 'pointsPrice')),
  body(R.createGoods, 'missing stock', (v) => without(v, 'stock')),
  body(R.createGoods, 'unknown type', (v) => ({ ...v, type: 'digital' })),
  body(R.createGoods, 'name empty', (v) => ({ ...v, name: '' })),
  body(R.createGoods, 'name too long', (v) => ({ ...v, name: 'n'.repeat(201) })),
  body(R.createGoods, 'name with a NUL', (v) => ({ ...v, name: `Mug${NUL}` })),
  body(R.createGoods, 'description with a lone surrogate', (v) => ({ ...v, description: `x${LONE_SURROGATE}` })),
  body(R.createGoods, 'category with a space', (v) => ({ ...v, category: 'two words' })),
  body(R.createGoods, 'pointsPrice 0', (v) => ({ ...v, pointsPrice: 0 })),
  body(R.createGoods, 'pointsPrice negative', (v) => ({ ...v, pointsPrice: -10 })),
  body(R.createGoods, 'pointsPrice "10" (a string)', (v) => ({ ...v, pointsPrice: '10' })),
  body(R.createGoods, 'pointsPrice 1e20', (v) => ({ ...v, pointsPrice: 1e20 })),
  body(R.createGoods, 'pointsPrice 2^53', (v) => ({ ...v, pointsPrice: 2 ** 53 })),
  body(R.createGoods, 'stock negative', (v) => ({ ...v, stock: -1 })),
  body(R.createGoods, 'stock "5" (a string)', (v) => ({ ...v, stock: '5' })),
  body(R.createGoods, 'stock 1.5', (v) => ({ ...v, stock: 1.5 })),
  body(R.createGoods, 'stock 1e20', (v) => ({ ...v, stock: 1e20 })),
  body(R.createGoods, 'perUserLimit 0', (v) => ({ ...v, perUserLimit: 0 })),
  body(R.createGoods, 'active "true" (a string)', (v) => ({ ...v, active: 'true' })),
  body(R.createGoods, 'startsAt not a date', (v) => ({ ...v, startsAt: 'tomorrow' })),
  body(R.createGoods, 'startsAt a day that does not exist', (v) => ({ ...v, startsAt: '2030-02-30T00:00:00Z' })),
  body(R.createGoods, 'startsAt in year 0000', (v) => ({ ...v, startsAt: '0000-01-01T00:00:00Z' })),
  body(R.createGoods, 'endsAt on a leap second', (v) => ({ ...v, endsAt: '2016-12-31T23:59:60Z' })),
  body(R.createGoods, 'endsAt before startsAt', (v) => ({ ...v, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' })),
  body(R.createGoods, 'endsAt equal to startsAt', (v) => ({ ...v, startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' })),
  body(R.createGoods, 'the old free-text category', (v) => ({ ...v, category: 'mugs' })),
  body(R.createGoods, 'categoryId of no category', (v) => ({ ...v, categoryId: 999_999 })),
  body(R.createGoods, 'categoryId a string', (v) => ({ ...v, categoryId: '1' })),
  body(R.createGoods, 'type ticket', (v) => ({ ...v, type: 'ticket' })),
  body(R.createGoods, 'couponValidDays on physical goods', (v) => ({ ...v, couponValidDays: 30 })),
  body(R.createGoods, 'vipDays on coupon goods', (v) => ({ ...v, type: 'coupon', vipDays: 30 })),
  body(R.createGoods, 'couponValidDays 0', (v) => ({ ...v, type: 'coupon', couponValidDays: 0 })),
  body(R.createGoods, 'vipDays null', (v) => ({ ...v, type: 'vip', vipDays: null })),
  body(R.createGoods, 'dailyLimit 0', (v) => ({ ...v, dailyLimit: 0 })),
  body(R.createGoods, 'dailyLimit 1.5', (v) => ({ ...v, dailyLimit: 1.5 })),
  body(R.createGoods, 'cashPrice negative', (v) => ({ ...v, cashPrice: -1 })),
  body(R.createGoods, 'cashPrice 9.99 (not minor units)', (v) => ({ ...v, cashPrice: 9.99 })),
  body(R.createGoods, 'dynamicPricing "yes"', (v) => ({ ...v, dynamicPricing: 'yes' })),
  body(R.createGoods, 'imageUrl not http(s)', (v) => ({ ...v, imageUrl: 'javascript:alert(1)' })),
  body(R.createGoods, 'imageUrl not a URL', (v) => ({ ...v, imageUrl: 'mug.png' })),
  body(R.createGoods, 'a tag with a space', (v) => ({ ...v, tags: ['two words'] })),
  body(R.createGoods, 'an empty tag', (v) => ({ ...v, tags: [''] })),
  body(R.createGoods, '21 tags', (v) => ({ ...v, tags: Array.from({ length: 21 }, (_, i) => `t${i}`) })),
  body(R.createGoods, 'tags a string', (v) => ({ ...v, tags: 'mug' })),
  {
    route: R.createGoods,
    name: 'member token',
    status: 403,
    code: 'FORBIDDEN',
    req: (s) => ({ method: 'POST', url: '/v1/admin/goods', headers: { ...member(s), ...idem() }, payload: { name: 'x', type: 'physical', pointsPrice: 1, stock: 1 } }),
  },

  // ---- patch goods ----
  body(R.patchGoods, 'empty patch', () => ({})),
  body(R.patchGoods, 'stock is not patchable', () => ({ stock: 100 })),
  body(R.patchGoods, 'name null', () => ({ name: null })),
  body(R.patchGoods, 'pointsPrice 0', () => ({ pointsPrice: 0 })),
  body(R.patchGoods, 'pointsPrice "5" (a string)', () => ({ pointsPrice: '5' })),
  body(R.patchGoods, 'pointsPrice 2^53', () => ({ pointsPrice: 2 ** 53 })),
  body(R.patchGoods, 'perUserLimit negative', () => ({ perUserLimit: -1 })),
  body(R.patchGoods, 'active 1 (a number)', () => ({ active: 1 })),
  body(R.patchGoods, 'endsAt before startsAt', () => ({ startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' })),
  body(R.patchGoods, 'startsAt in year 0000', () => ({ startsAt: '0000-06-01T00:00:00Z' })),
  body(R.patchGoods, 'endsAt on a leap second', () => ({ endsAt: '2016-12-31T23:59:60Z' })),
  body(R.patchGoods, 'couponValidDays on physical goods', () => ({ couponValidDays: 10 })),
  body(R.patchGoods, 'categoryId of no category', () => ({ categoryId: 999_999 })),
  body(R.patchGoods, 'dynamicPricing null', () => ({ dynamicPricing: null })),
  ...[
    ['id abc', 'abc', 400, 'VALIDATION_FAILED'],
    ['id 0', '0', 400, 'VALIDATION_FAILED'],
    ['id -1', '-1', 400, 'VALIDATION_FAILED'],
    ['id 1.5', '1.5', 400, 'VALIDATION_FAILED'],
    ['id 2^53', String(2 ** 53), 400, 'VALIDATION_FAILED'],
    ['id 1e20 digits', '100000000000000000000', 400, 'VALIDATION_FAILED'],
    ['unknown id', String(MAX_SAFE), 404, 'GOODS_NOT_FOUND'],
  ].map(([name, id, status, code]): Case => ({
    name: name as string,
    route: R.patchGoods,
    status: status as number,
    code: code as string,
    req: (s) => ({ method: 'PATCH', url: `/v1/admin/goods/${id as string}`, headers: { ...admin(s), ...idem() }, payload: { name: 'x' } }),
  })),

  // ---- restock ----
  body(R.restock, 'missing quantity', () => ({})),
  body(R.restock, 'quantity 0', () => ({ quantity: 0 })),
  body(R.restock, 'quantity negative', () => ({ quantity: -5 })),
  body(R.restock, 'quantity "5" (a string)', () => ({ quantity: '5' })),
  body(R.restock, 'quantity 1.5', () => ({ quantity: 1.5 })),
  body(R.restock, 'quantity 1e20', () => ({ quantity: 1e20 })),
  body(R.restock, 'quantity 2^53', () => ({ quantity: 2 ** 53 })),
  ...[
    ['id abc', 'abc', 400, 'VALIDATION_FAILED'],
    ['id 0', '0', 400, 'VALIDATION_FAILED'],
    ['id 2^53', String(2 ** 53), 400, 'VALIDATION_FAILED'],
    ['unknown id', String(MAX_SAFE), 404, 'GOODS_NOT_FOUND'],
  ].map(([name, id, status, code]): Case => ({
    name: name as string,
    route: R.restock,
    status: status as number,
    code: code as string,
    req: (s) => ({ method: 'POST', url: `/v1/admin/goods/${id as string}/restock`, headers: { ...admin(s), ...idem() }, payload: { quantity: 1 } }),
  })),

  ...[
    [R.createGoods, 'POST', () => '/v1/admin/goods', { name: 'Mug', type: 'physical', pointsPrice: 10, stock: 3 }],
    [R.patchGoods, 'PATCH', (s: State) => `/v1/admin/goods/${s.goodsId}`, { name: 'Renamed' }],
    [R.restock, 'POST', (s: State) => `/v1/admin/goods/${s.goodsId}/restock`, { quantity: 1 }],
  ].flatMap(([route, method, url, payload]) => {
    const req = (key: string | undefined) => (s: State): InjectOptions => ({
      method: method as 'POST' | 'PATCH',
      url: (url as (s: State) => string)(s),
      headers: { ...admin(s), ...(key === undefined ? {} : { 'idempotency-key': key }) },
      payload: payload as object,
    });
    return [
      { route: route as string, name: 'no Idempotency-Key', status: 400, code: 'IDEMPOTENCY_KEY_REQUIRED', req: req(undefined) },
      { route: route as string, name: 'invalid Idempotency-Key', status: 400, code: 'VALIDATION_FAILED', req: req('has spaces') },
    ];
  }),

  // ---- public goods ----
  ...[
    ['limit=0', 'limit=0'],
    ['limit=abc', 'limit=abc'],
    ['limit=1000', 'limit=1000'],
    ['limit=-5', 'limit=-5'],
    ['cursor=abc', 'cursor=abc'],
    ['cursor=-1', 'cursor=-1'],
    ['cursor of 16 digits', 'cursor=1234567890123456'],
    ['category with a space', 'category=two%20words'],
    ['category 0', 'category=0'],
    ['unknown parameter', 'offset=20'],
    ['sort cheapest', 'sort=cheapest'],
    ['minPoints negative', 'minPoints=-1'],
    ['maxPoints abc', 'maxPoints=abc'],
    ['minPoints above maxPoints', 'minPoints=50&maxPoints=10'],
    ['inStock maybe', 'inStock=maybe'],
    ['q empty', 'q='],
    ['q of 101 characters', `q=${'a'.repeat(101)}`],
    ['tag with a space', 'tag=two%20words'],
    ['cursor of another sort', `sort=price&cursor=${cursorOf(JSON.stringify({ s: 'new', i: 5 }))}`],
    ['cursor without its value', `sort=price&cursor=${cursorOf(JSON.stringify({ s: 'price', i: 5 }))}`],
    ['popular cursor without its instant', `sort=popular&cursor=${cursorOf(JSON.stringify({ s: 'popular', i: 5, v: 1 }))}`],
  ].map(([name, qs]): Case => ({
    route: R.listGoods,
    name,
    status: 400,
    code: 'VALIDATION_FAILED',
    req: () => ({ url: `/v1/goods?${qs}` }),
  })),
  ...[
    ['id abc', 'abc', 400, 'VALIDATION_FAILED'],
    ['id 0', '0', 400, 'VALIDATION_FAILED'],
    ['id -1', '-1', 400, 'VALIDATION_FAILED'],
    ['id 1.5', '1.5', 400, 'VALIDATION_FAILED'],
    ['id 2^53', String(2 ** 53), 400, 'VALIDATION_FAILED'],
    ['id 1e20 digits', '100000000000000000000', 400, 'VALIDATION_FAILED'],
    ['unknown id', String(MAX_SAFE), 404, 'GOODS_NOT_FOUND'],
  ].map(([name, id, status, code]): Case => ({
    name: name as string,
    route: R.getGoods,
    status: status as number,
    code: code as string,
    req: () => ({ url: `/v1/goods/${id as string}` }),
  })),
  {
    route: R.getGoods,
    name: 'garbage token (a token is optional, but one sent must be valid)',
    status: 401,
    code: 'UNAUTHORIZED',
    req: (s) => ({ url: `/v1/goods/${s.goodsId}`, headers: bearer('garbage') }),
  },
  {
    route: R.getGoods,
    name: 'unknown id with a token',
    status: 404,
    code: 'GOODS_NOT_FOUND',
    req: (s) => ({ url: `/v1/goods/${MAX_SAFE}`, headers: member(s) }),
  },

  // ---- redeem ----
  body(R.redeem, 'missing goodsId', (v) => without(v, 'goodsId')),
  body(R.redeem, 'missing quantity', (v) => without(v, 'quantity')),
  body(R.redeem, 'quantity 0', (v) => ({ ...v, quantity: 0 })),
  body(R.redeem, 'quantity negative', (v) => ({ ...v, quantity: -1 })),
  body(R.redeem, 'quantity "5" (a string)', (v) => ({ ...v, quantity: '5' })),
  body(R.redeem, 'quantity 1.5', (v) => ({ ...v, quantity: 1.5 })),
  body(R.redeem, 'quantity 101', (v) => ({ ...v, quantity: 101 })),
  body(R.redeem, 'quantity 1e20', (v) => ({ ...v, quantity: 1e20 })),
  body(R.redeem, 'quantity 2^53', (v) => ({ ...v, quantity: 2 ** 53 })),
  body(R.redeem, 'quantity null', (v) => ({ ...v, quantity: null })),
  body(R.redeem, 'goodsId "1" (a string)', (v, s) => ({ ...v, goodsId: String(s.goodsId) })),
  body(R.redeem, 'goodsId 0', (v) => ({ ...v, goodsId: 0 })),
  body(R.redeem, 'goodsId 2^53', (v) => ({ ...v, goodsId: 2 ** 53 })),
  body(R.redeem, 'goodsId 1e20', (v) => ({ ...v, goodsId: 1e20 })),
  body(R.redeem, 'goodsId an object', (v) => ({ ...v, goodsId: { id: 1 } })),
  body(R.redeem, 'price smuggled in', (v) => ({ ...v, pointsPrice: 0 })),
  body(R.redeem, 'expectedPrice 0', (v) => ({ ...v, expectedPrice: 0 })),
  body(R.redeem, 'expectedPrice "10" (a string)', (v) => ({ ...v, expectedPrice: '10' })),
  body(R.redeem, 'expectedPrice 9.5', (v) => ({ ...v, expectedPrice: 9.5 })),
  body(R.redeem, 'expectedPrice other than the price', (v) => ({ ...v, expectedPrice: 11 }), 409, 'PRICE_CHANGED'),
  body(R.redeem, 'unknown goods (largest id)', (v) => ({ ...v, goodsId: MAX_SAFE }), 404, 'GOODS_NOT_FOUND'),
  body(R.redeem, 'more than the stock', (v, s) => ({ ...v, goodsId: s.plainId, quantity: 6 }), 409, 'SOLD_OUT'),
  body(R.redeem, 'more than the per-member limit', (v) => ({ ...v, quantity: 3 }), 409, 'LIMIT_EXCEEDED'),
  body(R.redeem, 'inactive goods', (v, s) => ({ ...v, goodsId: s.inactiveId }), 409, 'SALE_NOT_ACTIVE'),
  body(R.redeem, 'sale not started', (v, s) => ({ ...v, goodsId: s.futureId }), 409, 'SALE_NOT_ACTIVE'),
  {
    route: R.redeem,
    name: 'no Idempotency-Key',
    status: 400,
    code: 'IDEMPOTENCY_KEY_REQUIRED',
    req: (s) => ({ method: 'POST', url: '/v1/redemptions', headers: member(s), payload: { goodsId: s.goodsId, quantity: 1 } }),
  },
  ...[
    ['empty Idempotency-Key', '', 'IDEMPOTENCY_KEY_REQUIRED'],
    ['Idempotency-Key with spaces', 'has spaces', 'VALIDATION_FAILED'],
    ['Idempotency-Key of 129 chars', 'k'.repeat(129), 'VALIDATION_FAILED'],
    ['Idempotency-Key of 257 chars', 'k'.repeat(257), 'VALIDATION_FAILED'],
  ].map(([name, key, code]): Case => ({
    route: R.redeem,
    name,
    status: 400,
    code,
    req: (s) => ({
      method: 'POST',
      url: '/v1/redemptions',
      headers: { ...member(s), 'idempotency-key': key },
      payload: { goodsId: s.goodsId, quantity: 1 },
    }),
  })),
  {
    route: R.redeem,
    name: 'garbage token',
    status: 401,
    code: 'UNAUTHORIZED',
    req: (s) => ({ method: 'POST', url: '/v1/redemptions', headers: { ...bearer('garbage'), ...idem() }, payload: { goodsId: s.goodsId, quantity: 1 } }),
  },

  // ---- my redemptions, one redemption ----
  ...[
    ['limit=0', 'limit=0'],
    ['limit=abc', 'limit=abc'],
    ['limit=1000', 'limit=1000'],
    ['cursor garbage', 'cursor=garbage'],
    ['cursor too long', `cursor=${'a'.repeat(201)}`],
    ['unknown parameter', 'status=confirmed'],
  ].map(([name, qs]): Case => ({
    route: R.myRedemptions,
    name,
    status: 400,
    code: 'VALIDATION_FAILED',
    req: (s) => ({ url: `/v1/me/redemptions?${qs}`, headers: member(s) }),
  })),
  ...[
    ['id not hex', 'z'.repeat(32), 400, 'VALIDATION_FAILED'],
    ['id upper-case hex', 'AB'.repeat(16), 400, 'VALIDATION_FAILED'],
    ['id 31 chars', 'a'.repeat(31), 400, 'VALIDATION_FAILED'],
    ['id 33 chars', 'a'.repeat(33), 400, 'VALIDATION_FAILED'],
    ['id numeric', '12345', 400, 'VALIDATION_FAILED'],
    ['unknown id', UNKNOWN_HEX_ID, 404, 'REDEMPTION_NOT_FOUND'],
  ].map(([name, id, status, code]): Case => ({
    name: name as string,
    route: R.getRedemption,
    status: status as number,
    code: code as string,
    req: (s) => ({ url: `/v1/redemptions/${id as string}`, headers: member(s) }),
  })),

  // ---- leaderboards ----
  ...[
    ['period yearly', '/v1/leaderboards/yearly'],
    ['period upper case', '/v1/leaderboards/DAILY'],
    ['period a number', '/v1/leaderboards/7'],
    ['limit=0', '/v1/leaderboards/all?limit=0'],
    ['limit=abc', '/v1/leaderboards/all?limit=abc'],
    ['limit=1000', '/v1/leaderboards/weekly?limit=1000'],
    ['unknown parameter', '/v1/leaderboards/daily?offset=5'],
  ].map(([name, url]): Case => ({ route: R.board, name, status: 400, code: 'VALIDATION_FAILED', req: () => ({ url }) })),
  {
    route: R.boardMe,
    name: 'period yearly',
    status: 400,
    code: 'VALIDATION_FAILED',
    req: (s) => ({ url: '/v1/leaderboards/yearly/me', headers: member(s) }),
  },
  { route: R.boardMe, name: 'no token', status: 401, code: 'UNAUTHORIZED', req: () => ({ url: '/v1/leaderboards/all/me' }) },

  // ---- no such route ----
  { route: 'none', name: 'unknown path', status: 404, code: 'NOT_FOUND', req: () => ({ url: '/v1/nope' }) },
  { route: 'none', name: 'DELETE on goods', status: 404, code: 'NOT_FOUND', req: (s) => ({ method: 'DELETE', url: `/v1/goods/${s.goodsId}` }) },
];

let ctx: TestContext;
let state: State;
let start: Snapshot;

const snap = () => snapshot(ctx, [state.member.id, state.admin.id], [state.goodsId, state.plainId, state.inactiveId, state.futureId]);

beforeAll(async () => {
  ctx = await createTestContext();
  const [m] = await ctx.createMembers(1);
  const a = await ctx.admin();
  const takenEmail = 'taken@example.com';
  const reg = await ctx.app.inject({
    method: 'POST',
    url: '/v1/auth/register',
    payload: { username: 'taken', email: takenEmail, password: 'long-enough-pw' },
  });
  expect(reg.statusCode).toBe(201);
  await ctx.grant(m.id, 1000);
  const goods = await ctx.createGoods({ pointsPrice: 10, stock: 5, perUserLimit: 2 });
  const plain = await ctx.createGoods({ pointsPrice: 10, stock: 5 });
  const inactive = await ctx.createGoods({ pointsPrice: 10, stock: 5, active: false });
  const future = await ctx.createGoods({ pointsPrice: 10, stock: 5, startsAt: new Date(Date.now() + 86_400_000).toISOString() });
  state = { member: m, admin: a, goodsId: goods.id, plainId: plain.id, inactiveId: inactive.id, futureId: future.id, takenEmail };
  // hydrate both accounts so a read on the way cannot be mistaken for a write
  for (const t of [m.token, a.token]) {
    expect((await ctx.app.inject({ url: '/v1/me/points', headers: bearer(t) })).statusCode).toBe(200);
  }
  start = await snap();
});
afterAll(async () => ctx?.close());

describe('bad input is refused with a stable error and writes nothing', () => {
  it.each(cases)('$route — $name → $status $code', async (c) => {
    const before = await snap();
    const res = await ctx.app.inject(c.req(state));
    expectError(res, c.status, c.code);
    expect(await snap()).toEqual(before);
  });

  it('the whole table left Redis and Postgres exactly as they were', async () => {
    const end = await snap();
    expect(end.keyCount).toBe(start.keyCount);
    expect(end.members[state.member.id].outboxLen).toBe(start.members[state.member.id].outboxLen);
    expect(end.members[state.member.id].acct).toEqual(start.members[state.member.id].acct);
    expect(end.rows).toEqual(start.rows);
    expect(end).toEqual(start);
  });

  it('the table covers every route of the API contract, and the OpenAPI document lists them all', async () => {
    const doc = (await ctx.app.inject({ url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)),
    );
    const contract = Object.values(R);
    expect(contract.filter((r) => !documented.has(r))).toEqual([]);
    const covered = new Set(cases.map((c) => c.route));
    expect(contract.filter((r) => !covered.has(r))).toEqual([]);
  });

  it('the same well-formed requests do succeed (the table is not refusing everything)', async () => {
    const ok = await ctx.app.inject({ url: '/v1/me/ledger?limit=5', headers: bearer(state.member.token) });
    expect(ok.statusCode).toBe(200);
    const goods = await ctx.app.inject({ url: `/v1/goods/${state.goodsId}` });
    expect(goods.statusCode).toBe(200);
    const board = await ctx.app.inject({ url: '/v1/leaderboards/daily?limit=5' });
    expect(board.statusCode).toBe(200);
    for (const b of bodyRoutes.filter((r) => r.route !== R.register)) {
      const res = await ctx.app.inject({ method: b.method, url: b.url(state), headers: b.headers(state), payload: b.valid(state) });
      expect(res.statusCode, `${b.route} ${res.body}`).toBeLessThan(300);
    }
  });
});
