/**
 * Relay: moves outbox entries (one stream per user partition) into BullMQ persist jobs and feeds
 * earn ops into the leaderboards. One pass reads every partition and makes ONE job of all it got,
 * then lingers briefly when the pass was small, so that under live load jobs carry tens to
 * hundreds of ops rather than a handful (a job costs several Redis scripts and a Postgres
 * transaction whatever its size). An entry is acknowledged and deleted only after its job is
 * added; a relay that dies before that leaves the entries pending, and they are re-read (its own
 * pending on restart or reconnect, a dead relay's via XAUTOCLAIM once they have been idle
 * `claimIdleMs`, RELAY_CLAIM_IDLE_MS) — the job id and Postgres's
 * unique op_id make the second delivery harmless. Entries are removed with XDEL after ack (never
 * MAXLEN/XTRIM, which on Redis < 8.2 drop unacked entries).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { RedisClient } from '../src/redis/client.ts';
import type { JobsOptions, Queue } from 'bullmq';
import type { Keys } from '../src/redis/keys.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import { parseOp, type Op } from '../src/points/op.ts';
import { applyToBoards, countsOnBoards, forgetSettled } from '../src/leaderboards/apply.ts';
import { PERSIST_JOB_OPTIONS, RELAY_GROUP } from '../src/queues.ts';
import type { Logger } from './logger.ts';

/** Default idle time after which another relay's pending entries are claimed (XAUTOCLAIM). */
const CLAIM_IDLE_MS = 30_000;

type StreamReply = Array<[string, Array<[string, string[]]>]> | null;

export interface RelayOptions {
  redis: RedisClient;
  keys: Keys;
  queue: Queue;
  batch: number;
  log: Logger;
  consumer?: string;
  /** After a pass smaller than half a batch, wait this long so the next job carries more. */
  lingerMs?: number;
  /**
   * The process's Redis write gate: the relay moves nothing while it is closed (a Redis not yet
   * verified after a restart), and stamps each job with the Redis lifetime it read from.
   */
  gate: RedisGate;
  /**
   * Entries pending this long under another consumer (a relay that died) are claimed. It must
   * exceed how long a live relay holds a pass, or live relays take each other's entries.
   */
  claimIdleMs?: number;
  /** Attempts and backoff of the persist jobs (PERSIST_ATTEMPTS, PERSIST_BACKOFF_MS). */
  jobOptions?: JobsOptions;
  /** BUSINESS_TIMEZONE: the calendar of the daily, weekly and monthly boards. */
  timeZone?: string;
}

interface PartitionRead {
  p: number;
  entries: Array<[string, string[]]>;
}

export class Relay {
  private running = false;
  private loop?: Promise<void>;
  private readonly consumer: string;
  private readonly claimIdleMs: number;
  /**
   * Partitions that re-read from '0' until their own pending list is empty: every partition at
   * start and after a reconnect, and one whose last read was not relayed (a pass failed after
   * XREADGROUP had delivered the entries, e.g. BullMQ refused the job under Redis OOM). Those
   * entries are pending under our name and a '>' read never returns them again; re-reading them
   * beats waiting claimIdleMs for XAUTOCLAIM.
   */
  private readonly unrelayed = new Set<number>();
  relayed = 0;

  constructor(private readonly o: RelayOptions) {
    this.consumer = o.consumer ?? `relay-${hostname()}`;
    this.claimIdleMs = o.claimIdleMs ?? CLAIM_IDLE_MS;
  }

  async start(): Promise<void> {
    const { redis, keys } = this.o;
    for (let p = 0; p < keys.partitions; p++) {
      await redis.xgroup('CREATE', keys.outbox(p), RELAY_GROUP, '0', 'MKSTREAM').catch((err: Error) => {
        if (!err.message.includes('BUSYGROUP')) throw err;
      });
    }
    this.running = true;
    this.loop = this.run();
  }

