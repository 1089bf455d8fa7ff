/**
 * Redis connections. Connections that run write scripts ('api', 'writer') fail fast and never
 * resend a command across a reconnect: a write must not reach a restarted Redis before the write
 * gate has checked it (src/recovery/redis-gate.ts), which also sends write scripts only while the
 * connection is ready (so none waits in the offline queue). The offline queue itself stays on:
 * with it off, ioredis's auto-pipelining throws "Stream isn't writeable" out of a timer (an
 * uncaught exception) when a pipeline runs during a reconnect. The API's connection
 * auto-pipelines concurrent requests and bounds each command (a stalled Redis answers nothing and
 * closes nothing: without a bound a request hangs; the rejection is a 503). BullMQ's connections
 * ('worker') retry forever and wait as long as a command takes, as BullMQ requires.
 *
 * With REDIS_CLUSTER_NODES set the same roles are built on ioredis's Cluster client (the per-node
 * semantics go in `redisOptions`, which every node connection it opens inherits). The key layout
 * keeps every script in one hash slot (src/redis/keys.ts), so scripts, auto-pipelining and BullMQ
 * (hash-tagged queue prefixes) run unchanged; what needs a whole-deployment view (INFO, CONFIG,
 * SCAN, FLUSHALL) goes through `readyMasters()`, one connection per master.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseClusterNodes } from '../config/addresses.ts';
import { replicateWrites } from './replica-wait.ts';
import { registerScripts, VARIADIC_COMMANDS } from './scripts.ts';
import { lightPipelines } from './light-pipeline.ts';

export type RedisRole = 'api' | 'writer' | 'worker';

export interface RedisConnectionOptions {
  commandTimeoutMs?: number;
  /** on by default for the API; the relay's connection too: a pass's reads of every partition go out in one write */
  autoPipelining?: boolean;
}

/** A single Redis or a Redis Cluster: every call site that only sends keyed commands takes either. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: REDIS_CLUSTER_NODES (host:port,…) wins over REDIS_URL when set. */
export interface RedisTarget {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: string;
  REDIS_WAIT_REPLICAS?: number;
  REDIS_WAIT_TIMEOUT_MS?: number;
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return (redis as Cluster).isCluster === true;
}

/**
 * One connection per master: the cluster's own node connections, or the single Redis itself.
 * Commands that carry no key (INFO, CONFIG, DBSIZE, SCAN, FLUSHALL) must go to each of these.
 */
