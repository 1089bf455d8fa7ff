/**
 * npm run migrate: creates the database if needed and applies drizzle/ migrations.
 */
import { loadEnv } from '../config/env.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { checkPostgres, oneLineErrors } from './preflight.ts';

await oneLineErrors(async () => {
  const env = loadEnv();
  await checkPostgres(env);
  await migrateDatabase(env.DATABASE_URL);
  console.log('migrations applied');
});
