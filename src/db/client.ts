/**
 * Postgres connection (postgres.js). Queries are SQL written against src/db/schema.ts (the drizzle
 * schema that generates the migrations). drizzle's postgres-js driver rewrites the client's date
 * parsers, so the migrator gets its own connection (src/db/migrate.ts) and this one stays plain.
 */
import postgres from 'postgres';
import { EnvSchema, type Env } from '../config/env.ts';

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

export type DbTimeouts = Pick<Env, 'DATABASE_STATEMENT_TIMEOUT_MS' | 'DATABASE_LOCK_TIMEOUT_MS'>;

const DEFAULT_TIMEOUTS: DbTimeouts = {
  DATABASE_STATEMENT_TIMEOUT_MS: EnvSchema.properties.DATABASE_STATEMENT_TIMEOUT_MS.default,
  DATABASE_LOCK_TIMEOUT_MS: EnvSchema.properties.DATABASE_LOCK_TIMEOUT_MS.default,
};

export function createDb(url: string, max = 10, timeouts: DbTimeouts = DEFAULT_TIMEOUTS) {
  const sql = postgres(url, {
    max,
    onnotice: () => {},
    // Sent in the startup message, so every connection of the pool (reconnects included) carries
    // them: a query stuck behind a lock or a runaway plan fails (55P03 / 57014, answered 503 by the
    // API, retried by BullMQ in the workers) instead of holding a pool slot and its caller forever.
    connection: {
      statement_timeout: timeouts.DATABASE_STATEMENT_TIMEOUT_MS,
      lock_timeout: timeouts.DATABASE_LOCK_TIMEOUT_MS,
    },
    // int8 columns hold points and ids well inside 2^53: read them as numbers, not strings
    types: {
      bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
    },
    transform: { undefined: null },
    // Reconnect delay after a failed connection: postgres.js grows it (shared by the pool, reset
    // only by a successful connect) up to 20 s, so after an outage of a few seconds every query
    // waited up to 20 s for the next attempt — API reads hung instead of failing, and persist
    // workers resumed up to 20 s after Postgres was back. Capped at 1 s: BullMQ's job backoff is
    // the retry policy for the workers, and a refused API read answers 503 at once.
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 1),
  });
  return { sql, close: () => sql.end({ timeout: 5 }) };
}

export type DbHandle = ReturnType<typeof createDb>;
