/**
 * Reservation sweeper: settles reservations past their deadline — confirmed if their op was
 * charged, released otherwise — on a BullMQ job schedule, one run at a time.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../src/redis/keys.ts';
import type { RedemptionService } from '../src/redemptions/service.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import type { Logger } from './logger.ts';
import { gatedRun, startScheduledTask } from './scheduled-task.ts';

export function startSweeper(o: {
  connection: Redis;
  keys: Keys;
  redemptions: RedemptionService;
  gate: RedisGate;
  everyMs: number;
  lockMs?: number;
  log: Logger;
}) {
  return startScheduledTask({
    name: 'sweep-reservations',
    everyMs: o.everyMs,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: gatedRun(o.gate, async () => {
      const result = await o.redemptions.sweep();
      if (result.confirmed + result.released > 0) o.log.info(result, 'settled expired reservations');
      return result;
    }),
  });
}
