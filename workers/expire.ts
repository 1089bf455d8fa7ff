/**
 * Expire role: on its schedule, expires every member whose earliest lot has passed its expiry.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../src/redis/keys.ts';
import { ExpiryService } from '../src/expiry/service.ts';
import type { Logger } from './logger.ts';
import { startScheduledTask } from './scheduled-task.ts';

export function startExpirer(o: { connection: Redis; keys: Keys; everyMs: number; batch: number; lockMs?: number; log: Logger }) {
  const expiry = new ExpiryService({ redis: o.connection, keys: o.keys });
  return startScheduledTask({
    name: 'expire-lots',
    everyMs: o.everyMs,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: async () => {
      const result = await expiry.expireDue({ batch: o.batch });
      if (result.members > 0) o.log.info(result, 'expired lots');
      return result;
    },
  });
}
