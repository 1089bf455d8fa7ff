/**
 * Sweeper: settles what a crashed API left between saga steps, past its deadline — reservations
 * of redemptions and prize holds of lottery draws: confirmed if their op was charged, released
 * otherwise; transfers debited and not credited: credited (at most once) — on a BullMQ job
 * schedule, one run at a time.
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import type { LotteryService } from '../src/lottery/service.ts';
import type { RedemptionService } from '../src/redemptions/service.ts';
import type { TransferService } from '../src/transfers/service.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import type { Logger } from './logger.ts';
import { gatedRun, startScheduledTask } from './scheduled-task.ts';

export function startSweeper(o: {
  connection: RedisClient;
  keys: Keys;
  redemptions: RedemptionService;
  lottery: LotteryService;
  transfers: TransferService;
  gate: RedisGate;
  everyMs: number;
  /** a transfer still pending this long after its debit is credited here (RESERVATION_TIMEOUT_MS) */
  transferGraceMs: number;
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
      const reservations = await o.redemptions.sweep();
      if (reservations.confirmed + reservations.released > 0) o.log.info(reservations, 'settled expired reservations');
      const prizeHolds = await o.lottery.sweep();
      if (prizeHolds.confirmed + prizeHolds.released > 0) o.log.info(prizeHolds, 'settled expired lottery prize holds');
      const transfers = await o.transfers.completePending(o.transferGraceMs);
      if (transfers.credited + transfers.alreadyCredited + transfers.failed > 0) o.log.info(transfers, 'completed pending transfers');
      return { reservations, prizeHolds, transfers };
    }),
  });
}
