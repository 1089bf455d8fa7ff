/**
 * Once per run: a migrated template database that every test file clones (CREATE DATABASE …
 * TEMPLATE), so each file gets its own database in milliseconds. The template's name is unique
 * per run, so two runs on one machine do not trip over each other.
 */
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { migrateDatabase } from '../src/db/migrate.ts';
import { PG_ADMIN_URL, dbUrl } from './support/urls.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDb: string;
  }
}

export default async function setup(project: TestProject) {
  const template = `pm_tpl_${Math.floor(Date.now() / 1000)}_${process.pid}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    // leftovers of killed runs (names carry their creation time); younger ones may belong to a
    // run going on right now
    const stale = await admin<Array<{ datname: string }>>`
      SELECT datname FROM pg_database WHERE datname ~ '^pm_(t|tpl)_[0-9]+_[0-9a-f]+$'`;
    const cutoff = Date.now() / 1000 - 3 * 3600;
    for (const { datname } of stale) {
      if (Number(datname.split('_')[2]) < cutoff) await admin.unsafe(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
    await admin.unsafe(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
    await migrateDatabase(dbUrl(template));
  } finally {
    await admin.end();
  }
  project.provide('templateDb', template);
  return async () => {
    const sql = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
    await sql.unsafe(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => {});
    await sql.end();
  };
}
