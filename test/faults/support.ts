/**
 * Fault-injection helpers: a private redis-server (so a test can starve it of memory without
 * touching the shared one), a TCP proxy to Postgres that can be cut and restored, a snapshot of
 * every Redis key under a prefix (to prove a failed write changed nothing), and a small HTTP
 * client over node:http whose errors keep their socket error codes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { RedisClient } from '../../src/redis/client.ts';
import { freePort, sleep } from '../crash/procs.ts';
import { isStatisticsKey, scanAll } from '../support/scan.ts';

// ---------------------------------------------------------------- private redis-server

export interface PrivateRedis {
  port: number;
  url: string;
  /** A plain admin connection (CONFIG, INFO). */
  admin: Redis;
  maxmemory: number;
  /** true: maxmemory below used memory, so every command that may grow memory is refused. */
  setOom(on: boolean): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrivateRedis(maxmemory = 256 * 1024 * 1024): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pm-fault-redis-'));
  const proc: ChildProcess = spawn(
    'redis-server',
    [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--maxmemory-policy', 'noeviction', '--maxmemory', String(maxmemory),
    ],
    { stdio: 'ignore' },
  );
  const killProc = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  process.once('exit', killProc);
  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if (admin.status !== 'ready') await admin.connect();
      if ((await admin.ping()) === 'PONG') break;
    } catch {
      admin.disconnect();
    }
    if (proc.exitCode !== null) throw new Error(`redis-server on ${port} exited (${proc.exitCode})`);
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
    await sleep(50);
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    admin,
    maxmemory,
    async setOom(on) {
      await admin.config('SET', 'maxmemory', on ? '1' : String(maxmemory));
    },
    async stop() {
      admin.disconnect();
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = once(proc, 'exit');
        proc.kill('SIGKILL');
        await Promise.race([gone, sleep(5000)]);
      }
      process.off('exit', killProc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- Redis snapshot

export type Snapshot = Record<string, unknown>;

/**
 * Every key under `prefix` (minus the excluded sub-prefixes and statistics) with its full value,
 * key names relative to the prefix. TTLs are reduced to "has one"; stream entries to their fields (ids
 * differ between twins), plus each consumer group's pending count.
 */
export async function snapshotRedis(redis: RedisClient, prefix: string, exclude: string[] = []): Promise<Snapshot> {
  const names = (await scanAll(redis, `${prefix}:*`)).filter(
    (k) => !isStatisticsKey(k) && !exclude.some((e) => k.startsWith(`${prefix}:${e}`)),
  );
  const out: Snapshot = {};
  for (const key of names.sort()) {
    const type = await redis.type(key);
    let value: unknown;
    switch (type) {
      case 'string':
        value = await redis.get(key);
        break;
      case 'hash':
        value = Object.fromEntries(Object.entries(await redis.hgetall(key)).sort(([a], [b]) => (a < b ? -1 : 1)));
        break;
      case 'zset':
        value = await redis.zrange(key, 0, -1, 'WITHSCORES');
        break;
      case 'set':
        value = (await redis.smembers(key)).sort();
        break;
      case 'list':
        value = await redis.lrange(key, 0, -1);
        break;
      case 'stream': {
        const entries = await redis.xrange(key, '-', '+');
        const groups = (await redis.xinfo('GROUPS', key)) as unknown[][];
        value = {
          entries: entries.map(([, fields]) => fields),
          groups: groups.map((g) => {
            const o: Record<string, unknown> = {};
            for (let i = 0; i < g.length; i += 2) o[String(g[i])] = g[i + 1];
            return { name: o.name, pending: o.pending };
          }),
        };
        break;
      }
      case 'none':
        continue;
      default:
        value = `<${type}>`;
    }
    const ttl = await redis.pttl(key);
    out[key.slice(prefix.length + 1)] = { type, ttl: ttl > 0, value };
  }
  return out;
}

// ---------------------------------------------------------------- cuttable TCP proxy

export interface TcpProxy {
  port: number;
  /** Connections accepted so far (including refused ones). */
  accepted: number;
  /** Drops every open connection and resets new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    proxy.accepted++;
    if (down) {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy: TcpProxy = {
    port: (server.address() as { port: number }).port,
    accepted: 0,
    cut() {
      down = true;
      for (const s of open) s.resetAndDestroy();
      open.clear();
    },
    restore() {
      down = false;
    },
    async close() {
      proxy.cut();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return proxy;
}

// ---------------------------------------------------------------- HTTP client

export interface HttpResult {
  status?: number;
  body?: Record<string, unknown>;
  headers?: Record<string, string | string[] | undefined>;
  /** Socket-level failure (ECONNREFUSED, ECONNRESET, ...) when there was no response. */
  error?: string;
  sentAt: number;
  doneAt: number;
}

/** POST/GET JSON with node:http through a keep-alive agent; never throws. */
export function httpJson(
  agent: Agent,
  port: number,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string>,
  body?: unknown,
  timeoutMs = 20_000,
): Promise<HttpResult> {
  const sentAt = Date.now();
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: { ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: Record<string, unknown> | undefined;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode, body: parsed, headers: res.headers, sentAt, doneAt: Date.now() });
        });
        res.on('error', (err: NodeJS.ErrnoException) =>
          resolve({ status: res.statusCode, error: `mid-response: ${err.code ?? err.message}`, sentAt, doneAt: Date.now() }),
        );
        res.on('aborted', () => resolve({ status: res.statusCode, error: 'mid-response: aborted', sentAt, doneAt: Date.now() }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message, sentAt, doneAt: Date.now() }));
    req.end(payload);
  });
}
