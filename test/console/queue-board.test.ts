/**
 * The queue dashboard at /admin/queues: every queue of the system, admins only (bearer token or
 * the console cookie, checked on every request), and the console session that sets the cookie.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { bearer, craftToken, expectError, nowSec } from '../api/helpers.ts';
import { SCHEDULED_TASKS } from '../../src/queues.ts';
import { boardQueueNames } from '../../src/ops/queue-board.ts';

let ctx: TestContext;
let admin: { id: number; token: string };
let member: { id: number; token: string };

beforeAll(async () => {
  ctx = await createTestContext();
  admin = await ctx.admin();
  [member] = await ctx.createMembers(1);
});
afterAll(async () => ctx?.close());

const cookieOf = (setCookie: string | string[] | undefined) => String(Array.isArray(setCookie) ? setCookie[0] : setCookie).split(';')[0];

describe('queue dashboard', () => {
  it('lists every scheduled task the workers start', () => {
    const dir = new URL('../../workers/', import.meta.url);
    const started = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(new URL(f, dir), 'utf8').matchAll(/startScheduledTask\(\{\s*name: '([^']+)'/g)].map((m) => m[1]));
    expect(started.length).toBeGreaterThan(0);
    expect([...started].sort()).toEqual([...SCHEDULED_TASKS].sort());
  });

  it('refuses a caller without a token, with a member token, or with a forged cookie', async () => {
    expectError(await ctx.app.inject({ url: '/admin/queues/api/queues' }), 401, 'UNAUTHORIZED');
    expectError(await ctx.app.inject({ url: '/admin/queues', headers: bearer(member.token) }), 403, 'FORBIDDEN');
    expectError(await ctx.app.inject({ url: '/admin/queues/api/queues', headers: bearer(member.token) }), 403, 'FORBIDDEN');
    expectError(await ctx.app.inject({ url: '/admin/queues/api/queues', headers: { cookie: `pm_console=${member.token}` } }), 403, 'FORBIDDEN');
    const forged = craftToken({ alg: 'HS256', typ: 'JWT' }, { sub: String(admin.id), role: 'admin', username: 'x', exp: nowSec() + 600 }, 'not-the-secret');
    expectError(await ctx.app.inject({ url: '/admin/queues/api/queues', headers: { cookie: `pm_console=${forged}` } }), 401, 'UNAUTHORIZED');
    expectError(await ctx.app.inject({ url: '/admin/queues/api/queues', headers: bearer(forged) }), 401, 'UNAUTHORIZED');
  });

  it('sends a browser without credentials to the console login', async () => {
    const res = await ctx.app.inject({ url: '/admin/queues', headers: { accept: 'text/html' } });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/console/?next=%2Fadmin%2Fqueues');
  });

  it('shows every queue to an admin bearer token', async () => {
    const page = await ctx.app.inject({ url: '/admin/queues', headers: bearer(admin.token) });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('<base href="/admin/queues/"');
    expect(page.body).not.toMatch(/https?:\/\//);
    const api = await ctx.app.inject({ url: '/admin/queues/api/queues', headers: bearer(admin.token) });
    expect(api.statusCode, api.body).toBe(200);
    const names = (api.json() as { queues: Array<{ name: string }> }).queues.map((q) => q.name).sort();
    expect(names).toEqual(boardQueueNames().map((q) => q.name).sort());
    expect(names).toEqual(expect.arrayContaining(['persist', 'push', 'broadcast', 'admin-jobs', 'task-reconcile', 'task-expire-lots']));
  });

  it('opens to the console cookie, which only an admin token gets, and closes again', async () => {
    expectError(await ctx.app.inject({ method: 'POST', url: '/v1/auth/console-session' }), 401, 'UNAUTHORIZED');
    expectError(await ctx.app.inject({ method: 'POST', url: '/v1/auth/console-session', headers: bearer(member.token) }), 403, 'FORBIDDEN');
    const res = await ctx.app.inject({ method: 'POST', url: '/v1/auth/console-session', headers: bearer(admin.token) });
    expect(res.statusCode, res.body).toBe(200);
    const header = String(res.headers['set-cookie']);
    expect(header).toMatch(/^pm_console=[^;]+; Path=\/admin\/queues; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
    expect(Date.parse(res.json().expiresAt)).toBeGreaterThan(Date.now());
    const cookie = cookieOf(res.headers['set-cookie']);
    const api = await ctx.app.inject({ url: '/admin/queues/api/queues', headers: { cookie: `theme=dark; ${cookie}` } });
    expect(api.statusCode, api.body).toBe(200);
    const out = await ctx.app.inject({ method: 'DELETE', url: '/v1/auth/console-session' });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^pm_console=; Path=\/admin\/queues; Max-Age=0; HttpOnly; SameSite=Strict$/);
  });

  it('rejects an expired console cookie', async () => {
    const expired = craftToken({ alg: 'HS256', typ: 'JWT' }, { sub: String(admin.id), role: 'admin', username: 'x', exp: nowSec() - 10 }, ctx.env.JWT_SECRET);
    expectError(await ctx.app.inject({ url: '/admin/queues/api/queues', headers: { cookie: `pm_console=${expired}` } }), 401, 'UNAUTHORIZED');
  });
});
