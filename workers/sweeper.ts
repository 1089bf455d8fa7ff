/**
 * Reservation sweeper: a BullMQ job scheduler fires one sweep per interval (one run at a time,
 * however many worker processes are up); the sweep settles reservations past their deadline —
 * confirmed if their op was charged, released otherwise.
 */
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedemptionService } from '../src/redemptions/service.ts';
import { MAINTENANCE_QUEUE } from '../src/queues.ts';
import type { Logger } from './logger.ts';

export const SWEEP_SCHEDULER_ID = 'sweep-reservations';

export async function startSweeper(o: {
  connection: Redis;
  prefix: string;
  redemptions: RedemptionService;
  everyMs: number;
  log: Logger;
}) {
  const queue = new Queue(MAINTENANCE_QUEUE, { connection: o.connection, prefix: o.prefix });
  await queue.upsertJobScheduler(
    SWEEP_SCHEDULER_ID,
    { every: o.everyMs },
    { name: 'sweep', opts: { removeOnComplete: 100, removeOnFail: 100 } },
  );
  const worker = new Worker(
    MAINTENANCE_QUEUE,
    async (job) => {
      if (job.name !== 'sweep') return null;
      const result = await o.redemptions.sweep();
      if (result.confirmed + result.released > 0) o.log.info(result, 'settled expired reservations');
      return result;
    },
    { connection: o.connection, prefix: o.prefix, concurrency: 1 },
  );
  worker.on('error', (err) => o.log.error({ err }, 'sweeper error'));
  return {
    close: async () => {
      await worker.close();
      await queue.close();
    },
  };
}
