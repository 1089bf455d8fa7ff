/**
 * Postgres bounds: every connection carries statement_timeout and lock_timeout, so a query that
 * runs too long or waits too long on a lock fails instead of hanging; an API read that hits either
 * answers 503 SERVICE_UNAVAILABLE with Retry-After, not 500 and not a hung request.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { createDb } from '../../src/db/client.ts';
import { createTestContext, envFor, type TestContext } from '../support/context.ts';
import { sleep } from '../crash/procs.ts';

const STATEMENT_MS = 500;
const LOCK_MS = 200;

let ctx: TestContext;
/** Same database, a long statement timeout and a short lock timeout: lock waits end first. */
let lockApp: FastifyInstance;
beforeAll(async () => {
  ctx = await createTestContext({ DATABASE_STATEMENT_TIMEOUT_MS: STATEMENT_MS, DATABASE_LOCK_TIMEOUT_MS: 10_000 });
  lockApp = await buildApp(
    envFor(ctx.dbName, ctx.env.REDIS_PREFIX, {
      DATABASE_STATEMENT_TIMEOUT_MS: 10_000,
      DATABASE_LOCK_TIMEOUT_MS: LOCK_MS,
      JWT_SECRET: ctx.env.JWT_SECRET,
    }),
    { logger: false },
  );
});
afterAll(async () => {
  await lockApp?.close();
  await ctx?.close();
});

/**
 * Holds an ACCESS EXCLUSIVE lock on a table from another connection for `holdMs` (released then
 * whatever happens, so code without timeouts fails its assertions instead of hanging the test).
 */
async function holdTableLock(table: string, holdMs: number): Promise<{ released: Promise<unknown> }> {
  let locked!: () => void;
  const ready = new Promise<void>((r) => (locked = r));
  const held = ctx.sql.begin(async (tx) => {
    await tx.unsafe(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    locked();
    await sleep(holdMs);
  });
  await ready;
  return { released: held };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - t };
}

describe('Postgres timeouts', () => {
  it('cancels a statement that runs past DATABASE_STATEMENT_TIMEOUT_MS', async () => {
    const { value: err, ms } = await timed(() => ctx.app.sql`SELECT pg_sleep(3)`.then(() => null, (e: unknown) => e));
    expect((err as { code?: string } | null)?.code).toBe('57014');
    expect(ms).toBeLessThan(2000);
  });

  it('fails a lock wait past DATABASE_LOCK_TIMEOUT_MS, long before the statement timeout', async () => {
    const db = createDb(ctx.env.DATABASE_URL, 1, { DATABASE_STATEMENT_TIMEOUT_MS: 10_000, DATABASE_LOCK_TIMEOUT_MS: LOCK_MS });
    const held = await holdTableLock('goods', 3000);
    try {
      const { value: err, ms } = await timed(() => db.sql`SELECT count(*) FROM goods`.then(() => null, (e: unknown) => e));
      expect((err as { code?: string } | null)?.code).toBe('55P03');
      expect(ms).toBeLessThan(1500);
    } finally {
      await held.released;
      await db.close();
    }
  });

  it('answers an API read cancelled by the statement timeout with 503 and Retry-After', async () => {
    const [m] = await ctx.createMembers(1);
    const held = await holdTableLock('ledger_entries', 3000);
    try {
      const { value: res, ms } = await timed(() =>
        ctx.app.inject({ url: '/v1/me/ledger', headers: { authorization: `Bearer ${m.token}` } }),
      );
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('SERVICE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBe('1');
      expect(ms).toBeLessThan(2000);
    } finally {
      await held.released;
    }
    const after = await ctx.app.inject({ url: '/v1/me/ledger', headers: { authorization: `Bearer ${m.token}` } });
    expect(after.statusCode).toBe(200);
  });

  it('answers an API read that gave up waiting for a lock with 503 and Retry-After', async () => {
    const [m] = await ctx.createMembers(1);
    const held = await holdTableLock('redemptions', 3000);
    try {
      const { value: res, ms } = await timed(() =>
        lockApp.inject({ url: '/v1/me/redemptions', headers: { authorization: `Bearer ${m.token}` } }),
      );
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE', requestId: expect.any(String) });
      expect(res.headers['retry-after']).toBe('1');
      expect(ms).toBeLessThan(1500);
    } finally {
      await held.released;
    }
  });

  it('sets both timeouts on every connection of the pool', async () => {
    const db = createDb(ctx.env.DATABASE_URL, 3, { DATABASE_STATEMENT_TIMEOUT_MS: 1234, DATABASE_LOCK_TIMEOUT_MS: 321 });
    try {
      const rows = await Promise.all(
        [0, 1, 2].map(() => db.sql.begin(async (tx) => {
          await tx`SELECT pg_sleep(0.05)`;
          return tx<Array<{ s: string; l: string; pid: number }>>`
            SELECT current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l, pg_backend_pid() AS pid`;
        })),
      );
      expect(new Set(rows.map(([r]) => r.pid)).size).toBe(3);
      for (const [r] of rows) expect(r).toMatchObject({ s: '1234ms', l: '321ms' });
    } finally {
      await db.close();
    }
  });
});
