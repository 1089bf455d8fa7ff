/**
 * npm start: checks Redis and Postgres, applies migrations, makes sure the admin from
 * ADMIN_EMAIL/ADMIN_PASSWORD exists, then runs the API and the workers as child processes.
 *
 * Stopping: SIGTERM, SIGINT or SIGHUP to this process is forwarded once (as SIGTERM) to both
 * children, which shut down gracefully; it exits when both have, 0 if both exited 0. A child
 * still running after STOP_GRACE_MS is killed, as is every child on a second signal (one more
 * than a second after the first). If either child exits, the other is stopped too; if this
 * process's parent disappears (npm or a supervisor killed), it stops as if signalled. The
 * children run in their own process group, so a terminal's Ctrl-C reaches only this process and
 * each child gets one signal, not two (a second one forces their exit); they stop on their own if
 * this process is killed outright (src/cli/exit-with-parent.ts).
 *
 * package.json runs it as `exec node --import tsx src/cli/start.ts`: npm forwards its signals to
 * its child, and without `exec` that child is a shell that dies of the signal without passing it on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { API_NODE_FLAGS } from '../api-flags.ts';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEnv } from '../config/env.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { ensureAdminFromEnv } from './admin-bootstrap.ts';
import { API_BUNDLE, bundleApi, EXIT_WITH_PARENT_BUNDLE } from './bundle.ts';
import { checkPostgres, checkRedis, oneLineErrors } from './preflight.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Longer than the API's and the workers' own graceful shutdown (in-flight requests and jobs). */
const STOP_GRACE_MS = 30_000;
const SAME_SIGNAL_MS = 1000;

await oneLineErrors(async () => {
  const env = loadEnv();
  await checkRedis(env);
  await checkPostgres(env);
  await migrateDatabase(env.DATABASE_URL);
  await ensureAdminFromEnv(env);
});
// the API runs from its bundle (src/cli/bundle.ts), the workers through tsx
await bundleApi();

const children = new Map<string, ChildProcess>();
let stoppingSince = 0;
let failed = false;

const run = (name: string, args: string[]) => {
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: process.env, detached: true });
  child.on('exit', (code, signal) => {
    if (!stoppingSince) {
      console.error(`points-mall: ${name} exited (${signal ?? code}); stopping`);
      failed = true;
      stop();
    }
    const all = [...children.values()];
    if (all.some((c) => c.exitCode === null && c.signalCode === null)) return;
    console.error(`points-mall: stopped (${[...children].map(([n, c]) => `${n} ${c.signalCode ?? c.exitCode}`).join(', ')})`);
    process.exit(!failed && all.every((c) => c.exitCode === 0) ? 0 : 1);
  });
  children.set(name, child);
};

/** Both children get one SIGTERM and finish what they have in flight. */
function stop() {
  if (stoppingSince) return;
  stoppingSince = Date.now();
  for (const c of children.values()) c.kill('SIGTERM');
  setTimeout(() => {
    console.error(`points-mall: still running after ${STOP_GRACE_MS} ms; killing`);
    kill();
  }, STOP_GRACE_MS).unref();
}

function kill() {
  for (const c of children.values()) c.kill('SIGKILL');
}

/**
 * A second signal means "do not wait" — unless it is a copy of the first: a terminal's Ctrl-C
 * reaches npm and this process together, and npm forwards its copy a moment later.
 */
function onSignal() {
  if (stoppingSince && Date.now() - stoppingSince > SAME_SIGNAL_MS) {
    console.error('points-mall: second signal; killing');
    kill();
  } else {
    stop();
  }
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, onSignal);

const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent && !stoppingSince) {
    console.error('points-mall: parent process exited; stopping');
    stop();
  }
}, 500).unref();

run('api', [...API_NODE_FLAGS, '--import', EXIT_WITH_PARENT_BUNDLE, API_BUNDLE]);
run('workers', ['--import', 'tsx', '--import', join(root, 'src/cli/exit-with-parent.ts'), join(root, 'workers/main.ts')]);
