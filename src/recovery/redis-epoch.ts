/**
 * Is this Redis safe to write to? A Redis restored from an older snapshot, failed over to a
 * lagging replica, or flushed has gone back in time: serving writes from it would spend points
 * already spent. Stream ids cannot tell once anyone has written (XADD * moves them past the
 * persisted watermark at the first write), so the verdict rests on what a write cannot move:
 *
 *   - Redis's identity: its run_id (new at every start) and replication id (new at a failover);
 *     on a Redis Cluster, those of every master (with its node id), so that a restart or a
 *     failover of any one master changes it;
 *   - an epoch number kept both in Redis (<P>:epoch) and in Postgres (redis_epochs).
 *
 * A Redis whose identity and epoch match the latest verified row is the one verified before: it
 * has not restarted, so it cannot have lost anything. Anything else (new run_id, missing or older
 * epoch key) is verified afresh, before any writer touches it: under an exclusive Postgres lock
 * that waits for every persist batch in flight, each partition's stream must have reached what
 * Postgres persisted; then a new epoch row is recorded with the streams' ids as its baseline.
 * Otherwise Redis is behind and stays closed to writes until it is rolled forward.
 *
 * A persist batch relayed from an older Redis lifetime and committed after a newer one was verified
 * (a worker that held it through the restart) is checked against the baseline: if it carries ops
 * the verified Redis never had, the epoch is marked behind — an alarm that closes writes again.
 */
import type { Redis } from 'ioredis';
import { isCluster, masters, type RedisClient } from '../redis/client.ts';
import type { Sql, Tx } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import { compareIds, redisLag, streamIds, type Lag } from './watermark.ts';

/** Advisory lock: persist batches hold it shared, a verification exclusive. */
export const EPOCH_LOCK = 7_311_009;

export interface RedisIdentity {
  runId: string;
  replId: string;
  epoch: number | null;
}

export interface EpochRow {
  epoch: number;
  runId: string;
  replId: string;
  baseline: Record<string, string>;
  behind: boolean;
  reason: string | null;
}

export type Verdict =
  | { status: 'verified'; runId: string; epoch: number }
  | { status: 'behind'; reason: string; lag: Lag[] };

function infoField(info: string, field: string): string {
  const m = new RegExp(`^${field}:(\\S+)`, 'm').exec(info);
  if (!m) throw new Error(`Redis INFO has no ${field}`);
  return m[1];
}

export async function redisIdentity(redis: RedisClient, keys: Keys): Promise<RedisIdentity> {
  if (!isCluster(redis)) {
    const [node, epoch] = await Promise.all([nodeIdentity(redis), redis.get(keys.epoch())]);
    return { runId: node.runId, replId: node.replId, epoch: epoch === null ? null : Number(epoch) };
  }
  // a cluster's identity is that of all its masters: a restart or a failover of any one of them
  // (new run_id; a promoted replica has its own run_id and a new replication id) changes it
  const nodes = masters(redis);
  if (nodes.length === 0) throw new Error('Redis Cluster: no master known yet');
  const [ids, epoch] = await Promise.all([
    Promise.all(
      nodes.map(async (node) => {
        const [id, myId] = await Promise.all([nodeIdentity(node), node.call('CLUSTER', 'MYID') as Promise<string>]);
        if (id.role !== 'master') throw new Error(`Redis Cluster: node ${myId} is a ${id.role} now (topology changing)`);
        return { ...id, nodeId: String(myId) };
      }),
    ),
    clusterEpoch(redis, keys),
  ]);
  ids.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return {
    runId: ids.map((n) => `${n.nodeId}:${n.runId}`).join(','),
    replId: ids.map((n) => `${n.nodeId}:${n.replId}`).join(','),
    epoch,
  };
}

/**
 * On a cluster the epoch is kept in every partition's slot too: a master flushed without a restart
 * keeps its run_id, but loses its partitions' copies, and an epoch missing or different in any of
 * them is no epoch (verified afresh).
 */
function epochKeys(keys: Keys): string[] {
  return [keys.epoch(), ...Array.from({ length: keys.partitions }, (_, p) => keys.epochOf(p))];
}

async function clusterEpoch(redis: RedisClient, keys: Keys): Promise<number | null> {
  const values = await Promise.all(epochKeys(keys).map((k) => redis.get(k)));
  return values.every((v) => v !== null && v === values[0]) ? Number(values[0]) : null;
}

async function nodeIdentity(node: Redis): Promise<{ runId: string; replId: string; role: string }> {
  const [server, replication] = await Promise.all([node.info('server'), node.info('replication')]);
  return {
    runId: infoField(server, 'run_id'),
    replId: infoField(replication, 'master_replid'),
    role: infoField(replication, 'role'),
  };
}

