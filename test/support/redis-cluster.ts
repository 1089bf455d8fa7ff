/**
 * A private Redis Cluster for tests: N masters (optionally one replica each) on consecutive
 * loopback ports from `basePort` (cluster bus ports are port + 10000), each with its own data
 * directory, joined by `redis-cli --cluster create` (a single node takes every slot itself), and ready once every node reports
 * cluster_state:ok (and every replica's link to its master is up). Nodes are killed with SIGKILL
 * by the test; destroy() kills what is left and removes the directories.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);

export interface ClusterNode {
  port: number;
  dir: string;
  /** A plain (non-cluster) connection to this node only: INFO, DBSIZE, CLUSTER … */
  conn(): Redis;
  alive(): boolean;
  kill9(): Promise<void>;
  /** Starts a killed node again with its data directory (it rejoins the cluster from nodes.conf). */
  restart(): Promise<void>;
}

export interface RedisCluster {
  nodes: ClusterNode[];
  /** REDIS_CLUSTER_NODES for the processes under test. */
  spec: string;
  /** The nodes that are masters now (asks every live node for its role). */
  masters(): Promise<ClusterNode[]>;
  /** Resolves once every live node reports cluster_state:ok and sees `masters` masters. */
  waitForOk(timeoutMs?: number, masters?: number): Promise<void>;
  destroy(): Promise<void>;
}

export interface ClusterOptions {
  basePort: number;
  masters?: number;
  replicas?: 0 | 1;
  appendonly?: boolean;
  nodeTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(\\S+)`, 'm').exec(info)?.[1];
}

export async function redisCluster(o: ClusterOptions): Promise<RedisCluster> {
  const masterCount = o.masters ?? 3;
  const total = masterCount * (1 + (o.replicas ?? 0));
  const nodes: ClusterNode[] = [];
  const conns: Redis[] = [];
  for (let i = 0; i < total; i++) {
    const port = o.basePort + i;
    const dir = mkdtempSync(join(tmpdir(), `pm-cluster-${port}-`));
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'),
      // a lone node (never MEET) would list itself with an empty address in CLUSTER SLOTS
      '--cluster-announce-ip', '127.0.0.1',
      '--cluster-node-timeout', String(o.nodeTimeoutMs ?? 1000),
      // a replica that lost its master a moment ago may always stand for election
      '--cluster-replica-validity-factor', '0',
      '--save', '', '--appendonly', o.appendonly ? 'yes' : 'no', '--appendfsync', 'always',
      '--maxmemory-policy', 'noeviction',
    ];
    let proc: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
    let conn: Redis | undefined;
    nodes.push({
      port,
      dir,
      conn() {
        if (!conn) {
          conn = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 50 });
          conn.on('error', () => {});
          conns.push(conn);
        }
        return conn;
      },
      alive: () => proc.exitCode === null && proc.signalCode === null,
      async restart() {
        if (proc.exitCode === null && proc.signalCode === null) throw new Error(`node ${port} is running`);
        proc = spawn('redis-server', args, { stdio: 'ignore' });
        const deadline = Date.now() + 15_000;
        while ((await this.conn().ping().catch(() => null)) !== 'PONG') {
          if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not restart`);
          await sleep(50);
        }
      },
      async kill9() {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        await new Promise<void>((resolve) => {
          proc.once('exit', () => resolve());
          proc.kill('SIGKILL');
        });
        conn?.disconnect();
        conn = undefined;
      },
    });
  }
  const destroy = async () => {
    for (const c of conns) c.disconnect();
    for (const n of nodes) await n.kill9();
    for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
  };
  try {
    for (const n of nodes) {
      const deadline = Date.now() + 15_000;
      while ((await n.conn().ping().catch(() => null)) !== 'PONG') {
        if (Date.now() > deadline) throw new Error(`redis-server on ${n.port} did not start`);
        await sleep(50);
      }
    }
    if (total === 1) {
      // redis-cli --cluster create wants three masters: one node takes every slot itself
      await nodes[0].conn().call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    } else {
      await run('redis-cli', [
        '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas', String(o.replicas ?? 0), '--cluster-yes',
      ]);
    }
  } catch (err) {
    await destroy();
    throw err;
  }

  const cluster: RedisCluster = {
    nodes,
    spec: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    async masters() {
      const out: ClusterNode[] = [];
      for (const n of nodes.filter((x) => x.alive())) {
        const role = infoField(await n.conn().info('replication'), 'role');
        if (role === 'master') out.push(n);
      }
      return out;
    },
    async waitForOk(timeoutMs = 30_000, masters = masterCount) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const states = await Promise.all(
          nodes.filter((n) => n.alive()).map(async (n) => {
            const info = await n.conn().cluster('INFO').catch(() => '');
            const repl = await n.conn().info('replication').catch(() => '');
            const linkUp = infoField(repl, 'role') !== 'slave' || infoField(repl, 'master_link_status') === 'up';
            return infoField(String(info), 'cluster_state') === 'ok' && Number(infoField(String(info), 'cluster_size')) === masters && linkUp;
          }),
        );
        if (states.every(Boolean)) return;
        if (Date.now() > deadline) throw new Error(`cluster on ${o.basePort}… not ok within ${timeoutMs} ms`);
        await sleep(100);
      }
    },
    destroy,
  };
  try {
    await cluster.waitForOk();
  } catch (err) {
    await destroy();
    throw err;
  }
  return cluster;
}
