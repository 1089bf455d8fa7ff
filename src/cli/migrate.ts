/**
 * npm run migrate: creates the database if needed, applies drizzle/ migrations, and makes sure
 * the admin from ADMIN_EMAIL/ADMIN_PASSWORD exists (what `npm start` does before it runs the
 * processes, for deployments that run the API and workers apart).
 */
import { loadEnv } from '../config/env.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { ensureAdminFromEnv } from './admin-bootstrap.ts';
import { checkPostgres, oneLineErrors } from './preflight.ts';

await oneLineErrors(async () => {
  const env = loadEnv();
  await checkPostgres(env);
  await migrateDatabase(env.DATABASE_URL);
  console.log('migrations applied');
  await ensureAdminFromEnv(env);
});
