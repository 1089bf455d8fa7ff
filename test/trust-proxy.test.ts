/**
 * TRUST_PROXY: which X-Forwarded-For entry is the client. Seen through what depends on it: the
 * per-IP rate limit (its Redis key names the address it counted), the allow-list, and whether a
 * caller's X-Request-Id is taken. Requests come from `remoteAddress` (the socket peer) carrying
 * a forged chain: the client writes the left part, each proxy appends the address it saw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from './support/context.ts';
import { scanAll } from './support/scan.ts';

const ALLOWED = '198.51.100.0/24';
let oneHop: TestContext;
let proxyList: TestContext;
let noProxy: TestContext;

beforeAll(async () => {
  const limits = { RATE_LIMIT_MAX: 3, RATE_LIMIT_ALLOWLIST: ALLOWED };
  oneHop = await createTestContext({ ...limits, TRUST_PROXY: '1' });
  proxyList = await createTestContext({ ...limits, TRUST_PROXY: '10.0.0.0/8' });
  noProxy = await createTestContext(limits);
});
afterAll(async () => {
  await Promise.all([oneHop, proxyList, noProxy].map((c) => c?.close()));
});

function get(ctx: TestContext, remoteAddress: string, xff?: string, headers: Record<string, string> = {}) {
  return ctx.app.inject({
    url: '/v1/goods',
    remoteAddress,
    headers: { ...headers, ...(xff === undefined ? {} : { 'x-forwarded-for': xff }) },
  });
}

/** Addresses the per-IP rate limit has counted, from its Redis keys. */
async function counted(ctx: TestContext): Promise<string[]> {
  const keys = await scanAll(ctx.redis, `${ctx.keys.prefix}:rl:ip*`);
  return keys.map((k) => k.slice(`${ctx.keys.prefix}:rl:ip`.length)).sort();
}

async function statuses(n: number, send: (i: number) => Promise<{ statusCode: number }>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await send(i)).statusCode);
  return out;
}

describe('one trusted hop (TRUST_PROXY=1)', () => {
  it('the client is the entry the proxy appended, not the first one the client wrote', async () => {
    const codes = await statuses(4, (i) => get(oneHop, '10.0.0.1', `192.0.2.${i + 1}, 203.0.113.5`));
    expect(codes).toEqual([200, 200, 200, 429]);
    expect(await counted(oneHop)).toEqual(['203.0.113.5']);
    expect((await get(oneHop, '10.0.0.1', '192.0.2.1, 203.0.113.6')).statusCode).toBe(200);
    expect(await counted(oneHop)).toEqual(['203.0.113.5', '203.0.113.6']);
  });

  it('an allow-listed address written by the client does not lift the limit; one appended by the proxy does', async () => {
    const forged = await statuses(4, () => get(oneHop, '10.0.0.1', '198.51.100.7, 203.0.113.20'));
    expect(forged).toEqual([200, 200, 200, 429]);
    const real = await statuses(5, () => get(oneHop, '10.0.0.1', '192.0.2.9, 198.51.100.7'));
    expect(real).toEqual([200, 200, 200, 200, 200]);
  });

  it('takes the proxy\'s X-Request-Id', async () => {
    const res = await get(oneHop, '10.0.0.1', '203.0.113.60', { 'x-request-id': 'edge-req-1' });
    expect(res.headers['x-request-id']).toBe('edge-req-1');
  });
});

describe('trusted proxy addresses (TRUST_PROXY=10.0.0.0/8)', () => {
  it('skips only the hops inside the list', async () => {
    const res = await get(proxyList, '10.0.0.1', '192.0.2.1, 203.0.113.30, 10.0.0.2');
    expect(res.statusCode).toBe(200);
    expect(await counted(proxyList)).toEqual(['203.0.113.30']);
  });

  it('a peer outside the list is the client, whatever it forwards', async () => {
    const codes = await statuses(4, () => get(proxyList, '203.0.113.40', '198.51.100.7'));
    expect(codes).toEqual([200, 200, 200, 429]);
    expect(await counted(proxyList)).toContain('203.0.113.40');
    expect(await counted(proxyList)).not.toContain('198.51.100.7');
  });

  it('takes X-Request-Id from a listed proxy only, and only a short printable one', async () => {
    const fromProxy = await get(proxyList, '10.0.0.1', '203.0.113.61', { 'x-request-id': 'edge-req-2' });
    expect(fromProxy.headers['x-request-id']).toBe('edge-req-2');
    const fromClient = await get(proxyList, '203.0.113.62', undefined, { 'x-request-id': 'edge-req-2' });
    expect(fromClient.headers['x-request-id']).not.toBe('edge-req-2');
    const tooLong = await get(proxyList, '10.0.0.1', '203.0.113.63', { 'x-request-id': 'x'.repeat(129) });
    expect(tooLong.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('no proxy (TRUST_PROXY=false, the default)', () => {
  it('ignores X-Forwarded-For and X-Request-Id', async () => {
    const codes = await statuses(4, () => get(noProxy, '203.0.113.50', '198.51.100.7', { 'x-request-id': 'mine' }));
    expect(codes).toEqual([200, 200, 200, 429]);
    expect(await counted(noProxy)).toEqual(['203.0.113.50']);
    const res = await get(noProxy, '203.0.113.51', undefined, { 'x-request-id': 'mine' });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
