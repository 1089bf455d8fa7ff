/**
 * The OpenAPI document at /docs/json is complete: every operation is named (a unique
 * operationId), summarised, tagged, declares its security and a success response, and documents
 * its errors with the shared error body. Probes hold the documented statuses against what the
 * routes answer: every operation called anonymously, every read while the Redis write gate is
 * closed, every /v1 write while a rebuild holds writes. Bodies hold to the published schemas: a
 * table of representative requests across the domains, each answer validated (ajv) against the
 * document's schema for its status. Every error code of the status table is listed in README.md.
 * (Which routes are bearer-protected is test/api/auth.test.ts's contract; redocly's lint of the
 * document is test/api/openapi-lint.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { createTestContext, type TestContext } from '../support/context.ts';
import { ErrorSchema } from '../../src/http/schemas.ts';
import { STATUS_BY_CODE } from '../../src/errors/http-errors.ts';
import { bearer, expectError } from './helpers.ts';

interface JsonSchema {
  type?: string;
  properties?: Record<string, unknown>;
  required?: string[];
}

interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  responses?: Record<string, { content?: Record<string, { schema?: JsonSchema }> }>;
}

interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
}

/**
 * 4xx/5xx answers that are not the error body, and why. The readiness probe reports its checks
 * with the 503 that takes the instance out of a load balancer.
 */
const NOT_ERROR_BODIES: Record<string, string> = {
  'GET /health/ready 503': 'the readiness report: which of Redis, Postgres, backlog and the write gate is not ok',
  'GET /health/business 503': 'the critical business report (drift, negative balances, parked batches), or the error body when it cannot be read',
};

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

// ajv-formats is CommonJS; its default export arrives wrapped under ESM interop
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

let ctx: TestContext;
let doc: OpenApi;
let member: { id: number; token: string };
let admin: { id: number; token: string };
let goodsId: number;
let lotteryId: number;

beforeAll(async () => {
  // the gate re-checks itself only on a write or this schedule: a closed gate stays closed for the reads probed
  ctx = await createTestContext({ LAG_CHECK_MS: 3_600_000 });
  [member] = await ctx.createMembers(1);
  admin = await ctx.admin();
  goodsId = (await ctx.createGoods({ pointsPrice: 10, stock: 5 })).id;
  const lottery = await ctx.app.inject({
    method: 'POST',
    url: '/v1/admin/lotteries',
    headers: { ...bearer(admin.token), 'idempotency-key': 'openapi-lottery' },
    payload: { name: 'Probe', cost: 1, active: true, prizes: [{ name: 'Nothing', kind: 'none', weight: 1 }] },
  });
  expect(lottery.statusCode, lottery.body).toBe(201);
  lotteryId = lottery.json().id;
  const res = await ctx.app.inject({ url: '/docs/json' });
  expect(res.statusCode).toBe(200);
  doc = res.json();
});
afterAll(async () => ctx?.close());

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, op })),
  );

const statuses = (op: Operation) => Object.keys(op.responses ?? {});

const jsonSchema = (op: Operation, status: string) => op.responses?.[status]?.content?.['application/json']?.schema;

/** The body schema of a response in any media type (files are text/csv, xlsx, …). */
const bodySchema = (op: Operation, status: string) => Object.values(op.responses?.[status]?.content ?? {}).find((c) => c.schema)?.schema;

/** A request for a documented route (ids: the lottery's or the goods item's) and, for writes, an empty JSON body. */
function probe(route: string, headers: Record<string, string> = {}): InjectOptions {
  const [method, path] = route.split(' ');
  const url = path
    .replace('{id}', String(path.includes('/lotteries/') ? lotteryId : goodsId))
    .replace('{period}', 'daily')
    .replace('{key}', 'x')
    .replace('{code}', 'X');
  return { method: method as InjectOptions['method'], url, headers, ...(WRITES.has(method) ? { payload: {} } : {}) };
}

type Op = ReturnType<typeof operations>[number];

/** Each operation probed with these headers, with its answer. */
async function answers(ops: Op[], headers: Record<string, string>) {
  const out: Array<Op & { res: LightMyRequestResponse }> = [];
  for (const o of ops) out.push({ ...o, res: await ctx.app.inject(probe(o.route, headers)) });
  return out;
}

