/**
 * A private redis-server for tests that crash, restore or starve Redis: its own loopback port
 * and data directory, started and killed (-9) by the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  start(): Promise<void>;
  kill9(): Promise<void>;
  /** Kills the server and removes its data directory. */
  destroy(): Promise<void>;
}

export async function redisServer(args: string[]): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pm-redis-'));
  let proc: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...args], {
        stdio: 'ignore',
      });
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => {});
      const deadline = Date.now() + 15_000;
      for (;;) {
        try {
          await probe.connect();
          // a server still loading its data set answers LOADING: wait for real readiness
          if ((await probe.ping()) === 'PONG') break;
        } catch {
          probe.disconnect();
        }
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
      probe.disconnect();
    },
    async kill9() {
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const p = proc;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    },
    async destroy() {
      await server.kill9();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
