/**
 * npm run openapi [-- <file>]: writes the OpenAPI document the app generates (what /docs/json
 * serves) as JSON, to <file> or a temp file. With --lint (npm run lint:openapi) it then runs
 * `redocly lint` on it with the repository's redocly.yaml and exits with its status.
 *
 * Building the app needs Redis and Postgres (the same as `npm start`); it runs against a scratch
 * database and key prefix, both removed afterwards, so the deployment's own data is never touched.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { buildApp } from '../app.ts';
import { loadEnv } from '../config/env.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { createRedis } from '../redis/client.ts';
import { deleteKeys } from '../redis/delete-prefix.ts';
import { checkPostgres, checkRedis, oneLineErrors } from './preflight.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values, positionals } = parseArgs({ options: { lint: { type: 'boolean', default: false } }, allowPositionals: true });

let status = 0;
await oneLineErrors(async () => {
  const base = loadEnv();
  await checkRedis(base);
  await checkPostgres(base);
  const tag = `${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;
  const scratch = new URL(base.DATABASE_URL);
  scratch.pathname = `/pm_openapi_${tag}`;
  const prefix = `pmopenapi${tag.replace('_', '')}`;
  const env = loadEnv({}, { NODE_ENV: 'development', LOG_LEVEL: 'silent', REDIS_URL: base.REDIS_URL, REDIS_CLUSTER_NODES: base.REDIS_CLUSTER_NODES, DATABASE_URL: scratch.toString(), REDIS_PREFIX: prefix });
  const file = positionals[0] ?? join(mkdtempSync(join(tmpdir(), 'pm-openapi-')), 'openapi.json');
  try {
    await migrateDatabase(env.DATABASE_URL);
    const app = await buildApp(env, { logger: false });
    try {
      writeFileSync(file, `${JSON.stringify(app.swagger(), null, 2)}\n`);
    } finally {
      await app.close();
    }
  } finally {
    const redis = createRedis(env, 'worker');
    await deleteKeys(redis, prefix).finally(() => redis.disconnect());
    const admin = new URL(base.DATABASE_URL);
    admin.pathname = '/postgres';
    const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
    await sql.unsafe(`DROP DATABASE IF EXISTS "pm_openapi_${tag}" WITH (FORCE)`).finally(() => sql.end({ timeout: 5 }));
  }
  console.log(`OpenAPI document written to ${file}`);
  if (values.lint) {
    try {
      execFileSync(join(ROOT, 'node_modules', '.bin', 'redocly'), ['lint', '--config', join(ROOT, 'redocly.yaml'), file], { stdio: 'inherit', cwd: ROOT });
    } catch (err) {
      status = (err as { status?: number }).status ?? 1;
    }
  }
});
process.exitCode = status || process.exitCode;
