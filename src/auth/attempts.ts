/**
 * Login and registration attempt limits, decided in Redis before any password is hashed.
 *
 * Each limit is a sliding window kept as a sorted set of attempt ids scored by time. An attempt
 * first adds itself, then counts the set (one MULTI per key, so nothing can slip between the two):
 * over the limit, it takes itself out again and is refused. However many attempts arrive at once,
 * at most `max` of them hold a slot, and only those reach argon2. A login that succeeds gives its
 * slot back, so only failures fill the window; a registration keeps its slot either way.
 *
 * Window times come from the API host's clock: a few ms of skew between hosts moves a window's
 * edge by as much, which a limit counted in minutes does not notice.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/client.ts';
import type { Env } from '../config/env.ts';
import type { Keys } from '../redis/keys.ts';

interface Window {
  key: string;
  max: number;
  windowMs: number;
}

export type Slot =
  | { ok: true; /** Gives the slot back (never throws). */ release(): Promise<void> }
  | { ok: false; retryAfterSeconds: number };

type Limits = Pick<
  Env,
  'LOGIN_FAILS_PER_IP' | 'LOGIN_FAILS_PER_ACCOUNT' | 'LOGIN_WINDOW_MS' | 'REGISTER_PER_IP' | 'REGISTER_WINDOW_MS'
>;

export class AuthAttempts {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly limits: Limits,
    /** RATE_LIMIT_ALLOWLIST: exempt from the per-IP windows, never from the per-account one. */
    private readonly exemptIp: (ip: string) => boolean,
  ) {}

  /** A slot for one login attempt, in the IP's and the account's failure windows. */
  login(ip: string, email: string): Promise<Slot> {
    const { LOGIN_FAILS_PER_IP, LOGIN_FAILS_PER_ACCOUNT, LOGIN_WINDOW_MS } = this.limits;
    const windows: Window[] = [
      { key: this.keys.loginFailsByAccount(email), max: LOGIN_FAILS_PER_ACCOUNT, windowMs: LOGIN_WINDOW_MS },
    ];
    if (!this.exemptIp(ip)) windows.push({ key: this.keys.loginFailsByIp(ip), max: LOGIN_FAILS_PER_IP, windowMs: LOGIN_WINDOW_MS });
    return this.reserve(windows);
  }

  /** A slot for one registration from this IP. */
  register(ip: string): Promise<Slot> {
    if (this.exemptIp(ip)) return this.reserve([]);
    const { REGISTER_PER_IP, REGISTER_WINDOW_MS } = this.limits;
    return this.reserve([{ key: this.keys.registrationsByIp(ip), max: REGISTER_PER_IP, windowMs: REGISTER_WINDOW_MS }]);
  }

  private async reserve(windows: Window[]): Promise<Slot> {
    const now = Date.now();
    const id = `${now}-${randomBytes(6).toString('hex')}`;
    const taken = await Promise.all(windows.map((w) => this.take(w, id, now)));
    const release = async () => {
      await Promise.all(windows.map((w) => this.redis.zrem(w.key, id))).catch(() => {
        // a slot that is not given back only ages out with its window
      });
    };
    const refused = taken.filter((t) => t.count > t.window.max);
    if (refused.length === 0) return { ok: true, release };
    await release();
    const freeAt = Math.max(...refused.map((t) => t.oldest + t.window.windowMs));
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((freeAt - now) / 1000)) };
  }

  /** Adds the attempt to one window; returns how many it holds now and when the oldest was made. */
  private async take(window: Window, id: string, now: number): Promise<{ window: Window; count: number; oldest: number }> {
    const { key, windowMs } = window;
    const replies = await this.redis
      .multi()
      .zremrangebyscore(key, '-inf', now - windowMs)
      .zadd(key, now, id)
      .zcard(key)
      .zrange(key, 0, 0, 'WITHSCORES')
      .pexpire(key, windowMs)
      .exec();
    if (!replies) throw new Error(`attempt window ${key}: transaction aborted`);
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    const count = replies[2][1] as number;
    const oldest = Number((replies[3][1] as string[])[1] ?? now);
    return { window, count, oldest };
  }
}
