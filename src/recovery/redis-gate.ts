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
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { Keys } from '../redis/keys.ts';
import type { Lag } from './watermark.ts';
import { verifyRedis } from './redis-epoch.ts';

export type GateState = 'unverified' | 'verified' | 'behind';

export interface GateLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Script commands that write; read-only ones (balance) pass while the gate is closed. */
export const WRITE_COMMANDS = [
  'pmEarn', 'pmCharge', 'pmReserve', 'pmConfirm', 'pmRelease', 'pmAbort', 'pmHydrate', 'pmGoodsSet',
  'pmRestock', 'pmExpire', 'pmLeaderboard', 'pmRepairStock', 'pmRepairBalance', 'pmCheckin',
  'pmLotteryReserve', 'pmLotteryDraw', 'pmLotteryRelease', 'pmLotterySet', 'pmHold', 'pmHoldSettle', 'pmRefund', 'pmTake', 'pmGiveBack', 'pmRiskSet',
  'pmTransferDebit', 'pmTransferCredit', 'pmTransferDone', 'pmHotReserve', 'pmHotCharge', 'pmHotRelease',
  'pmHotReturn', 'pmHotUncount',
] as const;

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

  constructor(private readonly d: { redis: Redis; keys: Keys; sql: Sql; log?: GateLog }) {}

  get writable(): boolean {
    return this.state === 'verified';
  }

  /** Closes the gate whenever this connection drops, and checks again once it is back. */
  watch(conn: Redis): void {
    conn.on('close', () => this.invalidate('Redis connection lost'));
    conn.on('ready', () => void this.check());
  }

  invalidate(reason: string): void {
    this.generation++;
    if (this.state === 'verified') this.d.log?.warn({ reason }, 'Redis write gate closed');
    this.state = 'unverified';
    this.reason = reason;
  }

  assertWritable(): void {
    if (!this.writable) {
      throw new DomainError('SERVICE_UNAVAILABLE', 'Points are being brought up to date after a Redis recovery; retry shortly');
    }
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

/**
 * Makes every write script on this connection check the gate right before it is sent. Read
 * scripts and plain commands are left alone; recovery (roll-forward, rebuild) uses its own,
 * ungated connection.
 */
export function gateWrites(redis: Redis, gate: RedisGate): Redis {
  const target = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of WRITE_COMMANDS) {
    const original = target[name];
    if (typeof original !== 'function') continue;
    // `this`, not `redis`: ioredis copies these methods onto the pipelines it builds (auto-
    // pipelining included), which must run the original on themselves. Only on a ready
    // connection: a command sent otherwise would wait in the offline queue and run right after a
    // reconnect, ahead of the check.
    target[name] = function (this: unknown, ...args: unknown[]) {
      if (!gate.writable || redis.status !== 'ready') {
        return Promise.reject(
          new DomainError('SERVICE_UNAVAILABLE', 'Points are being brought up to date after a Redis recovery; retry shortly'),
        );
      }
      return original.apply(this, args);
    };
  }
  return redis;
}
