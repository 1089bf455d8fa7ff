/**
 * The audit trail: admin writes, freezes, config changes and points grants carry their actor, the
 * client's IP (through TRUST_PROXY and X-Forwarded-For), user agent and request id; a burst of
 * failed logins is one row per account or IP and window; the admin query filters and pages
 * without duplicates or gaps; retention deletes only rows past the limit, in bounded batches.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/audit/log.ts';
import { LOGIN_BURST_FAILS, LOGIN_BURST_WINDOW_MS } from '../../src/audit/security.ts';
import { SYSTEM_CONTEXT } from '../../src/audit/context.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { bearer, expectError } from '../api/helpers.ts';

let ctx: TestContext;
let pipeline: Pipeline;
let admin: { id: number; token: string };
beforeAll(async () => {
  ctx = await createTestContext({ TRUST_PROXY: '127.0.0.1', RATE_LIMIT_MAX: 100_000 });
  pipeline = await ctx.startPipeline();
  admin = await ctx.admin();
});
afterAll(async () => ctx?.close());

const key = () => randomBytes(8).toString('hex');
/** An admin call from a client behind the trusted proxy at 127.0.0.1. */
const adminCall = (method: 'POST' | 'PUT', url: string, payload: object, client: { ip: string; ua: string; rid: string }) =>
  ctx.app.inject({
    method,
    url,
    remoteAddress: '127.0.0.1',
    headers: { ...bearer(admin.token), 'idempotency-key': key(), 'x-forwarded-for': client.ip, 'user-agent': client.ua, 'x-request-id': client.rid },
    payload,
  });
const auditRows = (action: string) =>
  ctx.sql<Array<{ actor_id: number | null; target_id: string; ip: string | null; user_agent: string | null; request_id: string | null; data: Record<string, unknown> }>>`
    SELECT actor_id, target_id, ip, user_agent, request_id, data FROM audit_log WHERE action = ${action} ORDER BY id`;
const query = (qs: string, token = admin.token) => ctx.app.inject({ url: `/v1/admin/audit${qs}`, headers: bearer(token) });

describe('admin writes', () => {
  it('an admin write carries its actor, the forwarded client IP, user agent and request id', async () => {
    const slug = `cat-${key()}`;
    const res = await adminCall('POST', '/v1/admin/categories', { name: 'Audited', slug }, { ip: '198.51.100.7', ua: 'ops-console/2.1', rid: 'req-audit-category' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['x-request-id']).toBe('req-audit-category');
    const [row] = (await auditRows('category.create')).filter((r) => r.target_id === String(res.json().id));
    expect(row).toMatchObject({ actor_id: admin.id, ip: '198.51.100.7', user_agent: 'ops-console/2.1', request_id: 'req-audit-category' });
    expect(row.data).toMatchObject({ slug });
  });

  it('a config change (risk rules) is audited with its request context', async () => {
    const res = await adminCall(
      'PUT',
      '/v1/admin/risk/rules',
      { rules: [{ rule: 'HIGH_FREQUENCY', enabled: true, threshold: 500, windowSeconds: 3600, action: 'flag' }] },
      { ip: '198.51.100.8', ua: 'ops-console/2.1', rid: 'req-audit-rules' },
    );
    expect(res.statusCode, res.body).toBe(200);
    const rows = await auditRows('risk.rules');
    expect(rows.at(-1)).toMatchObject({ actor_id: admin.id, ip: '198.51.100.8', request_id: 'req-audit-rules', target_id: 'risk_rules' });
    expect(JSON.stringify(rows.at(-1)!.data)).toContain('"threshold":500');
  });

  it('freezes and unfreezes are audited with the admin, reason and request context', async () => {
    const [m] = await ctx.createMembers(1);
    const client = { ip: '198.51.100.9', ua: 'ops-console/2.1', rid: 'req-audit-freeze' };
    expect((await adminCall('POST', `/v1/admin/members/${m.id}/freeze`, { reason: 'chargeback ring' }, client)).statusCode).toBe(200);
    expect((await adminCall('POST', `/v1/admin/members/${m.id}/unfreeze`, { reason: 'cleared' }, { ...client, rid: 'req-audit-unfreeze' })).statusCode).toBe(200);
    const [frozen] = (await auditRows('member.freeze')).filter((r) => r.target_id === String(m.id));
    const [unfrozen] = (await auditRows('member.unfreeze')).filter((r) => r.target_id === String(m.id));
    expect(frozen).toMatchObject({ actor_id: admin.id, ip: '198.51.100.9', user_agent: 'ops-console/2.1', request_id: 'req-audit-freeze', data: { reason: 'chargeback ring' } });
    expect(unfrozen).toMatchObject({ actor_id: admin.id, ip: '198.51.100.9', request_id: 'req-audit-unfreeze', data: { reason: 'cleared' } });
  });

  it('a points grant, audited by the persist worker from its op, keeps the request context', async () => {
    const [m] = await ctx.createMembers(1);
    const res = await adminCall('POST', '/v1/admin/points/grant', { userId: m.id, amount: 40, reason: 'goodwill' }, { ip: '198.51.100.10', ua: 'ops-console/2.1', rid: 'req-audit-grant' });
    expect(res.statusCode, res.body).toBe(200);
    await pipeline.drain();
    const [row] = (await auditRows('points.grant')).filter((r) => r.target_id === String(m.id));
    expect(row).toMatchObject({ actor_id: admin.id, ip: '198.51.100.10', user_agent: 'ops-console/2.1', request_id: 'req-audit-grant', data: { amount: 40, reason: 'goodwill' } });
  });

  it('a caller not behind the trusted proxy gets neither its forwarded IP nor its request id recorded', async () => {
    const slug = `cat-${key()}`;
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/admin/categories',
      remoteAddress: '203.0.113.50',
      headers: { ...bearer(admin.token), 'idempotency-key': key(), 'x-forwarded-for': '10.9.9.9', 'x-request-id': 'forged-id' },
      payload: { name: 'Direct', slug },
    });
    expect(res.statusCode, res.body).toBe(201);
    const [row] = (await auditRows('category.create')).filter((r) => r.target_id === String(res.json().id));
    expect(row.ip).toBe('203.0.113.50');
    expect(row.request_id).toBe(res.headers['x-request-id']);
    expect(row.request_id).not.toBe('forged-id');
  });
});

