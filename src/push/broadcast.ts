/**
 * Admin broadcasts. Accepting one counts the segment and queues a plan job; the plan job pages
 * through the segment's members (up to the highest member id seen at acceptance, so members who
 * sign up later are not included) and queues one batch job per page; a batch job enqueues each
 * member's push with dedupeKey `broadcast:<id>:<member>`, so a batch delivered twice, or a plan
 * re-run that cut the pages differently, still records each member once.
 *
 * Segments (members only, never admins):
 *   'all'                    every member (members without a device get the inbox record)
 *   'members-with-devices'   members with at least one registered device
 *   { minBalance: n }        members whose persisted available balance is at least n
 *                            (point_accounts, which trails the live Redis balance by the persist lag)
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Sql } from '../db/client.ts';
import { BROADCAST_JOB_OPTIONS } from './jobs.ts';
import type { PushService } from './service.ts';

export type Segment = 'all' | 'members-with-devices' | { minBalance: number };

export interface BroadcastMessage {
  broadcastId: string;
  title: string;
  body: string;
}

export interface PlanJob extends BroadcastMessage {
  segment: Segment;
  maxUserId: number;
  batchSize: number;
}

export interface BatchJob extends BroadcastMessage {
  userIds: number[];
}

export type BroadcastJob = PlanJob | BatchJob;

export class Broadcasts {
  constructor(
    private readonly sql: Sql,
    private readonly queue: Queue<BroadcastJob>,
    private readonly push: PushService,
  ) {}

  /**
   * Counts the segment and queues the plan job. Given the id of an earlier acceptance (the admin
   * route replaying its Idempotency-Key), queues the same job id again, which BullMQ ignores
   * while the job is kept; after that each member is still recorded once by the dedupe key.
   */
  async accept(title: string, body: string, segment: Segment, batchSize: number, broadcastId: string = randomUUID()) {
    const [{ members, maxUserId }] = await this.sql<Array<{ members: number; maxUserId: number }>>`
      SELECT count(*) AS members, coalesce(max(u.id), 0) AS "maxUserId"
      FROM users u WHERE u.role = 'member' ${this.inSegment(segment)}`;
    if (members > 0) {
      const job: PlanJob = { broadcastId, title, body, segment, maxUserId, batchSize };
      await this.queue.add('plan', job, { ...BROADCAST_JOB_OPTIONS, jobId: `broadcast-${broadcastId}` });
    }
    return { broadcastId, members };
  }

  /** Queues the batch jobs; returns how many. Batch ids are stable, so a re-run adds nothing new. */
  async plan(job: PlanJob): Promise<number> {
    const { broadcastId, title, body, segment, maxUserId, batchSize } = job;
    let after = 0;
    let batches = 0;
    for (;;) {
      const rows = await this.sql<Array<{ id: number }>>`
        SELECT u.id FROM users u
        WHERE u.role = 'member' AND u.id > ${after} AND u.id <= ${maxUserId} ${this.inSegment(segment)}
        ORDER BY u.id LIMIT ${batchSize}`;
      if (rows.length === 0) return batches;
      const userIds = rows.map((r) => r.id);
      const batch: BatchJob = { broadcastId, title, body, userIds };
      await this.queue.add('batch', batch, { ...BROADCAST_JOB_OPTIONS, jobId: `broadcast-${broadcastId}-${userIds[0]}` });
      batches += 1;
      after = userIds[userIds.length - 1];
      if (rows.length < batchSize) return batches;
    }
  }

  /** Enqueues each member's push; returns how many members were recorded for the first time. */
  async runBatch(job: BatchJob): Promise<number> {
    let fresh = 0;
    for (const userId of job.userIds) {
      const { duplicate } = await this.push.enqueue(userId, {
        type: 'broadcast',
        title: job.title,
        body: job.body,
        data: { broadcastId: job.broadcastId },
        dedupeKey: `broadcast:${job.broadcastId}:${userId}`,
      });
      if (!duplicate) fresh += 1;
    }
    return fresh;
  }

  private inSegment(segment: Segment) {
    if (segment === 'all') return this.sql``;
    if (segment === 'members-with-devices') {
      return this.sql`AND EXISTS (SELECT 1 FROM devices d WHERE d.user_id = u.id)`;
    }
    return this.sql`AND EXISTS (
      SELECT 1 FROM point_accounts a WHERE a.user_id = u.id AND a.available >= ${segment.minBalance})`;
  }
}
