/**
 * Postgres connection (postgres.js). Queries are SQL written against src/db/schema.ts (the drizzle
 * schema that generates the migrations). drizzle's postgres-js driver rewrites the client's date
 * parsers, so the migrator gets its own connection (src/db/migrate.ts) and this one stays plain.
 */
import postgres from 'postgres';

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

export function createDb(url: string, max = 10) {
  const sql = postgres(url, {
    max,
    onnotice: () => {},
    // int8 columns hold points and ids well inside 2^53: read them as numbers, not strings
    types: {
      bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
    },
    transform: { undefined: null },
  });
  return { sql, close: () => sql.end({ timeout: 5 }) };
}

export type DbHandle = ReturnType<typeof createDb>;
