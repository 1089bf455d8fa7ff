/**
 * Reminders role: on its schedule, records and queues expiry reminders (and check-in nudges when
 * that rule is on); the push role delivers them.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Env } from '../src/config/env.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { PUSH_QUEUE, sendJobOptions, type SendJob } from '../src/push/jobs.ts';
import { PushService } from '../src/push/service.ts';
import { ReminderService } from '../src/reminders/service.ts';
import type { Logger } from './logger.ts';
import { startScheduledTask } from './scheduled-task.ts';

export async function startReminders(o: { connection: Redis; keys: Keys; sql: Sql; env: Env; log: Logger }) {
  const queue = new Queue<SendJob>(PUSH_QUEUE, { connection: o.connection, prefix: o.keys.queuePrefix() });
  const reminders = new ReminderService({
    sql: o.sql,
    redis: o.connection,
    keys: o.keys,
    pushes: new PushService(o.sql, queue, sendJobOptions(o.env)),
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
      if (result.expiryReminders + result.checkinReminders > 0) o.log.info(result, 'reminders queued');
      return result;
    },
  });
  return {
    close: async () => {
      await task.close();
      await queue.close();
    },
  };
}