export async function latestEpoch(sql: Sql | Tx): Promise<EpochRow | null> {
  const [row] = await sql<EpochRow[]>`
    SELECT epoch, run_id AS "runId", repl_id AS "replId", baseline, behind, reason
    FROM redis_epochs ORDER BY epoch DESC LIMIT 1`;
  return row ?? null;
}

const matches = (row: EpochRow | null, id: RedisIdentity) =>
  row !== null && !row.behind && row.runId === id.runId && row.replId === id.replId && row.epoch === id.epoch;

/**
 * The verdict for Redis as it is now. `known` is the identity this process verified last: when
 * Redis still has it, Postgres being unreachable does not close writes (the hot path must not
 * depend on Postgres, and a Redis that never restarted cannot have gone back in time). Throws when
 * no verdict can be reached (Redis or Postgres unreachable for a Redis not known): callers treat
 * that as not writable.
 */
export async function verifyRedis(
  d: { redis: RedisClient; keys: Keys; sql: Sql },
  known?: { runId: string; epoch: number },
): Promise<Verdict> {
  const id = await redisIdentity(d.redis, d.keys);
  let latest: EpochRow | null;
  try {
    latest = await latestEpoch(d.sql);
  } catch (err) {
    if (known && known.runId === id.runId && known.epoch === id.epoch) return { status: 'verified', ...known };
    throw err;
  }
  if (matches(latest, id)) return { status: 'verified', runId: id.runId, epoch: id.epoch! };
  if (latest?.behind) return { status: 'behind', reason: latest.reason ?? 'marked behind', lag: [] };
  return d.sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${EPOCH_LOCK})`;
    // another process may have verified this Redis while we waited for the lock
    const again = await latestEpoch(tx);
    const now = await redisIdentity(d.redis, d.keys);
    if (matches(again, now)) return { status: 'verified' as const, runId: now.runId, epoch: now.epoch! };
    if (again?.behind) return { status: 'behind' as const, reason: again.reason ?? 'marked behind', lag: [] };
    const lag = await redisLag(d.redis, d.keys, tx);
    if (lag.length > 0) {
      return { status: 'behind' as const, reason: `Redis streams behind the persisted record on ${lag.length} partition(s)`, lag };
    }
    const epoch = await insertEpoch(tx, d.redis, d.keys, now, again);
    return { status: 'verified' as const, runId: now.runId, epoch };
  });
}

/**
 * Records the current Redis as verified (after a roll-forward or rebuild made it match Postgres):
 * a new epoch row with the streams' ids as baseline, and the epoch key in Redis.
 */
export async function recordEpoch(d: { redis: RedisClient; keys: Keys; sql: Sql }): Promise<number> {
  return d.sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${EPOCH_LOCK})`;
    return insertEpoch(tx, d.redis, d.keys, await redisIdentity(d.redis, d.keys), await latestEpoch(tx));
  });
}

async function insertEpoch(tx: Tx, redis: RedisClient, keys: Keys, id: RedisIdentity, prev: EpochRow | null): Promise<number> {
  const epoch = (prev?.epoch ?? 0) + 1;
  const baseline = await streamIds(redis, keys);
  await tx`INSERT INTO redis_epochs (epoch, run_id, repl_id, baseline)
           VALUES (${epoch}, ${id.runId}, ${id.replId}, ${tx.json(baseline)})`;
  // set before the commit: should the commit fail, Redis carries an epoch Postgres does not, which
  // only means the next check verifies it again
  if (isCluster(redis)) await Promise.all(epochKeys(keys).map((k) => redis.set(k, String(epoch))));
  else await redis.set(keys.epoch(), String(epoch));
  return epoch;
}

/** Every persist batch holds the epoch lock shared, so a verification sees it committed or not started. */
export async function holdEpochShared(tx: Tx): Promise<void> {
  await tx`SELECT pg_advisory_xact_lock_shared(${EPOCH_LOCK})`;
}

/**
 * A batch relayed from the Redis lifetime `runId`: if a newer lifetime has been verified since and
 * this batch carries stream ids beyond that lifetime's baseline, the verified Redis never had these
 * ops — it is behind. The batch is still persisted (acknowledged ops are never dropped); the epoch
 * is marked behind, which closes writes until Redis is rolled forward.
 */
export async function checkLifetime(tx: Tx, runId: string, marks: Record<number, string>): Promise<void> {
  const latest = await latestEpoch(tx);
  if (!latest || latest.runId === runId || latest.behind) return;
  const beyond = Object.entries(marks).filter(([p, id]) => compareIds(id, latest.baseline[p] ?? '0-0') > 0);
  if (beyond.length === 0) return;
  await tx`UPDATE redis_epochs SET behind = true,
             reason = ${`ops of an earlier Redis lifetime (${runId}) persisted after epoch ${latest.epoch} was verified`}
           WHERE epoch = ${latest.epoch}`;
}