describe('failed login bursts', () => {
  it(`${LOGIN_BURST_FAILS} failed logins of one account in a window are one audit row for it (and one for the IP), however many follow`, async () => {
    const [m] = await ctx.createMembers(1);
    const [{ email }] = await ctx.sql<Array<{ email: string }>>`SELECT email FROM users WHERE id = ${m.id}`;
    const ip = `192.0.2.${Math.floor(Math.random() * 200) + 20}`;
    for (let i = 0; i < LOGIN_BURST_FAILS + 3; i++) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        remoteAddress: '127.0.0.1',
        headers: { 'x-forwarded-for': ip, 'user-agent': 'guesser/0.1' },
        payload: { email, password: `wrong-${i}` },
      });
      expectError(res, 401, 'INVALID_CREDENTIALS');
    }
    const rows = await ctx.sql`
      SELECT actor_id, target_type, target_id, ip, user_agent, request_id, data FROM audit_log
      WHERE action = 'security.login_failed_burst' AND (target_id = ${email} OR target_id = ${ip}) ORDER BY target_type`;
    expect(rows.map((r) => r.target_type)).toEqual(['login_account', 'login_ip']);
    for (const r of rows) {
      expect(r).toMatchObject({ actor_id: null, ip, user_agent: 'guesser/0.1', data: { failures: LOGIN_BURST_FAILS } });
      expect(r.request_id).toEqual(expect.any(String));
    }
    // the next window is a new burst
    const later = Date.now() + LOGIN_BURST_WINDOW_MS;
    const ctxOf = { ...SYSTEM_CONTEXT, ip: '192.0.2.250' };
    const completed = [];
    for (let i = 0; i < LOGIN_BURST_FAILS; i++) completed.push(...(await ctx.app.loginBursts.failed(email, ctxOf, later)));
    expect(completed).toEqual(['account', 'ip']);
    const [{ n }] = await ctx.sql`SELECT count(*)::int AS n FROM audit_log WHERE action = 'security.login_failed_burst' AND target_id = ${email}`;
    expect(n).toBe(2);
  });

  it('fewer failures than the threshold write nothing', async () => {
    const email = `nobody-${key()}@test.local`;
    for (let i = 0; i < LOGIN_BURST_FAILS - 1; i++) {
      expectError(await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: 'nope' } }), 401, 'INVALID_CREDENTIALS');
    }
    expect(await ctx.sql`SELECT 1 FROM audit_log WHERE target_id = ${email}`).toHaveLength(0);
  });
});

