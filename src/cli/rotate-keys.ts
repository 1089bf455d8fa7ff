/**
 * npm run rotate-keys: seals every receiver envelope not under the current key (the first of
 * ENCRYPTION_KEYS) again with it, for every column listed in ENCRYPTED_COLUMNS
 * (src/crypto/rotation.ts). Run it after putting a new key first; once it reports nothing failed,
 * the old key can leave ENCRYPTION_KEYS. Safe to run again and while the API runs. Exits 1 if any
 * value could not be opened (listed by table, row id and column). Each run is an audit row
 * (security.key_rotation, actor null).
 */
import { loadEnv } from '../config/env.ts';
import { parseEncryptionKeys } from '../crypto/keyring.ts';
import { ReceiverCipher } from '../crypto/receiver.ts';
import { ENCRYPTED_COLUMNS, rotateEnvelopes } from '../crypto/rotation.ts';
import { createDb } from '../db/client.ts';
import { recordAudit } from '../audit/log.ts';
import { checkPostgres, oneLineErrors } from './preflight.ts';

await oneLineErrors(async () => {
  const env = loadEnv();
  await checkPostgres(env);
  const cipher = new ReceiverCipher(parseEncryptionKeys(env.ENCRYPTION_KEYS));
  const db = createDb(env.DATABASE_URL, 2, env);
  try {
    const reports = await rotateEnvelopes(db.sql, cipher, ENCRYPTED_COLUMNS);
    // a security event: who ran it is the operator's shell, so the actor is the system's (null)
    await recordAudit(db.sql, {
      action: 'security.key_rotation',
      targetType: 'encryption_key',
      targetId: cipher.currentKid,
      data: { by: 'cli', tables: reports.map((r) => ({ table: r.table, rows: r.rows, values: r.values, failed: r.failed.length })) },
    });
    console.log(`rotate-keys: current key "${cipher.currentKid}"; ${reports.length} table(s) listed`);
    for (const r of reports) {
      console.log(`${r.table}: ${r.values} value(s) in ${r.rows} row(s) sealed again; ${r.failed.length} could not be opened`);
      for (const f of r.failed) console.log(`  ${r.table} ${f.id} ${f.column}: ${f.problem}`);
    }
    if (reports.some((r) => r.failed.length > 0)) process.exitCode = 1;
  } finally {
    await db.close();
  }
});