export function masters(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/** masters() once the connection is ready: a cluster knows its nodes only after its first slot map. */
export async function readyMasters(redis: RedisClient, timeoutMs = 10_000): Promise<Redis[]> {
  if (isCluster(redis)) await redisReady(redis, timeoutMs);
  return masters(redis);
}

/**
 * Script commands that skip auto-pipelining: the batch scripts (lua/<name>-many-n.lua), whose
 * first argument is their key count. On a cluster ioredis routes an auto-pipelined script by its
 * first argument, which for them is no key: their batch would join the pipeline of an unrelated
 * slot and be refused ("All keys in the pipeline should belong to the same slots allocation
 * group"). A batch is already many calls in one command; it loses nothing by going alone.
 */
const AUTO_PIPELINE_IGNORED = [...VARIADIC_COMMANDS];

export function createRedis(url: string, role: RedisRole, o?: RedisConnectionOptions): Redis;
export function createRedis(target: string | RedisTarget, role: RedisRole, o?: RedisConnectionOptions): RedisClient;
export function createRedis(target: string | RedisTarget, role: RedisRole, o: RedisConnectionOptions = {}): RedisClient {
  const writes = role !== 'worker';
  const autoPipelining = o.autoPipelining ?? role === 'api';
  const options = {
    maxRetriesPerRequest: writes ? 1 : null,
    // BullMQ's blocking commands would trip a timeout: only the API's commands are bounded
    commandTimeout: role === 'api' ? o.commandTimeoutMs : undefined,
    autoResendUnfulfilledCommands: !writes,
  } satisfies RedisOptions;
  const t: RedisTarget = typeof target === 'string' ? { REDIS_URL: target } : target;
  let redis: RedisClient;
  if (t.REDIS_CLUSTER_NODES) {
    redis = new Cluster(parseClusterNodes(t.REDIS_CLUSTER_NODES), {
      redisOptions: options,
      enableAutoPipelining: autoPipelining,
      autoPipeliningIgnoredCommands: AUTO_PIPELINE_IGNORED,
      enableOfflineQueue: true,
      lazyConnect: false,
      // reads go to masters too: balances and stock must never be read from a lagging replica
      scaleReads: 'master',
      // Writers do not resend a command whose connection closed: it may have run on the lost
      // master, and its retry must come from the client (Idempotency-Key), after the write gate
      // has checked the promoted replica. BullMQ's connections retry once the slots moved.
      retryDelayOnFailover: writes ? 0 : 200,
      retryDelayOnClusterDown: writes ? 0 : 200,
      maxRedirections: 16,
      // ioredis refreshes its slot map on a redirection it follows, but not on those inside an
      // auto-pipeline with mixed replies (answered 503 then): refresh on a clock too, so a
      // failover's new map is picked up within a second either way
      slotsRefreshInterval: 1000,
    });
    if (writes) redis.on('+node', (node: Redis) => node.on('close', () => rejectUnanswered(node)));
  } else {
    redis = new Redis(t.REDIS_URL, {
      ...options,
      enableAutoPipelining: autoPipelining,
      autoPipeliningIgnoredCommands: AUTO_PIPELINE_IGNORED,
      enableOfflineQueue: true,
      lazyConnect: false,
    });
    if (writes) redis.on('close', () => rejectUnanswered(redis as Redis));
  }
  // connection errors surface on the commands that hit them; ioredis reconnects on its own
  redis.on('error', () => {});
  registerScripts(redis);
  // auto-pipelining builds a pipeline per turn of the event loop: one without per-script copies
  if (autoPipelining) lightPipelines(redis);
  const replicas = t.REDIS_WAIT_REPLICAS ?? 0;
  if (writes && replicas > 0) replicateWrites(redis, { replicas, timeoutMs: t.REDIS_WAIT_TIMEOUT_MS ?? 1000 });
  return redis;
}

type CommandDeque = { length: number; shift(): { command: { reject(err: Error): void } } | undefined };

/**
 * ioredis keeps the commands that were in flight when a connection closed (prevCommandQueue) and,
 * with autoResendUnfulfilledCommands off, discards them at the reconnect without settling their
 * promises: a request awaiting one would hang forever. Fail them as the closed connection they
 * met instead (a 503 at the API; the client retries with its Idempotency-Key). ioredis assigns
 * the queue before it emits 'close'.
 */
function rejectUnanswered(redis: Redis): void {
  const queue = (redis as unknown as { prevCommandQueue?: CommandDeque | null }).prevCommandQueue;
  for (let item = queue?.shift(); item; item = queue?.shift()) item.command.reject(new Error('Connection is closed.'));
}

/** Resolves once the connection is ready; rejects after `timeoutMs` saying where Redis was expected. */
export function redisReady(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  const where = isCluster(redis)
    ? `Redis Cluster (startup nodes ${describeStartup(redis)})`
    : `Redis at ${redis.options.host}:${redis.options.port}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`${where} not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

function describeStartup(cluster: Cluster): string {
  const nodes = (cluster as unknown as { startupNodes?: Array<{ host?: string; port?: number }> }).startupNodes ?? [];
  return nodes.map((n) => `${n.host}:${n.port}`).join(',');
}

/** Refuses a cluster node reached as a single Redis (it would answer MOVED for most keys), then checks eviction. */
export async function assertRedisSettings(redis: RedisClient): Promise<void> {
  if (!isCluster(redis)) {
    const info = await redis.info('cluster');
    if (/^cluster_enabled:1/m.test(info)) {
      throw new Error(
        `Redis at ${redis.options.host}:${redis.options.port} is a Redis Cluster node: set REDIS_CLUSTER_NODES=host:port,… ` +
          '(REDIS_URL alone reaches one node, which refuses the keys of the others)',
      );
    }
  }
  await assertNoEviction(redis);
}

/**
 * Redis must never evict: an evicted balance or reservation would be silent data loss. On a
 * cluster every master is asked (CONFIG is per node).
 */
export async function assertNoEviction(redis: RedisClient): Promise<void> {
  for (const node of await readyMasters(redis)) {
    const reply = (await node.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    if (policy !== 'noeviction') {
      const where = isCluster(redis) ? ` on the master at ${node.options.host}:${node.options.port}` : '';
      throw new Error(
        `Redis maxmemory-policy is "${policy}"${where}; Points Mall needs "noeviction" (evicting a balance or ` +
          'reservation would silently lose data). Run: redis-cli CONFIG SET maxmemory-policy noeviction',
      );
    }
  }
}
