/**
 * Failed logins are limited per IP and per account, and registrations per IP, before any
 * password is hashed: a refused attempt costs no argon2 work. Hashes are counted by watching
 * AuthService.login, the only place the login route hashes.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createTestContext, type TestContext } from '../support/context.ts';
import { expectError } from './helpers.ts';

const ALLOWED_IP = '198.51.100.7';
let ctx: TestContext;
let shortWindow: TestContext;
let defaults: TestContext;

beforeAll(async () => {
  [ctx, shortWindow, defaults] = await Promise.all([
    createTestContext({
      LOGIN_FAILS_PER_IP: 5,
      LOGIN_FAILS_PER_ACCOUNT: 3,
      LOGIN_WINDOW_MS: 600_000,
      REGISTER_PER_IP: 2,
      REGISTER_WINDOW_MS: 3_600_000,
      RATE_LIMIT_ALLOWLIST: '198.51.100.0/24',
    }),
    createTestContext({ LOGIN_FAILS_PER_ACCOUNT: 3, LOGIN_WINDOW_MS: 4000, RATE_LIMIT_ALLOWLIST: '' }),
    createTestContext({ RATE_LIMIT_ALLOWLIST: '' }),
  ]);
});
afterAll(async () => {
  await Promise.all([ctx?.close(), shortWindow?.close(), defaults?.close()]);
});

function login(c: TestContext, ip: string, email: string, password: string) {
  return c.app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress: ip, payload: { email, password } });
}

function register(c: TestContext, ip: string, name: string) {
  return c.app.inject({
    method: 'POST',
    url: '/v1/auth/register',
    remoteAddress: ip,
    payload: { username: name, email: `${name}@example.com`, password: 'long-enough-pw' },
  });
}

/** A member's email; createMembers gives every member the password "member-password". */
async function memberEmail(c: TestContext): Promise<string> {
  const [m] = await c.createMembers(1);
  const [{ email }] = await c.sql<Array<{ email: string }>>`SELECT email FROM users WHERE id = ${m.id}`;
  return email;
}

/** 429 with the given code and a Retry-After of whole seconds within the window. */
function expectRefused(res: LightMyRequestResponse, code: string, windowMs: number): number {
  expectError(res, 429, code);
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter), `retry-after ${res.headers['retry-after']}`).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(Math.ceil(windowMs / 1000));
  return retryAfter;
}

const codes = (all: LightMyRequestResponse[]) =>
  all.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.statusCode]: (acc[r.statusCode] ?? 0) + 1 }), {});

