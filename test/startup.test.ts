/**
 * Start-up contract: the start command explains an unreachable Redis or Postgres in one line,
 * and nothing starts against a Redis that may evict keys.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { assertNoEviction } from '../src/redis/client.ts';
import { PG_ADMIN_URL, PG_BASE } from './support/urls.ts';

const run = promisify(execFile);
// vitest runs with NODE_ENV=test, where JWT_SECRET and ENCRYPTION_KEYS have no built-in value
const JWT_SECRET = 'startup-test-secret-0123456789abcdef';
const ENCRYPTION_KEYS = `t1:${Buffer.alloc(32, 7).toString('base64')}`;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startCommand(env: Record<string, string>) {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/start.ts'], {
      env: { ...process.env, JWT_SECRET, ENCRYPTION_KEYS, ...env },
      timeout: 30_000,
    });
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

describe('migrate command', () => {
  it('creates the database, applies migrations and bootstraps the admin, idempotently', async () => {
    const name = `pm_t_${Math.floor(Date.now() / 1000)}_${Math.random().toString(16).slice(2, 14).padEnd(12, '0')}`;
    const env = {
      ...process.env,
      JWT_SECRET,
      ENCRYPTION_KEYS,
      DATABASE_URL: `${PG_BASE}/${name}`,
      ADMIN_EMAIL: 'Boss@Example.com',
      ADMIN_USERNAME: 'boss',
      ADMIN_PASSWORD: 'boss-password-1',
    };
    try {
      for (let i = 0; i < 2; i++) {
        const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/migrate.ts'], { env, timeout: 60_000 });
        expect(r.stdout).toMatch(/admin ready: boss@example\.com/);
      }
      const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} });
      const rows = await sql`SELECT username, role FROM users`;
      const rules = await sql`SELECT action FROM earn_rules ORDER BY action`;
      await sql.end();
      expect(rows).toEqual([{ username: 'boss', role: 'admin' }]);
      expect(rules.map((r) => r.action)).toEqual(['purchase', 'register', 'review', 'share']);
    } finally {
      const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});

describe('start command', () => {
  it('says in one line that Redis is not reachable and points at docker-compose.yml', async () => {
    const port = await freePort();
    const r = await startCommand({ REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/Redis is not reachable at redis:\/\/127\.0\.0\.1:\d+.*docker-compose\.yml/);
  });

  it('says in one line that Postgres is not reachable', async () => {
    const port = await freePort();
    const r = await startCommand({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/points_mall` });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/Postgres is not reachable.*docker-compose\.yml/);
  });

  it('refuses a Redis whose maxmemory-policy may evict keys', async () => {
    const port = await freePort();
    const server = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--maxmemory-policy', 'allkeys-lru',
    ]);
    children.push(server);
    const redis = new Redis({ port, host: '127.0.0.1', retryStrategy: (n) => (n > 50 ? null : 50) });
    redis.on('error', () => {}); // refused until the server is up; commands wait in the offline queue
    try {
      await expect(assertNoEviction(redis)).rejects.toThrow(/noeviction/);
      const r = await startCommand({ REDIS_URL: `redis://127.0.0.1:${port}` });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/maxmemory-policy is "allkeys-lru"/);
    } finally {
      redis.disconnect();
      server.kill('SIGKILL');
    }
  });
});
