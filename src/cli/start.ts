/**
 * npm start: checks Redis and Postgres, applies migrations, makes sure the admin from
 * ADMIN_EMAIL/ADMIN_PASSWORD exists, then runs the API and the workers as child processes.
 * SIGTERM/SIGINT stop both gracefully; if either exits, the other is stopped too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEnv } from '../config/env.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { ensureAdminFromEnv } from './admin-bootstrap.ts';
import { checkPostgres, checkRedis, oneLineErrors } from './preflight.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

await oneLineErrors(async () => {
  const env = loadEnv();
  await checkRedis(env);
  await checkPostgres(env);
  await migrateDatabase(env.DATABASE_URL);
  await ensureAdminFromEnv(env);
});

const children: ChildProcess[] = [];
let stopping = false;
const run = (script: string, args: string[] = []) => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, script), ...args], {
    stdio: 'inherit',
    env: process.env,
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`points-mall: ${script} exited (${signal ?? code}); stopping`);
      stop(1);
    }
  });
  children.push(child);
};

function stop(code: number) {
  if (stopping) return;
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  let left = children.length;
  for (const c of children) c.once('exit', () => --left === 0 && process.exit(code));
  setTimeout(() => process.exit(code), 30_000).unref();
}

process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));

run('src/server.ts');
run('workers/main.ts');
