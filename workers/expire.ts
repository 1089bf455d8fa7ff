/**
 * Expire role: on its schedule, expires every member whose earliest lot has passed its expiry.
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import { ExpiryService } from '../src/expiry/service.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import type { Logger } from './logger.ts';
import { gatedRun, startScheduledTask } from './scheduled-task.ts';

/** `writer`: the process's gated script connection; `connection`: BullMQ's. */
export function startExpirer(o: {
  connection: RedisClient;
  writer: RedisClient;
  gate: RedisGate;
  keys: Keys;
  everyMs: number;
  batch: number;
  lockMs?: number;
  log: Logger;
}) {
  const expiry = new ExpiryService({ redis: o.writer, keys: o.keys });
  return startScheduledTask({
    name: 'expire-lots',
    everyMs: o.everyMs,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: gatedRun(o.gate, async () => {
      const result = await expiry.expireDue({ batch: o.batch });
      if (result.members > 0) o.log.info(result, 'expired lots');
      return result;
    }),
  });
}
