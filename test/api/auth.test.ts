/**
 * Authentication and authorisation: register / login, bearer tokens (missing, garbage, foreign
 * secret, alg none, HS512, expired, tampered), admin-only routes, members' own redemptions,
 * public versus member-only leaderboards, health checks and the OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions } from 'fastify';
import { createTestContext, type TestContext } from '../support/context.ts';
import { bearer, craftToken, expectError, nowSec, rowCounts, snapshot } from './helpers.ts';

type Member = { id: number; token: string };
interface OpenApi {
  openapi: string;
  info: { title: string };
  components: { securitySchemes: Record<string, { type: string; scheme: string }> };
  paths: Record<string, Record<string, { security?: Array<Record<string, string[]>> }>>;
}

const CONTRACT = {
  public: [
    'POST /v1/auth/register',
    'POST /v1/auth/login',
    'GET /v1/goods',
    'GET /v1/goods/{id}',
    'GET /v1/leaderboards/{period}',
  ],
  member: [
    'GET /v1/me/points',
    'GET /v1/me/ledger',
    'POST /v1/points/earn',
    'POST /v1/redemptions',
    'GET /v1/me/redemptions',
    'GET /v1/redemptions/{id}',
    'GET /v1/leaderboards/{period}/me',
  ],
  admin: [
    'POST /v1/admin/points/grant',
    'POST /v1/admin/goods',
    'PATCH /v1/admin/goods/{id}',
    'POST /v1/admin/goods/{id}/restock',
  ],
};

let ctx: TestContext;
let doc: OpenApi;
let alice: Member;
let bob: Member;
let admin: Member;
let goodsId: number;

beforeAll(async () => {
  ctx = await createTestContext();
  [alice, bob] = await ctx.createMembers(2);
  admin = await ctx.admin();
  goodsId = (await ctx.createGoods({ pointsPrice: 10, stock: 100 })).id;
  const res = await ctx.app.inject({ url: '/docs/json' });
  expect(res.statusCode).toBe(200);
  doc = res.json();
});
afterAll(async () => ctx?.close());

/** Every operation of the OpenAPI document, as "METHOD /path/{param}". */
const operations = () =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, op })),
  );

/** A concrete request for a documented route (params filled in, an empty JSON body for writes). */
function requestFor(route: string, headers: Record<string, string> = {}): InjectOptions {
  const [method, path] = route.split(' ');
  const url = path
    .replace('{id}', path.startsWith('/v1/redemptions') ? 'ab'.repeat(16) : String(goodsId))
    .replace('{period}', 'all');
  const write = method === 'POST' || method === 'PATCH' || method === 'PUT';
  return {
    method: method as InjectOptions['method'],
    url,
    headers: { ...headers, ...(write ? { 'idempotency-key': `auth-${Math.random().toString(36).slice(2)}` } : {}) },
    ...(write ? { payload: {} } : {}),
  };
}

