/**
 * Shared helpers for the API tests: error-body assertions, write snapshots (Redis keys under the
 * file's prefix, per-member account / outbox state, Postgres row counts) and hand-made JWTs.
 */
import { createHmac } from 'node:crypto';
import { expect } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import type { TestContext } from '../support/context.ts';
import { isStatisticsKey, scanAll } from '../support/scan.ts';

export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
  requestId: string;
}

/** The response is the standard error body with this status and code. */
export function expectError(res: LightMyRequestResponse, status: number, code: string): ErrorBody {
  const ctx = `${res.statusCode} ${res.body.slice(0, 300)}`;
  expect(res.statusCode, ctx).toBe(status);
  expect(res.headers['content-type'], ctx).toMatch(/^application\/json/);
  const body = res.json() as ErrorBody;
  expect(body.code, ctx).toBe(code);
  expect(body.statusCode, ctx).toBe(status);
  expect(typeof body.error, ctx).toBe('string');
  expect(body.error.length, ctx).toBeGreaterThan(0);
  expect(typeof body.message, ctx).toBe('string');
  expect(body.message.trim().length, ctx).toBeGreaterThan(0);
  expect(typeof body.requestId, ctx).toBe('string');
  expect(body.requestId.length, ctx).toBeGreaterThan(0);
  expect(res.headers['x-request-id'], ctx).toBe(body.requestId);
  return body;
}

async function scanKeys(ctx: TestContext): Promise<string[]> {
  return (await scanAll(ctx.redis, `${ctx.keys.prefix}:*`)).sort();
}

/**
 * The keys that hold state: every key under the file's prefix but the records the API keeps of
 * answers by design. A wrong password is recorded in the failed-login windows and burst counts
 * (src/auth/attempts.ts, src/audit/security.ts), and the live panel's per-second counts of
 * redemption answers (src/ops/sale-pulse.ts) count refusals too and are flushed on a timer, so
 * an earlier test's answers can land at any moment.
 */
export async function stateKeys(ctx: TestContext): Promise<string[]> {
  return (await scanKeys(ctx)).filter((k) => !k.startsWith(`${ctx.keys.prefix}:auth:login:`) && !isStatisticsKey(k));
}

export const COUNTED_TABLES = [
  'users',
  'point_accounts',
  'point_lots',
  'ledger_entries',
  'goods',
  'redemptions',
  'audit_log',
  'admin_idempotency_keys',
] as const;

export async function rowCounts(ctx: TestContext): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of COUNTED_TABLES) {
    const [{ n }] = await ctx.sql.unsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM ${t}`);
    out[t] = n;
  }
  return out;
}

export interface Snapshot {
  keyCount: number;
  keys: string[];
  members: Record<number, { acct: Record<string, string>; outboxLen: number; lots: number }>;
  goods: Record<number, Record<string, string>>;
  rows: Record<string, number>;
  /** Every goods and account row, so an UPDATE (which changes no count) is caught too. */
  goodsDigest: string;
  accountsDigest: string;
}

/** What the API could have written: Redis under the file's prefix and the Postgres tables. */
export async function snapshot(ctx: TestContext, memberIds: number[], goodsIds: number[] = []): Promise<Snapshot> {
  const keys = await stateKeys(ctx);
  const members: Snapshot['members'] = {};
  for (const id of memberIds) {
    members[id] = {
      acct: await ctx.redis.hgetall(ctx.keys.account(id)),
      outboxLen: await ctx.redis.xlen(ctx.keys.outboxOf(id)),
      lots: await ctx.redis.zcard(ctx.keys.lotsByExpiry(id)),
    };
  }
  const goods: Snapshot['goods'] = {};
  for (const id of goodsIds) goods[id] = await ctx.redis.hgetall(ctx.keys.goods(id));
  const [{ g }] = await ctx.sql<Array<{ g: string | null }>>`
    SELECT md5(string_agg(goods::text, ',' ORDER BY id)) AS g FROM goods`;
  const [{ a }] = await ctx.sql<Array<{ a: string | null }>>`
    SELECT md5(string_agg(point_accounts::text, ',' ORDER BY user_id)) AS a FROM point_accounts`;
  return {
    keyCount: keys.length,
    keys,
    members,
    goods,
    rows: await rowCounts(ctx),
    goodsDigest: g ?? '',
    accountsDigest: a ?? '',
  };
}

// ---- hand-made JWTs ----

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

export function craftToken(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  secret: string | null,
  hmac: 'sha256' | 'sha512' = 'sha256',
): string {
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  if (secret === null) return `${signingInput}.`;
  const sig = createHmac(hmac, secret).update(signingInput).digest('base64url');
  return `${signingInput}.${sig}`;
}

export const nowSec = () => Math.floor(Date.now() / 1000);

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
