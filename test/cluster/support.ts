/**
 * What the Redis Cluster tests share: a private cluster with the file's test context on it, API
 * and worker processes started with REDIS_CLUSTER_NODES, an HTTP client that records what was
 * acknowledged, and where keys ended up (per master).
 */
import { Redis } from 'ioredis';
import type { Env } from '../../src/config/env.ts';
import { createTestContext, type TestContext } from '../support/context.ts';
import { redisCluster, type ClusterOptions, type RedisCluster } from '../support/redis-cluster.ts';
import { childEnv, spawnTs, waitUntil, type Child } from '../crash/procs.ts';

export interface ClusterSetup {
  cluster: RedisCluster;
  ctx: TestContext;
}

export async function clusterContext(o: ClusterOptions, env: Partial<Env> = {}): Promise<ClusterSetup> {
  const cluster = await redisCluster(o);
  try {
    const ctx = await createTestContext({ REDIS_CLUSTER_NODES: cluster.spec, ...env });
    return { cluster, ctx };
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
}

/** An API process (src/server.ts, one process) on `port`, answering /health/live. */
export async function startApi(name: string, ctx: TestContext, port: number, env: Record<string, string | number> = {}): Promise<Child> {
  const api = spawnTs(name, 'src/server.ts', [], childEnv(ctx.env, { HOST: '127.0.0.1', PORT: port, API_PROCESSES: 1, LOG_LEVEL: 'warn', ...env }));
  await waitUntil(
    `${name} to answer on ${port}`,
    async () => {
      if (api.exited()) throw new Error(`${name} exited:\n${api.output().slice(-4000)}`);
      return fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok, () => false);
    },
    // generous: next to another file's processes, 2 cores compile and start several at once
    60_000,
    100,
  );
  return api;
}

/** A workers process (workers/main.ts) running `roles`, started once it logs so. */
export async function startWorkers(name: string, ctx: TestContext, roles: string, env: Record<string, string | number> = {}): Promise<Child> {
  const w = spawnTs(name, 'workers/main.ts', ['--only', roles, '--concurrency', '2', '--lock-ms', '2000'], childEnv(ctx.env, { LOG_LEVEL: 'info', ...env }));
  await w.waitForOutput('"msg":"workers started"', 60_000);
  return w;
}

export interface Answer {
  status?: number;
  body?: Record<string, unknown> & { code?: string; id?: string; opId?: string };
  replayed?: boolean;
  error?: string;
}

export async function postJson(url: string, token: string, key: string, payload: unknown, timeoutMs = 20_000): Promise<Answer> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': key, 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return {
      status: res.status,
      body: (await res.json()) as Answer['body'],
      replayed: res.headers.get('idempotent-replayed') === 'true',
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { error: e.cause?.code ?? e.message };
  }
}

/** Keys under `prefix` on each master now, by port; `match` narrows (a glob after the prefix). */
export async function keysPerMaster(cluster: RedisCluster, prefix: string, match = '*'): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const m of await cluster.masters()) {
    const conn: Redis = m.conn();
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await conn.scan(cursor, 'MATCH', `${prefix}:${match}`, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    out.set(m.port, found);
  }
  return out;
}
