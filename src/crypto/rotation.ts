/**
 * Key rotation of receiver info at rest (`npm run rotate-keys`): every envelope in the listed
 * columns that is not sealed with the current key (the first of ENCRYPTION_KEYS) is opened with
 * its own key and sealed again with the current one, in batches, each value replaced only if it is
 * still the one read (compare-and-set), so a concurrent write is never overwritten. Running it
 * again finds nothing to do. An envelope that does not open (altered, or its key gone from
 * ENCRYPTION_KEYS), or a value that is no envelope at all, is reported by table, row id and column
 * — never by value — and left as it is.
 */
import type { Sql } from '../db/client.ts';
import { EnvelopeError, type ReceiverCipher } from './receiver.ts';

/** Columns holding envelopes: `aadColumn` holds the order id each was sealed with. */
export interface RotationTarget {
  table: string;
  idColumn: string;
  columns: string[];
  aadColumn: string;
}

/** Every column of the schema that holds receiver envelopes; each table that stores some adds itself. */
export const ENCRYPTED_COLUMNS: RotationTarget[] = [
  // the receiver of an order: one envelope of {name, phone, address} (src/orders/receiver.ts)
  { table: 'orders', idColumn: 'id', columns: ['receiver'], aadColumn: 'id' },
];

export interface RotationFailure {
  id: string;
  column: string;
  problem: string;
}

export interface RotationReport {
  table: string;
  /** rows with at least one value sealed again */
  rows: number;
  /** values sealed again with the current key */
  values: number;
  failed: RotationFailure[];
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

export async function rotateEnvelopes(
  sql: Sql,
  cipher: ReceiverCipher,
  targets: RotationTarget[],
  o: { batch?: number } = {},
): Promise<RotationReport[]> {
  const reports: RotationReport[] = [];
  for (const t of targets) reports.push(await rotateTable(sql, cipher, t, o.batch ?? 500));
  return reports;
}

async function rotateTable(sql: Sql, cipher: ReceiverCipher, t: RotationTarget, batch: number): Promise<RotationReport> {
  for (const name of [t.table, t.idColumn, t.aadColumn, ...t.columns]) {
    if (!IDENTIFIER.test(name)) throw new Error(`rotate-keys: "${name}" is not a plain lower-case SQL identifier`);
  }
  const report: RotationReport = { table: t.table, rows: 0, values: 0, failed: [] };
  const current = `v1.${cipher.currentKid}.%`;
  const stale = t.columns.map((c) => sql`(${sql(c)} IS NOT NULL AND ${sql(c)} NOT LIKE ${current})`);
  const anyStale = stale.reduce((a, b) => sql`${a} OR ${b}`);
  // rows sealed again drop out of the query; the ones that failed are skipped by id
  const skipped: string[] = [];
  for (;;) {
    const rows = await sql<Array<Record<string, unknown>>>`
      SELECT ${sql(t.idColumn)} AS "__id", ${sql(t.idColumn)}::text AS "__idText", ${sql(t.aadColumn)}::text AS "__aad", ${sql(t.columns)}
      FROM ${sql(t.table)}
      WHERE (${anyStale}) AND NOT (${sql(t.idColumn)}::text = ANY(${skipped}::text[]))
      ORDER BY ${sql(t.idColumn)} LIMIT ${batch}`;
    if (rows.length === 0) break;
    await sql.begin(async (tx) => {
      for (const row of rows) {
        const id = String(row.__idText);
        let rotated = 0;
        for (const column of t.columns) {
          const old = row[column];
          if (typeof old !== 'string' || cipher.isCurrent(old)) continue;
          let sealed: string;
          try {
            sealed = cipher.encrypt(cipher.decrypt(old, String(row.__aad)), String(row.__aad));
          } catch (err) {
            // neither kind of error carries the value (src/crypto/receiver.ts)
            report.failed.push({ id, column, problem: err instanceof EnvelopeError ? err.problem : (err as Error).message });
            continue;
          }
          const updated = await tx`
            UPDATE ${sql(t.table)} SET ${sql(column)} = ${sealed}
            WHERE ${sql(t.idColumn)} = ${row.__id as string} AND ${sql(column)} = ${old}`;
          rotated += updated.count;
        }
        if (rotated > 0) {
          report.rows++;
          report.values += rotated;
        }
        if (report.failed.some((f) => f.id === id)) skipped.push(id);
      }
    });
  }
  return report;
}
