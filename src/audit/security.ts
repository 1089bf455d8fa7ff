/**
 * Security events from the login path: a burst of failed logins — LOGIN_BURST_FAILS failures for
 * one account or from one IP within a fixed window of LOGIN_BURST_WINDOW_MS — is one audit row
 * `security.login_failed_burst` per account or IP and window. Each failure counts in Redis (one
 * INCR per key); the failure that makes the count reach the threshold, and only that one, writes
 * the row, so a flood of failures costs Postgres one insert per window.
 *
 * Attempts refused by the login limits (src/auth/attempts.ts) count too: they are failures the
 * caller keeps making.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { AuditContext } from './context.ts';
import { recordAudit } from './log.ts';

export const LOGIN_BURST_FAILS = 5;
export const LOGIN_BURST_WINDOW_MS = 5 * 60_000;

export class LoginBurstWatch {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly sql: Sql,
  ) {}

  /** Counts one failed login of `email` from the context's IP; returns the bursts it completed. */
  async failed(email: string, ctx: AuditContext, now = Date.now()): Promise<Array<'account' | 'ip'>> {
    const window = Math.floor(now / LOGIN_BURST_WINDOW_MS);
    const windowStart = new Date(window * LOGIN_BURST_WINDOW_MS).toISOString();
    const subjects = [
      { kind: 'account' as const, key: this.keys.loginBurst({ email }, window), targetId: email.toLowerCase() },
      ...(ctx.ip ? [{ kind: 'ip' as const, key: this.keys.loginBurst({ ip: ctx.ip }, window), targetId: ctx.ip }] : []),
    ];
    // one transaction per counter: the account's and the IP's keys hash to different slots
    const counts = await Promise.all(
      subjects.map(async (s) => {
        const replies = await this.redis.multi().incr(s.key).pexpire(s.key, LOGIN_BURST_WINDOW_MS * 2).exec();
        if (!replies) throw new Error('login burst count: transaction aborted');
        return Number(replies[0][1]);
      }),
    );
    const reached = subjects.filter((_, i) => counts[i] === LOGIN_BURST_FAILS);
    for (const s of reached) {
      await recordAudit(
        this.sql,
        {
          actorId: null,
          action: 'security.login_failed_burst',
          targetType: s.kind === 'account' ? 'login_account' : 'login_ip',
          targetId: s.targetId,
          data: { failures: LOGIN_BURST_FAILS, windowStart, windowMs: LOGIN_BURST_WINDOW_MS },
        },
        ctx,
      );
    }
    return reached.map((s) => s.kind);
  }
}
