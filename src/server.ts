/**
 * Starts the API: API_PROCESSES copies of the app on one port (node:cluster). SIGTERM/SIGINT
 * close each app gracefully: in-flight requests finish, new ones are refused.
 */
import cluster from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import { loadEnv } from './config/env.ts';
import { onShutdown } from './shutdown.ts';
import { serveClusterMetrics } from './metrics/cluster.ts';

const env = loadEnv();

if (env.API_PROCESSES > 1 && cluster.isPrimary) {
  // /metrics, answered by any process, sums every process's own metrics through the primary
  serveClusterMetrics();
  for (let i = 0; i < env.API_PROCESSES; i++) cluster.fork();
  let stopping = false;
  cluster.on('exit', (worker, code) => {
    if (!stopping) {
      console.error(`api process ${worker.process.pid} exited (${code}); restarting`);
      cluster.fork();
    }
  });
  onShutdown(async () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const check = () => (Object.keys(cluster.workers ?? {}).length === 0 ? resolve() : setTimeout(check, 50));
      check();
    });
  });
} else {
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
