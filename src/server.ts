/**
 * Starts the API: API_PROCESSES copies of the app on one port (node:cluster). SIGTERM/SIGINT
 * close each app gracefully: in-flight requests finish, new ones are refused.
 */
import cluster from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import { loadEnv } from './config/env.ts';
import { onShutdown } from './shutdown.ts';
import { serveClusterMetrics } from './metrics/cluster.ts';

const env = loadEnv();

/** Processes in a row that may exit before serving, none serving, before the primary gives up (cluster mode). */
const MAX_FAILED_STARTS = 3;

if (env.API_PROCESSES > 1 && cluster.isPrimary) {
  // /metrics, answered by any process, sums every process's own metrics through the primary
  serveClusterMetrics();
  for (let i = 0; i < env.API_PROCESSES; i++) cluster.fork();
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const check = () => (Object.keys(cluster.workers ?? {}).length === 0 ? resolve() : setTimeout(check, 50));
      check();
    });
  };
  // A process that dies before it serves (a database that is not there, a bad setting) would
  // likely die again the same way. It is forked again after a delay that doubles with each such
  // death in a row; when 3 in a row died and no process is serving, the primary stops and exits 1,
  // leaving the restart (and its back-off) to whatever supervises it. While another process
  // serves (a database restarting), the primary keeps trying.
  let failedStarts = 0;
  const serving = new Set<number>();
  cluster.on('listening', (worker) => {
    serving.add(worker.id);
    failedStarts = 0;
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const served = serving.delete(worker.id);
    if (served) {
      console.error(`api process ${worker.process.pid} exited (${signal ?? code}); restarting`);
      cluster.fork();
      return;
    }
    failedStarts++;
    if (failedStarts >= MAX_FAILED_STARTS && serving.size === 0) {
      console.error(`api: ${failedStarts} processes in a row exited before serving (the last: ${signal ?? `code ${code}`}); giving up`);
      void stopAll().then(() => process.exit(1));
      return;
    }
    const delay = Math.min(100 * 2 ** (failedStarts - 1), 10_000);
    console.error(`api process ${worker.process.pid} exited (${signal ?? code}) before serving; restarting in ${delay} ms`);
    setTimeout(() => {
      if (!stopping) cluster.fork();
    }, delay);
  });
  onShutdown(stopAll);
} else {
  // only the processes that serve load the app: the primary forks at once, and holds none of it
  const { buildApp } = await import('./app.ts');
  const app = await buildApp(env);
  onShutdown(() => closeGracefully(app));
  await app.listen({ host: env.HOST, port: env.PORT });
}

/**
 * app.close() stops accepting, lets requests in flight finish, then waits for every connection to
 * end. server.close() reaps only the keep-alive connections idle at that moment: one whose request
 * was in flight is idle only afterwards, and a client (a load balancer) holding it kept the process
 * alive until keepAliveTimeout (72 s). Idle connections are reaped until the close completes.
 */
async function closeGracefully(app: FastifyInstance): Promise<void> {
  const reaper = setInterval(() => app.server.closeIdleConnections(), 100);
  try {
    await app.close();
  } finally {
    clearInterval(reaper);
  }
}
