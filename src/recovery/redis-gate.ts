/**
 * The write gate every process that writes to Redis holds (API, relay, sweeper, expire, reconcile):
 * closed at start and the instant any watched connection closes, open only once a fresh check
 * (src/recovery/redis-epoch.ts) has passed for the Redis now connected. A check that errors leaves
 * it closed. Writes check it right before each script call (gateWrites), so a command can never
 * reach a reconnected Redis ahead of the check: a write script is sent only on a ready connection
 * (never parked in the offline queue), and the connections involved never resend unanswered
 * commands after reconnecting (src/redis/client.ts).
 */
import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { Keys } from '../redis/keys.ts';
import { WRITE_COMMANDS } from '../redis/scripts.ts';
import type { Lag } from './watermark.ts';
import { verifyRedis } from './redis-epoch.ts';

export type GateState = 'unverified' | 'verified' | 'behind';

export interface GateLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Script commands that write; read-only ones (balance) pass while the gate is closed. */
export { WRITE_COMMANDS };

export class RedisGate {
  state: GateState = 'unverified';
  reason = 'not verified yet';
  lag: Lag[] = [];
  checkedAt = 0;
  runId?: string;
  epoch?: number;
  /** Bumped by every invalidation: a check that started before one must not open the gate. */
  private generation = 0;
  private inflight?: Promise<GateState>;
  private timer?: NodeJS.Timeout;

  constructor(private readonly d: { redis: RedisClient; keys: Keys; sql: Sql; log?: GateLog }) {}

  get writable(): boolean {
    return this.state === 'verified';
  }

  /** Closes the gate whenever this connection drops, and checks again once it is back. */
  watch(conn: RedisClient): void {
    conn.on('close', () => this.invalidate('Redis connection lost'));
    conn.on('ready', () => void this.check());
    if (isCluster(conn)) {
      // a cluster stays 'ready' while one node goes: a node dropped from (or added to) the slot
      // map may be a failover, and its promoted replica must be checked before writes reach it
      conn.on('-node', () => this.invalidate('Redis Cluster node lost'));
      conn.on('+node', () => void this.check());
    }
  }

  invalidate(reason: string): void {
    this.generation++;
    if (this.state === 'verified') this.d.log?.warn({ reason }, 'Redis write gate closed');
    this.state = 'unverified';
    this.reason = reason;
  }

  assertWritable(): void {
    if (!this.writable) throw gateClosed();
  }

