/**
 * Starts the API: API_PROCESSES copies of the app on one port (node:cluster). SIGTERM/SIGINT
 * close each app gracefully: in-flight requests finish, new ones are refused.
 */
import cluster from 'node:cluster';
import { buildApp } from './app.ts';
import { loadEnv } from './config/env.ts';
import { onShutdown } from './shutdown.ts';

const env = loadEnv();

if (env.API_PROCESSES > 1 && cluster.isPrimary) {
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
  onShutdown(() => app.close());
  await app.listen({ host: env.HOST, port: env.PORT });
}
