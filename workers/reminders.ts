/**
 * Reminders role: on its schedule, records and queues expiry reminders (and check-in nudges when
 * that rule is on); the push role delivers them.
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../src/redis/client.ts';
import type { Env } from '../src/config/env.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { BROADCAST_QUEUE, PUSH_QUEUE, sendJobOptions, type SendJob } from '../src/push/jobs.ts';
import { Broadcasts, type BroadcastJob } from '../src/push/broadcast.ts';
import { CampaignService } from '../src/engagement/campaigns.ts';
import type { EngagementConfig } from '../src/engagement/config.ts';
import { notifyStartedCampaigns } from '../src/engagement/notices.ts';
import { PushService } from '../src/push/service.ts';
import { ReminderService } from '../src/reminders/service.ts';
import type { CheckinService } from '../src/engagement/checkin.ts';
import type { Logger } from './logger.ts';
import { startScheduledTask } from './scheduled-task.ts';

export async function startReminders(o: {
  connection: RedisClient;
  keys: Keys;
  sql: Sql;
  env: Env;
  log: Logger;
  /** the member's check-in state, for the streak in the reminder's text */
  checkins: Pick<CheckinService, 'nextCheckin'>;
  engagement: EngagementConfig;
}) {
  const queue = new Queue<SendJob>(PUSH_QUEUE, { connection: o.connection, prefix: o.keys.queuePrefix(PUSH_QUEUE) });
  const pushes = new PushService(o.sql, queue, sendJobOptions(o.env));
  const broadcastQueue = new Queue<BroadcastJob>(BROADCAST_QUEUE, { connection: o.connection, prefix: o.keys.queuePrefix(BROADCAST_QUEUE) });
  // an unheard 'error' event would throw out of the queue's emitter and end the process
  for (const q of [queue, broadcastQueue]) q.on('error', (err) => o.log.warn({ err, queue: q.name }, 'reminders queue error'));
  const broadcasts = new Broadcasts(o.sql, broadcastQueue, pushes);
  const campaigns = new CampaignService(o.sql, o.engagement);
  const reminders = new ReminderService({
    sql: o.sql,
    redis: o.connection,
    keys: o.keys,
    pushes,
    checkins: o.checkins,
    timeZone: o.env.BUSINESS_TIMEZONE,
  });
  const task = await startScheduledTask({
    name: 'reminders',
    everyMs: o.env.REMINDERS_EVERY_MS,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.env.TASK_LOCK_MS,
    run: async () => {
      const result = await reminders.run();
      const campaignsAnnounced = await notifyStartedCampaigns(o.sql, campaigns, broadcasts, o.env.BROADCAST_BATCH);
      if (result.expiryReminders + result.checkinReminders + campaignsAnnounced > 0) {
        o.log.info({ ...result, campaignsAnnounced }, 'reminders queued');
      }
      return { ...result, campaignsAnnounced };
    },
  });
  return {
    close: async () => {
      await task.close();
      await queue.close();
      await broadcastQueue.close();
    },
  };
}