/** The answers whose status the operation does not document. */
const undocumented = (probed: Array<Op & { res: LightMyRequestResponse }>) =>
  probed
    .filter(({ op, res }) => !statuses(op).includes(String(res.statusCode)))
    .map(({ route, res }) => `${route} answered ${res.statusCode} ${res.body.slice(0, 120)}`);

describe('every operation of the OpenAPI document', () => {
  it('has an operationId, unique across the document', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(0);
    expect(ops.filter((o) => !o.op.operationId?.trim()).map((o) => o.route)).toEqual([]);
    const ids = ops.map((o) => o.op.operationId);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });

  it('has a summary and at least one tag', () => {
    expect(operations().filter((o) => !o.op.summary?.trim()).map((o) => o.route)).toEqual([]);
    expect(operations().filter((o) => !o.op.tags?.length).map((o) => o.route)).toEqual([]);
  });

  it('declares its security, an empty list for public routes', () => {
    expect(operations().filter((o) => !Array.isArray(o.op.security)).map((o) => o.route)).toEqual([]);
  });

  it('documents the errors any route can answer: 500 everywhere, 503 on every /v1 route, 429 under the rate limit', () => {
    expect(operations().filter((o) => !statuses(o.op).includes('500')).map((o) => o.route)).toEqual([]);
    const v1 = operations().filter((o) => o.path.startsWith('/v1/'));
    expect(v1.filter((o) => !statuses(o.op).includes('503')).map((o) => o.route)).toEqual([]);
    // exempt from the rate limit (`rateLimit: false`): the payment provider's webhook
    const exempt = ['POST /v1/payments/webhook'];
    expect(v1.filter((o) => !statuses(o.op).includes('429')).map((o) => o.route)).toEqual(exempt);
    const writes = operations().filter((o) => WRITES.has(o.method));
    expect(writes.filter((o) => !['400', '413', '415'].every((s) => statuses(o.op).includes(s))).map((o) => o.route)).toEqual([]);
  });

  it('documents a 2xx response with a body schema, or an explicit 204', () => {
    const missing = operations().filter(
      ({ op }) => !statuses(op).some((s) => s === '204' || (/^2\d\d$/.test(s) && bodySchema(op, s) !== undefined)),
    );
    expect(missing.map((o) => o.route)).toEqual([]);
  });

  it('documents every 4xx and 5xx response with the shared error body', () => {
    const fields = Object.entries(ErrorSchema.properties).map(([name, def]) => ({ name, type: def.type }));
    const wrong: string[] = [];
    const exceptionsSeen: string[] = [];
    for (const { route, op } of operations()) {
      for (const status of statuses(op).filter((s) => /^[45]\d\d$/.test(s))) {
        if (NOT_ERROR_BODIES[`${route} ${status}`]) {
          exceptionsSeen.push(`${route} ${status}`);
          continue;
        }
        const schema = jsonSchema(op, status);
        // an error may carry more (PRICE_CHANGED's currentPrice, LOTTERY_COOLDOWN's retryAfterSeconds): the shared fields stay as they are
        const ok =
          schema?.type === 'object' &&
          fields.every((f) => (schema.properties?.[f.name] as { type?: string } | undefined)?.type === f.type && schema.required?.includes(f.name));
        if (!ok) wrong.push(`${route} ${status}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(exceptionsSeen.sort()).toEqual(Object.keys(NOT_ERROR_BODIES).sort());
  });
});

/** One representative request: the documented route it calls, how, and the status it must get. */
interface Sample {
  route: string;
  status: number;
  url?: () => string;
  as?: 'anonymous' | 'member' | 'admin';
  payload?: () => unknown;
}

const goodsUrl = () => `/v1/goods/${goodsId}`;
const lotteryUrl = (tail = '') => `/v1/lotteries/${lotteryId}${tail}`;
const username = `oa_${randomBytes(3).toString('hex')}`;

/** Across the domains: reads and writes, successes and the errors members and admins meet. */
const SAMPLES: Sample[] = [
  { route: 'GET /health/live', status: 200 },
  { route: 'GET /health/ready', status: 200 },
  { route: 'POST /v1/auth/register', status: 201, payload: () => ({ username, email: `${username}@test.local`, password: 'a-long-password' }) },
  { route: 'POST /v1/auth/login', status: 200, payload: () => ({ email: `${username}@test.local`, password: 'a-long-password' }) },
  { route: 'POST /v1/auth/login', status: 401, payload: () => ({ email: `${username}@test.local`, password: 'wrong-password' }) },
  { route: 'POST /v1/auth/register', status: 400, payload: () => ({ username: 'x' }) },
  { route: 'GET /v1/me/points', status: 200, as: 'member' },
  { route: 'GET /v1/me/points', status: 401 },
  { route: 'GET /v1/me/lots', status: 200, as: 'member' },
  { route: 'GET /v1/me/ledger', status: 200, as: 'member' },
  { route: 'POST /v1/points/earn', status: 404, as: 'member', payload: () => ({ action: 'no_such_action' }) },
  { route: 'POST /v1/admin/points/grant', status: 200, as: 'admin', payload: () => ({ userId: member.id, amount: 5, reason: 'openapi sample' }) },
  { route: 'POST /v1/admin/points/grant', status: 403, as: 'member', payload: () => ({ userId: member.id, amount: 5, reason: 'no' }) },
  { route: 'GET /v1/goods', status: 200 },
  { route: 'GET /v1/goods/{id}', status: 200, url: goodsUrl },
  { route: 'GET /v1/goods/{id}', status: 404, url: () => '/v1/goods/999999999' },
  { route: 'GET /v1/goods/hot', status: 200 },
  { route: 'POST /v1/redemptions', status: 201, as: 'member', payload: () => ({ goodsId, quantity: 1 }) },
  { route: 'POST /v1/redemptions', status: 409, as: 'member', payload: () => ({ goodsId, quantity: 100 }) },
  { route: 'GET /v1/me/redemptions', status: 200, as: 'member' },
  { route: 'GET /v1/leaderboards/{period}', status: 200, url: () => '/v1/leaderboards/daily' },
  { route: 'GET /v1/leaderboards/{period}/me', status: 200, url: () => '/v1/leaderboards/weekly/me', as: 'member' },
  { route: 'POST /v1/me/checkins', status: 201, as: 'member' },
  { route: 'POST /v1/me/checkins', status: 409, as: 'member' },
  { route: 'GET /v1/me/checkins', status: 200, as: 'member' },
  { route: 'GET /v1/me/tier', status: 200, as: 'member' },
  { route: 'GET /v1/campaigns/active', status: 200 },
  { route: 'GET /v1/lotteries', status: 200 },
  { route: 'GET /v1/lotteries/{id}', status: 200, url: () => lotteryUrl() },
  { route: 'POST /v1/lotteries/{id}/draws', status: 201, url: () => lotteryUrl('/draws'), as: 'member' },
  { route: 'GET /v1/me/tasks', status: 200, as: 'member' },
  { route: 'GET /v1/me/profile', status: 200, as: 'member' },
  { route: 'GET /v1/me/referral', status: 200, as: 'member' },
  { route: 'GET /v1/me/orders', status: 200, as: 'member' },
  { route: 'POST /v1/points/transfers', status: 404, as: 'member', payload: () => ({ toUsername: 'nobody_here', amount: 1 }) },
  { route: 'GET /v1/me/transfers', status: 200, as: 'member' },
  { route: 'GET /v1/categories', status: 200 },
  { route: 'GET /v1/me/notifications', status: 200, as: 'member' },
  { route: 'GET /v1/me/devices', status: 200, as: 'member' },
  { route: 'GET /v1/me/recommendations', status: 200, as: 'member' },
  { route: 'GET /v1/admin/members', status: 200, url: () => `/v1/admin/members?q=${username}`, as: 'admin' },
  { route: 'GET /v1/admin/members/{id}', status: 200, url: () => `/v1/admin/members/${member.id}`, as: 'admin' },
  { route: 'GET /v1/admin/orders', status: 200, as: 'admin' },
  { route: 'GET /v1/admin/risk/rules', status: 200, as: 'admin' },
  { route: 'GET /v1/admin/risk/events', status: 200, as: 'admin' },
  { route: 'GET /v1/admin/experiments', status: 200, as: 'admin' },
  { route: 'GET /v1/admin/audit', status: 200, as: 'admin' },
  { route: 'GET /v1/admin/persist/parked', status: 200, as: 'admin' },
  { route: 'GET /v1/admin/lotteries/{id}/stats', status: 200, url: () => `/v1/admin/lotteries/${lotteryId}/stats`, as: 'admin' },
  { route: 'POST /v1/admin/goods', status: 201, as: 'admin', payload: () => ({ name: 'Sample', type: 'virtual', pointsPrice: 3, stock: 2 }) },
  { route: 'PATCH /v1/admin/goods/{id}', status: 404, url: () => '/v1/admin/goods/999999999', as: 'admin', payload: () => ({ name: 'Gone' }) },
];

describe('answers hold to the published schemas', () => {
  const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));

  beforeAll(async () => {
    await ctx.grant(member.id, 1_000);
  });

  it.each(SAMPLES.map((s) => [`${s.route} → ${s.status}${s.as ? ` (${s.as})` : ''}`, s] as const))('%s', async (_name, sample) => {
    const [method, path] = sample.route.split(' ');
    const op = doc.paths[path]?.[method.toLowerCase()];
    expect(op, `${sample.route} is in the document`).toBeDefined();
    const token = sample.as === 'member' ? member.token : sample.as === 'admin' ? admin.token : undefined;
    const res = await ctx.app.inject({
      method: method as InjectOptions['method'],
      url: sample.url?.() ?? path,
      headers: { ...(token ? bearer(token) : {}), ...(WRITES.has(method) ? { 'idempotency-key': randomBytes(8).toString('hex') } : {}) },
      ...(sample.payload ? { payload: sample.payload() as InjectOptions['payload'] } : {}),
    });
    expect(res.statusCode, res.body.slice(0, 300)).toBe(sample.status);
    const schema = jsonSchema(op, String(res.statusCode));
    expect(schema, `${sample.route} documents ${res.statusCode} with a JSON body`).toBeDefined();
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const validate = ajv.compile(schema as object);
    expect(validate(res.json()) ? [] : validate.errors, res.body.slice(0, 300)).toEqual([]);
  });
});

describe('documented statuses against what the routes answer', () => {
  it('an anonymous call gets a documented status; a 401 UNAUTHORIZED comes only from a route declaring bearer', async () => {
    const probed = await answers(operations(), {});
    expect(undocumented(probed)).toEqual([]);
    const refused = probed.filter(({ res }) => res.statusCode === 401 && res.json().code === 'UNAUTHORIZED');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.filter(({ op }) => !op.security?.some((s) => 'bearer' in s)).map((o) => o.route)).toEqual([]);
  });

  it('every read, anonymous, by a member or an admin, gets a documented status while the write gate is closed and Redis has lost what reads load on demand', async () => {
    const reads = operations().filter((o) => o.method === 'GET');
    // as after a Redis loss: what the reads find missing they load from Postgres
    // one DEL per key: they live in different slots on a cluster
    await Promise.all([ctx.keys.account(member.id), ctx.keys.account(admin.id), ctx.keys.lottery(lotteryId), ctx.keys.goods(goodsId)].map((k) => ctx.redis.del(k)));
    ctx.app.redisGate.invalidate('closed by the OpenAPI test');
    try {
      for (const headers of [{}, bearer(member.token), bearer(admin.token)]) {
        expect(undocumented(await answers(reads, headers))).toEqual([]);
      }
      // the control: a read that must load the account is refused, not answered from nothing
      expectError(await ctx.app.inject({ url: '/v1/me/points', headers: bearer(member.token) }), 503, 'SERVICE_UNAVAILABLE');
    } finally {
      expect(await ctx.app.redisGate.check()).toBe('verified');
    }
  });

  it('every /v1 write documents 503, and answers it while a rebuild holds writes', async () => {
    const writes = operations().filter((o) => WRITES.has(o.method) && o.path.startsWith('/v1/'));
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.filter((o) => !statuses(o.op).includes('503')).map((o) => o.route)).toEqual([]);
    await ctx.redis.set(ctx.keys.maintenance(), 'openapi-test');
    await ctx.app.maintenance.refresh();
    try {
      for (const { route } of writes) {
        for (const headers of [{}, bearer(admin.token)]) {
          expectError(await ctx.app.inject(probe(route, { ...headers, 'idempotency-key': 'openapi-gate' })), 503, 'SERVICE_UNAVAILABLE');
        }
      }
    } finally {
      await ctx.redis.del(ctx.keys.maintenance());
      await ctx.app.maintenance.refresh();
    }
    expect(ctx.app.maintenance.on).toBe(false);
  });
});

describe('README', () => {
  it('lists every error code of the status table', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const missing = Object.keys(STATUS_BY_CODE).filter((code) => !new RegExp(`(?<![A-Z0-9_])${code}(?![A-Z0-9_])`).test(readme));
    expect(missing).toEqual([]);
  });
});