  /** One check at a time; callers share the one in flight. */
  check(): Promise<GateState> {
    this.inflight ??= this.runCheck().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async runCheck(): Promise<GateState> {
    const generation = this.generation;
    const known = this.writable && this.runId && this.epoch !== undefined ? { runId: this.runId, epoch: this.epoch } : undefined;
    try {
      const v = await verifyRedis(this.d, known);
      this.checkedAt = Date.now();
      if (generation !== this.generation) return this.state;
      if (v.status === 'verified') {
        if (!this.writable) this.d.log?.info({ runId: v.runId, epoch: v.epoch }, 'Redis verified against Postgres: writes open');
        this.state = 'verified';
        this.runId = v.runId;
        this.epoch = v.epoch;
        this.reason = '';
        this.lag = [];
      } else {
        if (this.state !== 'behind') this.d.log?.warn({ reason: v.reason, lag: v.lag }, 'Redis is behind Postgres: writes refused until rolled forward');
        this.state = 'behind';
        this.reason = v.reason;
        this.lag = v.lag;
      }
    } catch (err) {
      // no verdict (Redis unreachable, or Postgres unreachable for a Redis not known unchanged): closed
      if (generation === this.generation && this.state !== 'behind') {
        if (this.state === 'verified') this.d.log?.warn({ err }, 'Redis check failed: write gate closed');
        this.state = 'unverified';
        this.reason = `check failed: ${(err as Error).message}`;
      }
      this.checkedAt = Date.now();
    }
    return this.state;
  }

  /** Re-checks every `everyMs` (cheap while Redis is unchanged: INFO, GET, one Postgres row). */
  start(everyMs: number): void {
    this.timer = setInterval(() => void this.check(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Checks until writable or the deadline passes; true when writable. */
  async untilWritable(timeoutMs: number, pollMs = 100): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.check()) !== 'verified') {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    return true;
  }
}

/** 503 for a write while the gate is closed (a Redis not yet verified, or rolling forward). */
export function gateClosed(): DomainError {
  return new DomainError('SERVICE_UNAVAILABLE', 'Points are being brought up to date after a Redis recovery; retry shortly');
}

/**
 * Makes every write script on this connection check the gate right before it is sent. Read
 * scripts and plain commands are left alone; recovery (roll-forward, rebuild) uses its own,
 * ungated connection.
 *
 * Two checks. The script method refuses at the call, before anything is built. The connection's
 * sendCommand refuses again at the wire: a call that passed while the gate was open can still
 * reach sendCommand later (auto-pipelining sends on the next turn of the event loop, a pipeline
 * waits for the one before it, a NOSCRIPT resend goes straight to sendCommand, a cluster's
 * redirection sends again a command already written once, as EVAL), and by then the socket may
 * have died or the gate closed. Without the second check such a script would wait in ioredis's
 * offline queue, and ioredis sends that queue the moment the new connection is ready: ahead of
 * the gate's check, on a Redis that may be an older snapshot, where the script's outbox append
 * would even make the check pass. So a write script is written to a socket only on a ready
 * connection with the gate open, and is never queued offline.
 */
export function gateWrites(redis: RedisClient, gate: RedisGate): RedisClient {
  const target = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const scripts = (redis as unknown as { scriptsSet: Record<string, { sha: string; lua: string } | undefined> }).scriptsSet;
  // what a write script's command carries first: its SHA (EVALSHA), or its text once ioredis has
  // written it as EVAL to a socket that had not loaded it (a redirected or resent command keeps that)
  const writeScripts = new Set<string>();
  for (const name of WRITE_COMMANDS) {
    const script = scripts[name];
    if (script) writeScripts.add(script.sha).add(script.lua);
    const original = target[name];
    if (typeof original !== 'function') continue;
    // `this`, not `redis`: pipelines (auto-pipelining's included) call these methods on themselves
    // (src/redis/light-pipeline.ts), and the original must run on the pipeline
    target[name] = function (this: unknown, ...args: unknown[]) {
      if (!gate.writable || redis.status !== 'ready') return Promise.reject(gateClosed());
      return original.apply(this, args);
    };
  }
  const guard = (conn: Redis) => {
    const send = conn.sendCommand as (command: WireCommand, stream?: PipelineStream) => unknown;
    (conn as unknown as { sendCommand: typeof send }).sendCommand = function (this: Redis, command, stream) {
      const script = command.name === 'evalsha' || command.name === 'eval';
      if (script && writeScripts.has(command.args[0] as string) && !(gate.writable && wireReady(conn))) {
        command.reject(gateClosed());
        // a pipeline writes its buffer once every command has written: count this one as written
        if (stream?.isPipeline) stream.write('');
        return command.promise;
      }
      return send.call(this, command, stream);
    };
  };
  if (isCluster(redis)) {
    for (const node of redis.nodes()) guard(node);
    redis.on('+node', guard);
  } else {
    guard(redis);
  }
  return redis;
}

interface WireCommand {
  name: string;
  args: unknown[];
  reject(err: Error): void;
  promise: Promise<unknown>;
}
interface PipelineStream {
  isPipeline?: boolean;
  write(data: string): void;
}

/** What ioredis's sendCommand asks before it writes rather than queueing offline. */
function wireReady(conn: Redis): boolean {
  const stream = conn.stream as (typeof conn.stream & { _writableState?: { ended?: boolean } }) | undefined;
  return conn.status === 'ready' && !!stream?.writable && !stream._writableState?.ended;
}