describe('GET /v1/admin/audit', () => {
  it('filters by actor, action and time, and pages by id descending without duplicates or gaps', async () => {
    const [actor] = await ctx.createMembers(1, { role: 'admin' });
    const ctxOf = { actorId: actor.id, ip: '203.0.113.1', userAgent: 'seed', requestId: null };
    for (let i = 0; i < 23; i++) {
      await recordAudit(ctx.sql, { action: i % 2 ? 'probe.odd' : 'probe.even', targetType: 'probe', targetId: i, data: { i } }, ctxOf);
    }
    const ids = (await ctx.sql<Array<{ id: number }>>`SELECT id FROM audit_log WHERE actor_id = ${actor.id} ORDER BY id DESC`).map((r) => Number(r.id));
    expect(ids).toHaveLength(23);

    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await query(`?actor=${actor.id}&limit=5${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      seen.push(...body.items.map((r: { id: number; actorId: number; ip: string }) => {
        expect(r.actorId).toBe(actor.id);
        expect(r.ip).toBe('203.0.113.1');
        return r.id;
      }));
      cursor = body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(5);
    expect(seen).toEqual(ids);

    const odd = (await query(`?actor=${actor.id}&action=probe.odd&limit=100`)).json();
    expect(odd.items).toHaveLength(11);
    expect(odd.items.every((r: { action: string }) => r.action === 'probe.odd')).toBe(true);
    expect(odd.nextCursor).toBeNull();

    const future = new Date(Date.now() + 3_600_000).toISOString();
    const past = new Date(Date.now() - 3_600_000).toISOString();
    expect((await query(`?actor=${actor.id}&from=${future}`)).json().items).toHaveLength(0);
    expect((await query(`?actor=${actor.id}&from=${past}&to=${future}&limit=100`)).json().items).toHaveLength(23);
    expect((await query(`?actor=${actor.id}&to=${past}`)).json().items).toHaveLength(0);
  });

  it('lists rows without a user under actor=system', async () => {
    await recordAudit(ctx.sql, { action: 'probe.system', targetType: 'probe', targetId: 'sys' });
    const body = (await query('?actor=system&action=probe.system')).json();
    expect(body.items).toHaveLength(1);
    expect(body.items[0]).toMatchObject({ actorId: null, ip: null, userAgent: null, requestId: null });
  });

  it('answers bad parameters with 400 VALIDATION_FAILED', async () => {
    const now = new Date().toISOString();
    for (const qs of ['?actor=abc', '?actor=0', '?limit=0', '?limit=1000', '?from=yesterday', `?from=${now}&to=${now}`, '?cursor=%25%25', '?cursor=bm9wZQ', '?extra=1']) {
      expectError(await query(qs), 400, 'VALIDATION_FAILED');
    }
  });

  it('is for admins only', async () => {
    const [m] = await ctx.createMembers(1);
    expectError(await ctx.app.inject({ url: '/v1/admin/audit' }), 401, 'UNAUTHORIZED');
    expectError(await query('', m.token), 403, 'FORBIDDEN');
  });
});

describe('retention', () => {
  it('deletes only rows older than the retention, in bounded batches', async () => {
    const tag = key();
    await ctx.sql`
      INSERT INTO audit_log (action, target_type, target_id, created_at)
      SELECT 'probe.retention', 'probe', ${tag} || ':' || n, now() - make_interval(days => d)
      FROM generate_series(1, 8) AS n, LATERAL (SELECT CASE WHEN n <= 5 THEN 91 ELSE 89 END AS d) AS x`;
    // two statements of two rows at most: four of the five old rows go, the next run takes the last
    expect(await ctx.app.audit.purgeOlderThan(90, 2, 2)).toBe(4);
    expect(await ctx.app.audit.purgeOlderThan(90, 2, 2)).toBe(1);
    expect(await ctx.app.audit.purgeOlderThan(90)).toBe(0);
    const left = await ctx.sql`SELECT target_id FROM audit_log WHERE target_id LIKE ${`${tag}:%`} ORDER BY target_id`;
    expect(left.map((r) => r.target_id)).toEqual([`${tag}:6`, `${tag}:7`, `${tag}:8`]);
    // a shorter retention reaches them
    expect(await ctx.app.audit.purgeOlderThan(30)).toBe(3);
  });
});