describe('register and login', () => {
  it('registers a member (email lower-cased, sign-up bonus credited) and the token works', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username: 'carol_1', email: 'Carol@Example.COM', password: 'carol-password' },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['accessToken', 'user']);
    expect(Object.keys(body.user).sort()).toEqual(['email', 'id', 'role', 'username']);
    expect(body.user).toMatchObject({ username: 'carol_1', email: 'carol@example.com', role: 'member' });
    expect(Number.isInteger(body.user.id)).toBe(true);
    const [header, payload] = body.accessToken.split('.').slice(0, 2).map((p: string) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header.alg).toBe('HS256');
    expect(payload).toMatchObject({ sub: String(body.user.id), role: 'member', username: 'carol_1' });
    expect(payload.exp).toBeGreaterThan(nowSec());
    const points = await ctx.app.inject({ url: '/v1/me/points', headers: bearer(body.accessToken) });
    expect(points.statusCode).toBe(200);
    expect(points.json()).toMatchObject({ available: 100, totalEarned: 100 });
  });

  it('logs in with the email in any case', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: 'CAROL@example.com', password: 'carol-password' },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.user).toMatchObject({ username: 'carol_1', email: 'carol@example.com', role: 'member' });
    expect(typeof body.accessToken).toBe('string');
    const points = await ctx.app.inject({ url: '/v1/me/points', headers: bearer(body.accessToken) });
    expect(points.statusCode).toBe(200);
  });

  it('refuses a duplicate email, whatever its case, with 409 EMAIL_TAKEN and writes no user', async () => {
    const before = await rowCounts(ctx);
    for (const email of ['carol@example.com', 'CAROL@EXAMPLE.COM', 'cArOl@example.com']) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/register',
        payload: { username: `other_${Math.random().toString(36).slice(2, 8)}`, email, password: 'another-password' },
      });
      expectError(res, 409, 'EMAIL_TAKEN');
    }
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('refuses a duplicate username with 409 USERNAME_TAKEN', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username: 'carol_1', email: 'someone-else@example.com', password: 'another-password' },
    });
    expectError(res, 409, 'USERNAME_TAKEN');
  });

  it('refuses a wrong password and an unknown email alike with 401 INVALID_CREDENTIALS', async () => {
    const wrong = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: 'carol@example.com', password: 'not-carols-password' },
    });
    const unknown = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: 'nobody@example.com', password: 'carol-password' },
    });
    const a = expectError(wrong, 401, 'INVALID_CREDENTIALS');
    const b = expectError(unknown, 401, 'INVALID_CREDENTIALS');
    expect(a.message).toBe(b.message); // no hint which of the two was wrong
    expect(wrong.json().accessToken).toBeUndefined();
  });

  it('refuses bad fields with 400 VALIDATION_FAILED', async () => {
    const bad: Array<Record<string, unknown>> = [
      { username: 'dave', email: 'dave@example.com' },
      { username: 'dave', email: 'not-an-email', password: 'dave-password' },
      { username: 'd', email: 'dave@example.com', password: 'dave-password' },
      { username: 'dave', email: 'dave@example.com', password: 'short' },
      { username: 'dave', email: 'dave@example.com', password: 'dave-password', role: 'admin' },
    ];
    for (const payload of bad) {
      expectError(await ctx.app.inject({ method: 'POST', url: '/v1/auth/register', payload }), 400, 'VALIDATION_FAILED');
    }
    expectError(await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'x@y.z' } }), 400, 'VALIDATION_FAILED');
  });
});

