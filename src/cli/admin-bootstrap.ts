/**
 * The admin bootstrap: when ADMIN_EMAIL and ADMIN_PASSWORD are set, that admin exists afterwards.
 */
import { AuthService } from '../auth/service.ts';
import type { Env } from '../config/env.ts';
import { createDb } from '../db/client.ts';
import { PreflightError } from './preflight.ts';

export async function ensureAdminFromEnv(env: Env): Promise<void> {
  if (!env.ADMIN_EMAIL || !env.ADMIN_PASSWORD) return;
  const db = createDb(env.DATABASE_URL, 1, env);
  try {
    const admin = await new AuthService(db.sql)
      .ensureAdmin(env.ADMIN_USERNAME, env.ADMIN_EMAIL, env.ADMIN_PASSWORD)
      .catch((err: { code?: string; constraint_name?: string }) => {
        if (err.code === '23505' && err.constraint_name === 'users_username_key') {
          throw new PreflightError(
            `ADMIN_USERNAME "${env.ADMIN_USERNAME}" belongs to another account than ${env.ADMIN_EMAIL}: set ADMIN_USERNAME`,
          );
        }
        throw err;
      });
    console.log(`admin ready: ${admin.email} (id ${admin.id})`);
  } finally {
    await db.close();
  }
}
