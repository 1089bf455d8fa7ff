/**
 * Scans every table of the test database for plaintext fragments: each row of each table in the
 * public schema as text (`row::text`, every column), case-insensitive. For the tests of anything
 * that stores receiver info (orders included): write through the real path, then call this with
 * distinctive pieces of the name, phone and address.
 */
import { expect } from 'vitest';
import type { Sql } from '../../src/db/client.ts';

export async function expectNoPlaintext(sql: Sql, fragments: string[]): Promise<void> {
  const tables = await sql<Array<{ name: string }>>`
    SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`;
  const found: string[] = [];
  for (const { name } of tables) {
    for (const fragment of fragments) {
      const [{ n }] = await sql<Array<{ n: number }>>`
        SELECT count(*)::int AS n FROM ${sql(name)} t WHERE t::text ILIKE ${`%${fragment}%`}`;
      if (n > 0) found.push(`${name}: ${n} row(s) hold "${fragment}"`);
    }
  }
  expect(found, 'plaintext fragments in the database').toEqual([]);
}