describe('failed logins', () => {
  it('a burst of parallel wrong logins from one IP hashes at most LOGIN_FAILS_PER_IP passwords; the rest are 429 before hashing', async () => {
    const hashes = vi.spyOn(ctx.app.authService, 'login');
    try {
      const burst = await Promise.all(
        Array.from({ length: 40 }, (_, i) => login(ctx, '203.0.113.10', `nobody${i}@example.com`, 'wrong-password')),
      );
      expect(codes(burst)).toEqual({ 401: 5, 429: 35 });
      expect(hashes).toHaveBeenCalledTimes(5);
      for (const r of burst.filter((b) => b.statusCode === 429)) expectRefused(r, 'TOO_MANY_LOGIN_ATTEMPTS', 600_000);
      expectError(await login(ctx, '203.0.113.11', 'nobody0@example.com', 'wrong-password'), 401, 'INVALID_CREDENTIALS');
    } finally {
      hashes.mockRestore();
    }
  });

  it('with the default limits, 200 parallel wrong logins from one IP hash 100 passwords', async () => {
    expect(defaults.env).toMatchObject({ LOGIN_FAILS_PER_IP: 100, LOGIN_WINDOW_MS: 900_000 });
    const hashes = vi.spyOn(defaults.app.authService, 'login');
    try {
      const burst = await Promise.all(
        Array.from({ length: 200 }, (_, i) => login(defaults, '203.0.113.12', `guess${i}@example.com`, 'wrong-password')),
      );
      expect(codes(burst)).toEqual({ 401: 100, 429: 100 });
      expect(hashes).toHaveBeenCalledTimes(100);
    } finally {
      hashes.mockRestore();
    }
  });

  it('limits each account across IPs, and refuses even the right password while it is locked', async () => {
    const email = await memberEmail(ctx);
    const hashes = vi.spyOn(ctx.app.authService, 'login');
    try {
      for (let i = 0; i < 3; i++) {
        expectError(await login(ctx, `203.0.113.${20 + i}`, email, 'wrong-password'), 401, 'INVALID_CREDENTIALS');
      }
      expectRefused(await login(ctx, '203.0.113.23', email, 'wrong-password'), 'TOO_MANY_LOGIN_ATTEMPTS', 600_000);
      expectRefused(await login(ctx, '203.0.113.24', email.toUpperCase(), 'member-password'), 'TOO_MANY_LOGIN_ATTEMPTS', 600_000);
      expect(hashes).toHaveBeenCalledTimes(3);
    } finally {
      hashes.mockRestore();
    }
  });

  it('lets the right password in again once the window has passed', async () => {
    const email = await memberEmail(shortWindow);
    // in parallel, so all three enter the window at once however slow the hashing is
    const wrong = await Promise.all([0, 1, 2].map(() => login(shortWindow, '203.0.113.30', email, 'wrong')));
    expect(codes(wrong)).toEqual({ 401: 3 });
    const locked = await login(shortWindow, '203.0.113.30', email, 'member-password');
    const wait = expectRefused(locked, 'TOO_MANY_LOGIN_ATTEMPTS', 4000);
    await new Promise((r) => setTimeout(r, wait * 1000 + 100));
    const res = await login(shortWindow, '203.0.113.30', email, 'member-password');
    expect(res.statusCode, res.body).toBe(200);
  });

  it('a successful login gives its slot back: only failures count', async () => {
    const email = await memberEmail(ctx);
    for (let i = 0; i < 5; i++) expect((await login(ctx, '203.0.113.40', email, 'member-password')).statusCode).toBe(200);
    for (let i = 0; i < 3; i++) expect((await login(ctx, '203.0.113.40', email, 'wrong-password')).statusCode).toBe(401);
    expectRefused(await login(ctx, '203.0.113.40', email, 'wrong-password'), 'TOO_MANY_LOGIN_ATTEMPTS', 600_000);
  });
});

describe('registration', () => {
  it('is limited per IP, refused before anything is written', async () => {
    expect((await register(ctx, '203.0.113.50', 'reg_a')).statusCode).toBe(201);
    expect((await register(ctx, '203.0.113.50', 'reg_b')).statusCode).toBe(201);
    expectRefused(await register(ctx, '203.0.113.50', 'reg_c'), 'RATE_LIMITED', 3_600_000);
    const [{ n }] = await ctx.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM users WHERE username = 'reg_c'`;
    expect(n).toBe(0);
    expect((await register(ctx, '203.0.113.51', 'reg_c')).statusCode).toBe(201);
  });
});

describe('RATE_LIMIT_ALLOWLIST', () => {
  it('exempts listed addresses from the per-IP limits, not from the per-account one', async () => {
    const wrong = await Promise.all(
      Array.from({ length: 8 }, (_, i) => login(ctx, ALLOWED_IP, `stranger${i}@example.com`, 'wrong-password')),
    );
    expect(codes(wrong)).toEqual({ 401: 8 });
    for (const name of ['allow_a', 'allow_b', 'allow_c', 'allow_d']) {
      expect((await register(ctx, ALLOWED_IP, name)).statusCode).toBe(201);
    }
    const email = await memberEmail(ctx);
    for (let i = 0; i < 3; i++) expect((await login(ctx, ALLOWED_IP, email, 'wrong-password')).statusCode).toBe(401);
    expectRefused(await login(ctx, ALLOWED_IP, email, 'member-password'), 'TOO_MANY_LOGIN_ATTEMPTS', 600_000);
  });
});