describe('bearer tokens', () => {
  const claims = () => ({ sub: String(alice.id), role: 'member', username: 'alice', iat: nowSec(), exp: nowSec() + 3600 });
  const adminClaims = () => ({ ...claims(), sub: String(admin.id), role: 'admin' });
  const secret = () => ctx.env.JWT_SECRET;
  const OTHER_SECRET = 'another-secret-that-is-long-enough-0123456789';

  const badAuth: Array<[string, () => Record<string, string>]> = [
    ['no Authorization header', () => ({})],
    ['empty Authorization header', () => ({ authorization: '' })],
    ['"Bearer" and nothing', () => ({ authorization: 'Bearer' })],
    ['garbage token', () => bearer('garbage')],
    ['three garbage segments', () => bearer('a.b.c')],
    ['token without the Bearer scheme', () => ({ authorization: ctx.app.jwt.sign({ sub: String(alice.id), role: 'member', username: 'a' }) })],
    ['Basic credentials', () => ({ authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` })],
    ['signed with another secret', () => bearer(craftToken({ alg: 'HS256', typ: 'JWT' }, claims(), OTHER_SECRET))],
    ['admin claims signed with another secret', () => bearer(craftToken({ alg: 'HS256', typ: 'JWT' }, adminClaims(), OTHER_SECRET))],
    ['alg none', () => bearer(craftToken({ alg: 'none', typ: 'JWT' }, adminClaims(), null))],
    ['alg none with a signature', () => bearer(`${craftToken({ alg: 'none', typ: 'JWT' }, adminClaims(), null)}c2ln`)],
    ['HS512 with the right secret', () => bearer(craftToken({ alg: 'HS512', typ: 'JWT' }, claims(), secret(), 'sha512'))],
    ['expired', () => bearer(craftToken({ alg: 'HS256', typ: 'JWT' }, { ...claims(), iat: nowSec() - 7200, exp: nowSec() - 3600 }, secret()))],
    ['not yet valid', () => bearer(craftToken({ alg: 'HS256', typ: 'JWT' }, { ...claims(), nbf: nowSec() + 3600 }, secret()))],
    ['role changed to admin after signing', () => {
      const [h, , s] = ctx.app.jwt.sign({ sub: String(alice.id), role: 'member', username: 'alice' }).split('.');
      const forged = Buffer.from(JSON.stringify(adminClaims())).toString('base64url');
      return bearer(`${h}.${forged}.${s}`);
    }],
    ['subject not a number', () => bearer(ctx.app.jwt.sign({ sub: 'alice', role: 'member', username: 'alice' }))],
    ['subject 0', () => bearer(ctx.app.jwt.sign({ sub: '0', role: 'member', username: 'alice' }))],
  ];

  // a bearer requirement with an empty alternative ({}) is optional: the route answers anyone (GET /v1/goods/{id} prices for the caller)
  const requiresBearer = (o: ReturnType<typeof operations>[number]) =>
    (o.op.security?.some((s) => 'bearer' in s) ?? false) && !o.op.security!.some((s) => Object.keys(s).length === 0);

  it('the OpenAPI document marks exactly the member and admin routes as bearer-protected', () => {
    const secured = operations().filter(requiresBearer).map((o) => o.route);
    for (const r of [...CONTRACT.member, ...CONTRACT.admin]) expect(secured).toContain(r);
    for (const r of CONTRACT.public) expect(secured).not.toContain(r);
  });

  it.each(badAuth)('%s → 401 UNAUTHORIZED on every protected route, nothing written', async (_name, headers) => {
    const secured = operations().filter(requiresBearer);
    expect(secured.length).toBeGreaterThanOrEqual(CONTRACT.member.length + CONTRACT.admin.length);
    const before = await snapshot(ctx, [alice.id, admin.id], [goodsId]);
    for (const { route } of secured) {
      const res = await ctx.app.inject(requestFor(route, headers()));
      expect(res.statusCode, route).toBe(401);
      expectError(res, 401, 'UNAUTHORIZED');
    }
    expect(await snapshot(ctx, [alice.id, admin.id], [goodsId])).toEqual(before);
  });

  it('a well-formed token of ours is accepted (control)', async () => {
    const own = craftToken({ alg: 'HS256', typ: 'JWT' }, claims(), secret());
    const res = await ctx.app.inject({ url: '/v1/me/points', headers: bearer(own) });
    expect(res.statusCode).toBe(200);
  });

  it('a token accepted once (and cached) is refused once it has expired', async () => {
    // exp is in whole seconds: expire at the start of the second after next
    const exp = nowSec() + 2;
    const own = craftToken({ alg: 'HS256', typ: 'JWT' }, { ...claims(), exp }, secret());
    expect((await ctx.app.inject({ url: '/v1/me/points', headers: bearer(own) })).statusCode).toBe(200);
    expect((await ctx.app.inject({ url: '/v1/me/points', headers: bearer(own) })).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
    expectError(await ctx.app.inject({ url: '/v1/me/points', headers: bearer(own) }), 401, 'UNAUTHORIZED');
  });

  it('public routes answer without a token', async () => {
    for (const route of CONTRACT.public.filter((r) => r.startsWith('GET'))) {
      const res = await ctx.app.inject(requestFor(route));
      expect(res.statusCode, route).toBe(200);
    }
  });
});

describe('admin routes', () => {
  it('every admin route answers 403 FORBIDDEN to a member, before looking at the body, writing nothing', async () => {
    const adminRoutes = operations().filter((o) => o.path.startsWith('/v1/admin/')).map((o) => o.route);
    for (const r of CONTRACT.admin) expect(adminRoutes).toContain(r);
    const before = await snapshot(ctx, [alice.id, bob.id], [goodsId]);
    for (const route of adminRoutes) {
      for (const payload of [{}, { userId: alice.id, amount: 1_000_000, reason: 'self-service' }, { quantity: 5 }, { name: 'x' }]) {
        const req = requestFor(route, bearer(alice.token));
        const res = await ctx.app.inject({ ...req, payload });
        expect(res.statusCode, route).toBe(403);
        expectError(res, 403, 'FORBIDDEN');
      }
    }
    expect(await snapshot(ctx, [alice.id, bob.id], [goodsId])).toEqual(before);
  });

  it('the same routes work for an admin (control)', async () => {
    const h = bearer(admin.token);
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/v1/admin/goods',
      headers: { ...h, 'idempotency-key': 'auth-control-create' },
      payload: { name: 'Cap', type: 'physical', pointsPrice: 5, stock: 2 },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id;
    const patched = await ctx.app.inject({
      method: 'PATCH',
      url: `/v1/admin/goods/${id}`,
      headers: { ...h, 'idempotency-key': 'auth-control-patch' },
      payload: { pointsPrice: 6 },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().pointsPrice).toBe(6);
    const restocked = await ctx.app.inject({
      method: 'POST',
      url: `/v1/admin/goods/${id}/restock`,
      headers: { ...h, 'idempotency-key': 'auth-control-restock' },
      payload: { quantity: 3 },
    });
    expect(restocked.statusCode).toBe(200);
    expect(restocked.json().stock).toBe(5);
    const granted = await ctx.app.inject({
      method: 'POST',
      url: '/v1/admin/points/grant',
      headers: { ...h, 'idempotency-key': 'auth-control-grant' },
      payload: { userId: bob.id, amount: 500, reason: 'control' },
    });
    expect(granted.statusCode).toBe(200);
  });
});

describe("members' own data", () => {
  it("another member's redemption is 404, before and after it is persisted; the owner sees it", async () => {
    await ctx.grant(alice.id, 100);
    const redeemed = await ctx.app.inject({
      method: 'POST',
      url: '/v1/redemptions',
      headers: { ...bearer(alice.token), 'idempotency-key': 'alice-r1' },
      payload: { goodsId, quantity: 1 },
    });
    expect(redeemed.statusCode).toBe(201);
    const id = redeemed.json().id as string;
    const check = async () => {
      const own = await ctx.app.inject({ url: `/v1/redemptions/${id}`, headers: bearer(alice.token) });
      expect(own.statusCode).toBe(200);
      expect(own.json()).toMatchObject({ id, goodsId, quantity: 1, pointsSpent: 10 });
      expectError(await ctx.app.inject({ url: `/v1/redemptions/${id}`, headers: bearer(bob.token) }), 404, 'REDEMPTION_NOT_FOUND');
      expectError(await ctx.app.inject({ url: `/v1/redemptions/${id}`, headers: bearer(admin.token) }), 404, 'REDEMPTION_NOT_FOUND');
      const bobs = await ctx.app.inject({ url: '/v1/me/redemptions', headers: bearer(bob.token) });
      expect(bobs.json().items.map((r: { id: string }) => r.id)).not.toContain(id);
    };
    await check(); // live op, not yet in Postgres
    const pipeline = await ctx.startPipeline();
    await pipeline.drain();
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM redemptions WHERE id = ${id}`;
    expect(n).toBe(1);
    await check(); // persisted row
    const alices = await ctx.app.inject({ url: '/v1/me/redemptions', headers: bearer(alice.token) });
    expect(alices.json().items.map((r: { id: string }) => r.id)).toContain(id);
  });
});

describe('leaderboards', () => {
  it('the top lists are public; /me needs a token', async () => {
    const earned = await ctx.app.inject({
      method: 'POST',
      url: '/v1/points/earn',
      headers: { ...bearer(bob.token), 'idempotency-key': 'bob-review' },
      payload: { action: 'review' },
    });
    expect(earned.statusCode).toBe(200);
    const pipeline = await ctx.startPipeline();
    await pipeline.drain();
    for (const period of ['daily', 'weekly', 'monthly', 'all']) {
      const top = await ctx.app.inject({ url: `/v1/leaderboards/${period}` });
      expect(top.statusCode, period).toBe(200);
      expect(top.json().period).toBe(period);
      expect(top.json().items).toContainEqual(expect.objectContaining({ userId: bob.id, points: 20 }));
      expectError(await ctx.app.inject({ url: `/v1/leaderboards/${period}/me` }), 401, 'UNAUTHORIZED');
      expectError(await ctx.app.inject({ url: `/v1/leaderboards/${period}/me`, headers: bearer('garbage') }), 401, 'UNAUTHORIZED');
      const me = await ctx.app.inject({ url: `/v1/leaderboards/${period}/me`, headers: bearer(bob.token) });
      expect(me.statusCode).toBe(200);
      expect(me.json()).toMatchObject({ rank: expect.any(Number), points: 20 });
      const nobody = await ctx.app.inject({ url: `/v1/leaderboards/${period}/me`, headers: bearer(alice.token) });
      expect(nobody.json()).toEqual({ rank: null, points: 0, topPercent: null });
    }
  });
});

describe('health and docs', () => {
  it('/health/live and /health/ready answer without a token', async () => {
    const live = await ctx.app.inject({ url: '/health/live' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await ctx.app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', redis: { ok: true }, postgres: { ok: true }, backlog: { ok: true } });
  });

  it('/docs/json is an OpenAPI document listing every /v1 route of the contract', async () => {
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBeTruthy();
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const documented = new Set(operations().map((o) => o.route));
    for (const r of [...CONTRACT.public, ...CONTRACT.member, ...CONTRACT.admin]) expect(documented).toContain(r);
    expect([...documented].filter((r) => r.includes(' /v1/')).length).toBeGreaterThanOrEqual(16);
  });
});