  /** Stops reading; the batch in hand is finished (added and acked) before this resolves. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    let idle = 1;
    let lastClaim = 0;
    // Our own pending entries are re-read first, partition by partition (each re-reads from '0'
    // until its own pending list is empty, whatever the others do): after a restart (a previous
    // life under the same consumer name) and after every reconnect (a Redis restored from a
    // snapshot brings back entries we had already acknowledged, pending again under our name).
    const rereadAll = () => {
      for (let p = 0; p < this.o.keys.partitions; p++) this.unrelayed.add(p);
    };
    rereadAll();
    this.o.redis.on('ready', rereadAll);
    while (this.running) {
      try {
        if (!this.o.gate.writable && (await this.o.gate.check()) !== 'verified') {
          await sleep(200);
          continue;
        }
        const claimNow = Date.now() - lastClaim > this.claimIdleMs / 3;
        if (claimNow) lastClaim = Date.now();
        const moved = await this.pass(claimNow);
        idle = moved > 0 ? 1 : Math.min(idle * 2, 50);
        if (moved === 0) await sleep(idle);
        else if (moved < this.o.batch / 2) await sleep(this.o.lingerMs ?? 0);
      } catch (err) {
        this.o.log.error({ err }, 'relay pass failed');
        await sleep(500);
      }
    }
    this.o.redis.off('ready', rereadAll);
  }

  /**
   * One read over every partition, relayed as one job; returns how many entries were relayed. A
   * partition whose read fails (its master failing over) does not hold up the others: what they
   * read is relayed in this pass — XREADGROUP '>' hands an entry out once, so dropping it would
   * leave it pending until XAUTOCLAIM, claimIdleMs later — and the failure is logged (thrown when
   * nothing else was relayed, so that the loop backs off).
   */
  async pass(claim = false): Promise<number> {
    const { keys } = this.o;
    const perPartition = Math.max(50, Math.ceil((this.o.batch * 2) / keys.partitions));
    const settled = await Promise.allSettled(
      Array.from({ length: keys.partitions }, (_, p) => this.read(p, claim, perPartition)),
    );
    const failed = settled.flatMap((r, p) => (r.status === 'rejected' ? [{ p, err: r.reason as Error }] : []));
    const batches = settled.flatMap((r) => (r.status === 'fulfilled' && r.value.entries.length > 0 ? [r.value] : []));
    if (batches.length > 0) {
      try {
        await this.relay(batches);
      } catch (err) {
        for (const b of batches) this.unrelayed.add(b.p);
        throw err;
      }
    }
    const moved = batches.reduce((n, b) => n + b.entries.length, 0);
    if (failed.length > 0) {
      if (moved === 0) throw failed[0].err;
      this.o.log.error({ err: failed[0].err, partitions: failed.map((f) => f.p) }, 'relay: partitions not read this pass (the others relayed)');
    }
    return moved;
  }

  private async read(p: number, claim: boolean, count: number): Promise<PartitionRead> {
    const { redis, keys } = this.o;
    const stream = keys.outbox(p);
    const start = this.unrelayed.has(p) ? '0' : '>';
    try {
      let entries: Array<[string, string[]]> = [];
      if (claim) {
        const claimed = (await redis.xautoclaim(stream, RELAY_GROUP, this.consumer, this.claimIdleMs, '0', 'COUNT', count)) as [
          string,
          Array<[string, string[]] | null>,
        ];
        entries = claimed[1].filter((e): e is [string, string[]] => e !== null);
      }
      if (entries.length === 0) {
        const reply = (await redis.xreadgroup(
          'GROUP', RELAY_GROUP, this.consumer, 'COUNT', count, 'STREAMS', stream, start,
        )) as StreamReply;
        // a pending entry deleted meanwhile comes back as [id, null]: nothing to relay
        entries = (reply?.[0]?.[1] ?? []).filter(([, fields]) => fields !== null);
      }
      if (entries.length === 0 && start === '0') this.unrelayed.delete(p);
      return { p, entries };
    } catch (err) {
      this.unrelayed.add(p);
      throw err;
    }
  }

  private async relay(batches: PartitionRead[]): Promise<void> {
    const { redis, keys, queue } = this.o;
    // each op carries its stream id; `marks` is the highest id per partition, for the watermark
    const perPartition = batches.map((b) => b.entries.map(([id, fields]): Op => ({ ...parseOp(fields[1]), sid: id })));
    const ops = perPartition.flat();
    const marks: Record<number, string> = {};
    for (const b of batches) marks[b.p] = b.entries[b.entries.length - 1][0];
    await Promise.all(batches.map((b, i) => applyToBoards(redis, keys, b.p, perPartition[i], this.o.timeZone)));
    // the same entries give the same id, so a relay re-adding them after a crash is ignored
    const grouping = batches.map((b) => `${b.p}:${b.entries[0][0]}:${b.entries.length}`).join('|');
    const jobId = `r_${createHash('sha1').update(grouping).digest('hex').slice(0, 24)}`;
    this.o.gate.assertWritable();
    await queue.add('persist', { ops, marks, runId: this.o.gate.runId }, { ...(this.o.jobOptions ?? PERSIST_JOB_OPTIONS), jobId });
    // one transaction per partition: each outbox is its own hash slot (a cluster spreads them)
    await Promise.all(
      batches.map((b) => {
        const ids = b.entries.map(([id]) => id);
        return redis.multi().xack(keys.outbox(b.p), RELAY_GROUP, ...ids).xdel(keys.outbox(b.p), ...ids).exec();
      }),
    );
    this.relayed += ops.length;
    // the boards' dedupe only needs entries that can still come back: forget the settled ones
    // (if this fails, the next pass with earns there forgets them; nothing is counted twice)
    const withEarns = batches.filter((_, i) => perPartition[i].some(countsOnBoards)).map((b) => b.p);
    await forgetSettled(redis, keys, withEarns).catch((err: Error) =>
      this.o.log.warn({ err }, 'relay: could not trim the leaderboard dedupe sets'),
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
