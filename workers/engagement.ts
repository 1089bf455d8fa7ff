/**
 * Engagement role: follows the persisted ledger and member events (src/rewards/follower.ts) every
 * ENGAGEMENT_EVERY_MS, deriving task progress and referral commissions and paying what they owe
 * through the points spine (task rewards multiplied by tier and campaign, referral money plain).
 * Any number of processes may carry the role: one derives at a time (the watermark row's lock),
 * payouts are paid under their own row locks.
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../src/redis/client.ts';
import type { Env } from '../src/config/env.ts';
import type { Sql } from '../src/db/client.ts';
import type { EngagementConfig } from '../src/engagement/config.ts';
import { PointsService } from '../src/points/service.ts';
import { RulesCache } from '../src/points/rules.ts';
import { PUSH_QUEUE, sendJobOptions, type SendJob } from '../src/push/jobs.ts';
import { PushService } from '../src/push/service.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import type { Keys } from '../src/redis/keys.ts';
import { EngagementFollower } from '../src/rewards/follower.ts';
import { PayoutService } from '../src/rewards/payouts.ts';
import type { Logger } from './logger.ts';
import type { RiskRules } from '../src/risk/rules.ts';

/** `writer`: the process's gated script connection; `connection`: the push queue's. */
export function startEngagement(o: {
  sql: Sql;
  writer: RedisClient;
  connection: RedisClient;
  gate: RedisGate;
  keys: Keys;
  env: Env;
  engagement: EngagementConfig;
  /** risk thresholds: the payouts count toward DAILY_GAIN (defaults when absent) */
  riskRules?: RiskRules;
  log: Logger;
}) {
  const { env, sql, keys, log } = o;
  const queue = new Queue<SendJob>(PUSH_QUEUE, { connection: o.connection, prefix: keys.queuePrefix(PUSH_QUEUE) });
  queue.on('error', (err) => log.warn({ err }, 'engagement push queue error'));
  // credits only: the earn rules are never consulted, so the cache is not loaded
  const points = new PointsService({ redis: o.writer, keys, sql, env }, new RulesCache(sql), o.engagement, o.riskRules);
  const payouts = new PayoutService({ sql, points, pushes: new PushService(sql, queue, sendJobOptions(env)), expiryDays: env.LOT_EXPIRY_DAYS, log });
  const follower = new EngagementFollower({
    sql,
    tz: env.BUSINESS_TIMEZONE,
    batch: env.ENGAGEMENT_BATCH,
    payouts,
    canPay: async () => o.gate.writable || (await o.gate.check()) === 'verified',
  });

  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (running) {
      try {
        const r = await follower.pass();
        if (r.ops + r.events + r.paid + r.failed > 0) log.info(r, 'engagement pass');
      } catch (err) {
        log.warn({ err }, 'engagement pass failed; retried on the next one');
      }
      if (!running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, env.ENGAGEMENT_EVERY_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  log.info({ everyMs: env.ENGAGEMENT_EVERY_MS }, 'engagement role started');
  return {
    /** Finishes the pass in flight (its page commits or not as a whole), then stops. */
    close: async () => {
      running = false;
      wake?.();
      await loop;
      await queue.close();
    },
  };
}
