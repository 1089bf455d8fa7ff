/**
 * Push worker role: delivers push records through the configured transport, and runs broadcast
 * plan and batch jobs.
 *
 * A send job loads its record and device, sends, and writes the outcome on the record: 'sent'
 * (+ sent_at), or 'failed' with the error while retries remain, or 'dead' once the budget is
 * spent or the failure cannot pass on retry (bad payload, dead token, device gone) — those throw
 * BullMQ's UnrecoverableError so the job stops at once. A dead token also removes the device.
 * BullMQ may deliver a job twice; a record already 'sent' or 'dead' is skipped, so a redelivery
 * after the outcome was written sends nothing. (A crash between the provider's answer and that
 * write can still send twice: providers offer no idempotency key.)
 */
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Env } from '../src/config/env.ts';
import type { Sql } from '../src/db/client.ts';
import { Broadcasts, type BatchJob, type BroadcastJob, type PlanJob } from '../src/push/broadcast.ts';
import { BROADCAST_QUEUE, PUSH_QUEUE, sendJobOptions, type SendJob } from '../src/push/jobs.ts';
import { PushService } from '../src/push/service.ts';
import { createTransport } from '../src/push/transports/router.ts';
import { PushDeliveryError, type Platform, type PushTransport } from '../src/push/transports/types.ts';
import { createRedis } from '../src/redis/client.ts';
import type { Logger } from './logger.ts';

interface Delivery {
  id: number;
  userId: number;
  deviceId: number | null;
  status: string;
  title: string;
  body: string;
  data: Record<string, string>;
  platform: Platform | null;
  token: string | null;
  deviceUserId: number | null;
}

export function startPushWorker(o: {
  env: Env;
  sql: Sql;
  /** BullMQ's prefix of each queue (Keys.queuePrefix) */
  prefix: (queue: string) => string;
  concurrency: number;
  log: Logger;
  /** Defaults to the transports PUSH_TRANSPORT names. */
  transport?: PushTransport;
}) {
  const { sql, log, prefix } = o;
  const transport = o.transport ?? createTransport(o.env, log);
  const queueConnection = createRedis(o.env, 'worker');
  const workerConnection = createRedis(o.env, 'worker');
  const pushQueue = new Queue<SendJob>(PUSH_QUEUE, { connection: queueConnection, prefix: prefix(PUSH_QUEUE) });
  const broadcastQueue = new Queue<BroadcastJob>(BROADCAST_QUEUE, { connection: queueConnection, prefix: prefix(BROADCAST_QUEUE) });
  const broadcasts = new Broadcasts(sql, broadcastQueue, new PushService(sql, pushQueue, sendJobOptions(o.env)));

  const markDead = (id: number, error: string) =>
    sql`UPDATE push_records SET status = 'dead', error = ${error}, attempts = attempts + 1 WHERE id = ${id}`;

  async function deliver(job: Job<SendJob>): Promise<string> {
    const [rec] = await sql<Delivery[]>`
      SELECT r.id, r.user_id AS "userId", r.device_id AS "deviceId", r.status, r.title, r.body, r.data,
             d.platform, d.token, d.user_id AS "deviceUserId"
      FROM push_records r LEFT JOIN devices d ON d.id = r.device_id
      WHERE r.id = ${job.data.recordId}`;
    if (!rec || rec.status === 'sent' || rec.status === 'dead') return 'skipped';
    // removed, or re-registered by another member since: this member's push must not reach it
    if (rec.platform === null || rec.token === null || rec.deviceUserId !== rec.userId) {
      await markDead(rec.id, 'device no longer registered to this member');
      throw new UnrecoverableError('device no longer registered to this member');
    }
    try {
      await transport.send({
        device: { platform: rec.platform, token: rec.token },
        title: rec.title,
        body: rec.body,
        data: rec.data,
      });
    } catch (err) {
      const e =
        err instanceof PushDeliveryError
          ? err
          : new PushDeliveryError(err instanceof Error ? err.message : String(err), { retryable: true });
      if (e.deadToken) {
        await sql`DELETE FROM devices WHERE id = ${rec.deviceId} AND token = ${rec.token}`;
        log.info({ recordId: rec.id, deviceId: rec.deviceId }, 'removed device with a dead token');
      }
      const budgetSpent = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const status = !e.retryable || budgetSpent ? 'dead' : 'failed';
      await sql`UPDATE push_records SET status = ${status}, error = ${e.message}, attempts = attempts + 1 WHERE id = ${rec.id}`;
      throw e.retryable ? e : new UnrecoverableError(e.message);
    }
    await sql`UPDATE push_records SET status = 'sent', sent_at = now(), error = NULL, attempts = attempts + 1 WHERE id = ${rec.id}`;
    return 'sent';
  }

  const sender = new Worker<SendJob>(PUSH_QUEUE, deliver, {
    connection: workerConnection,
    prefix: prefix(PUSH_QUEUE),
    concurrency: o.concurrency,
  });
  sender.on('failed', (job, err) =>
    log.warn({ jobId: job?.id, recordId: job?.data.recordId, attempts: job?.attemptsMade, err: err.message }, 'push failed'),
  );
  sender.on('error', (err) => log.error({ err }, 'push worker error'));

  const fanOut = new Worker<BroadcastJob>(
    BROADCAST_QUEUE,
    async (job) => {
      if (job.name === 'plan') return broadcasts.plan(job.data as PlanJob);
      if (job.name === 'batch') return broadcasts.runBatch(job.data as BatchJob);
      throw new UnrecoverableError(`unknown broadcast job ${job.name}`);
    },
    { connection: workerConnection, prefix: prefix(BROADCAST_QUEUE), concurrency: o.concurrency },
  );
  fanOut.on('failed', (job, err) => log.warn({ jobId: job?.id, err: err.message }, 'broadcast job failed'));
  fanOut.on('error', (err) => log.error({ err }, 'broadcast worker error'));

  let closing: Promise<void> | null = null;
  return {
    close: () =>
      (closing ??= (async () => {
        await Promise.all([sender.close(), fanOut.close()]);
        await Promise.all([pushQueue.close(), broadcastQueue.close(), transport.close?.()]);
        queueConnection.disconnect();
        workerConnection.disconnect();
      })()),
  };
}
