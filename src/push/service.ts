/**
 * Push records and their send jobs. The push_records table is the lasting history (what a member
 * sees under /v1/me/notifications, what an admin sees as the dead-letter list); BullMQ only
 * carries the work.
 *
 * enqueue() writes one record per registered device of the member and queues one send job per
 * record. A member with no device gets a single record with no device, stored as already 'sent':
 * the notification still reaches their in-app inbox, and no job is queued for it.
 *
 * The first record is the push's anchor (push_id null); the other devices' records carry its id in
 * push_id. A member's notifications list one entry per anchor, with the delivery of its group and
 * its opened state (kept on the anchor); admins see each record.
 *
 * Dedupe: with a dedupeKey, the first record (lowest device id, or the inbox record) carries the
 * key itself and the others `<key>:device:<id>`. The first insert decides, inside the transaction,
 * whether this push was recorded before — so a reminder or a broadcast member is recorded at most
 * once even if the member's devices changed in between. A repeat call re-adds the jobs of records
 * still pending, which covers a crash between the commit and the queueing.
 */
import type { JobsOptions, Queue } from 'bullmq';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { sendJobId, type SendJob } from './jobs.ts';

export type PushStatus = 'pending' | 'sent' | 'failed' | 'dead';

export interface PushInput {
  /** What kind of push this is, e.g. 'broadcast', 'expiry-reminder'. */
  type: string;
  title: string;
  body: string;
  data?: Record<string, string>;
  dedupeKey?: string;
}

export interface PushRecord {
  id: number;
  userId: number;
  deviceId: number | null;
  /** The push this record delivers to one more device (null: this record is the push). */
  pushId: number | null;
  type: string;
  title: string;
  body: string;
  data: Record<string, string>;
  status: PushStatus;
  error: string | null;
  attempts: number;
  createdAt: string;
  sentAt: string | null;
}

/** A push as its member sees it: one entry for all the devices it went to. */
export interface MemberPush {
  id: number;
  type: string;
  title: string;
  body: string;
  data: Record<string, string>;
  status: PushStatus;
  devices: number;
  createdAt: string;
  sentAt: string | null;
  opened: boolean;
  openedAt: string | null;
}

type MemberPushRow = Pick<MemberPush, 'id' | 'type' | 'title' | 'body' | 'data' | 'devices'> & {
  rank: number;
  createdAt: Date;
  sentAt: Date | null;
  openedAt: Date | null;
};

const STATUS_BY_RANK: readonly PushStatus[] = ['sent', 'pending', 'failed', 'dead'];

type PushRow = Omit<PushRecord, 'createdAt' | 'sentAt'> & { createdAt: Date; sentAt: Date | null };

/**
 * The records still pending delivery of the pushes recorded under `keys`: each key's anchor (the
 * only record carrying the key itself; the others carry `<key>:device:<id>`) and its other devices'
 * records (push_id = the anchor). What a repeated call queues again, in case the first one died
 * between its commit and its queueing. Found through the dedupe key alone (no anchor condition
 * that a plan might serve from the anchors' time index).
 */
async function pendingOf(tx: Tx, keys: string[]): Promise<number[]> {
  const rows = await tx<Array<{ id: number }>>`
    SELECT r.id FROM push_records a
    CROSS JOIN LATERAL (
      SELECT a.id, a.status, a.device_id
      UNION ALL SELECT d.id, d.status, d.device_id FROM push_records d WHERE d.push_id = a.id) r
    WHERE a.dedupe_key = ANY(${keys}::text[]) AND r.status = 'pending' AND r.device_id IS NOT NULL
    ORDER BY r.id`;
  return rows.map((r) => r.id);
}

export class PushService {
  constructor(
    private readonly sql: Sql,
    private readonly queue: Queue<SendJob>,
    private readonly jobOptions: JobsOptions,
  ) {}

  async enqueue(userId: number, input: PushInput): Promise<{ recordIds: number[]; duplicate: boolean }> {
    const key = input.dedupeKey ?? null;
    const data = this.sql.json(input.data ?? {});
    const { created, pending, duplicate } = await this.sql.begin(async (tx) => {
      const devices = await tx<Array<{ id: number }>>`SELECT id FROM devices WHERE user_id = ${userId} ORDER BY id`;
      const [first, ...rest] = devices.length > 0 ? devices.map((d) => d.id) : [null];
      const inbox = first === null;
      const anchor = await tx<Array<{ id: number }>>`
        INSERT INTO push_records (user_id, device_id, type, title, body, data, dedupe_key, status, sent_at)
        VALUES (${userId}, ${first}, ${input.type}, ${input.title}, ${input.body}, ${data}, ${key},
                ${inbox ? 'sent' : 'pending'}, CASE WHEN ${inbox}::boolean THEN now() END)
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`;
      if (anchor.length === 0) return { created: [], pending: await pendingOf(tx, [key!]), duplicate: true };
      const others = await tx<Array<{ id: number }>>`
        INSERT INTO push_records (user_id, device_id, type, title, body, data, dedupe_key, push_id)
        SELECT ${userId}, d.id, ${input.type}, ${input.title}, ${input.body}, ${data},
               CASE WHEN ${key}::text IS NULL THEN NULL ELSE ${key}::text || ':device:' || d.id END, ${anchor[0].id}::bigint
        FROM unnest(${rest}::bigint[]) AS d(id)
        RETURNING id`;
      const created = [anchor[0].id, ...others.map((r) => r.id)];
      return { created, pending: inbox ? [] : created, duplicate: false };
    });
    await this.queueSends(pending);
    return { recordIds: created, duplicate };
  }

  /**
   * enqueue() for many members at once, each push with a dedupe key: one transaction and one
   * bulk queueing for the lot, so a follow-up of a whole persist batch costs three statements,
   * not a transaction per op. Same records and dedupe as enqueue(); returns how many pushes were
   * recorded for the first time.
   */
  async enqueueMany(pushes: Array<PushInput & { userId: number; dedupeKey: string }>): Promise<number> {
    if (pushes.length === 0) return 0;
    // one row per key, in key order: concurrent batches then take the unique index in one order
    const list = [...new Map(pushes.map((p) => [p.dedupeKey, p])).values()].sort((a, b) => (a.dedupeKey < b.dedupeKey ? -1 : 1));
    const { pending, fresh } = await this.sql.begin(async (tx) => {
      const anchors = await tx<Array<{ id: number; deviceId: number | null; dedupeKey: string }>>`
        INSERT INTO push_records (user_id, device_id, type, title, body, data, dedupe_key, status, sent_at)
        SELECT t.user_id, d.device_id, t.type, t.title, t.body, t.data::jsonb, t.dedupe_key,
               CASE WHEN d.device_id IS NULL THEN 'sent' ELSE 'pending' END,
               CASE WHEN d.device_id IS NULL THEN now() END
        FROM unnest(${list.map((p) => p.userId)}::bigint[], ${list.map((p) => p.type)}::text[], ${list.map((p) => p.title)}::text[],
                    ${list.map((p) => p.body)}::text[], ${list.map((p) => JSON.stringify(p.data ?? {}))}::text[],
                    ${list.map((p) => p.dedupeKey)}::text[]) WITH ORDINALITY AS t(user_id, type, title, body, data, dedupe_key, n)
        CROSS JOIN LATERAL (SELECT min(id) AS device_id FROM devices WHERE user_id = t.user_id) d
        ORDER BY t.n
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id, device_id AS "deviceId", dedupe_key AS "dedupeKey"`;
      const withDevice = anchors.filter((a) => a.deviceId !== null).map((a) => a.id);
      // members without a device (in-app notices only) have no other devices' records to add
      const others =
        withDevice.length === 0
          ? []
          : await tx<Array<{ id: number }>>`
              INSERT INTO push_records (user_id, device_id, type, title, body, data, dedupe_key, push_id)
              SELECT a.user_id, d.id, a.type, a.title, a.body, a.data, a.dedupe_key || ':device:' || d.id, a.id
              FROM push_records a JOIN devices d ON d.user_id = a.user_id AND d.id > a.device_id
              WHERE a.id = ANY(${withDevice}::bigint[])
              ORDER BY a.id, d.id
              RETURNING id`;
      // keys recorded before: re-queue what is still pending (a crash between commit and queueing)
      const seen = new Set(anchors.map((a) => a.dedupeKey));
      const repeated = list.filter((p) => !seen.has(p.dedupeKey));
      const again = repeated.length === 0 ? [] : await pendingOf(tx, repeated.map((p) => p.dedupeKey));
      return { pending: [...withDevice, ...others.map((o) => o.id), ...again], fresh: anchors.length };
    });
    await this.queueSends(pending);
    return fresh;
  }

  /**
   * The member's pushes, newest first: one entry per push whatever the number of devices. Its
   * status is the best of its records' (sent, then pending, failed, dead); sentAt the first send.
   */
  async listForMember(userId: number, limit: number, cursor?: string): Promise<{ items: MemberPush[]; nextCursor: string | null }> {
    const after = cursor ? decodeCursor(cursor) : null;
    if (after && !/^\d+$/.test(after.id)) return { items: [], nextCursor: null };
    const rows = await this.sql<MemberPushRow[]>`
      SELECT a.id, a.type, a.title, a.body, a.data, a.created_at AS "createdAt", a.opened_at AS "openedAt",
             g.devices, g.rank, g."sentAt"
      FROM push_records a
      CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE r.device_id IS NOT NULL)::int AS devices,
               min(CASE r.status WHEN 'sent' THEN 0 WHEN 'pending' THEN 1 WHEN 'failed' THEN 2 ELSE 3 END)::int AS rank,
               min(r.sent_at) AS "sentAt"
        FROM (SELECT device_id, status, sent_at FROM push_records WHERE id = a.id
              UNION ALL SELECT device_id, status, sent_at FROM push_records WHERE push_id = a.id) r
      ) g
      WHERE a.user_id = ${userId} AND a.push_id IS NULL
      ${after ? this.sql`AND (a.created_at, a.id) < (SELECT created_at, id FROM push_records WHERE id = ${Number(after.id)})` : this.sql``}
      ORDER BY a.created_at DESC NULLS LAST, a.id DESC NULLS LAST LIMIT ${limit + 1}`;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(({ rank, createdAt, sentAt, openedAt, ...r }) => ({
        ...r,
        status: STATUS_BY_RANK[rank],
        createdAt: createdAt.toISOString(),
        sentAt: sentAt?.toISOString() ?? null,
        opened: openedAt !== null,
        openedAt: openedAt?.toISOString() ?? null,
      })),
      nextCursor: rows.length > limit ? encodeCursor(last.createdAt.getTime(), last.id) : null,
    };
  }

  /**
   * Marks the member's push opened, once: the first open's time stays. `id` is the push (its
   * anchor) or any of its device records. Another member's push is PUSH_NOT_FOUND.
   */
  async markOpened(userId: number, id: number): Promise<{ id: number; opened: true; openedAt: string }> {
    const [row] = await this.sql<Array<{ id: number; openedAt: Date }>>`
      UPDATE push_records a SET opened_at = coalesce(a.opened_at, now())
      FROM push_records r
      WHERE r.id = ${id} AND r.user_id = ${userId} AND a.id = coalesce(r.push_id, r.id)
      RETURNING a.id, a.opened_at AS "openedAt"`;
    if (!row) throw new DomainError('PUSH_NOT_FOUND', `Notification ${id} not found`);
    return { id: row.id, opened: true, openedAt: row.openedAt.toISOString() };
  }

  /**
   * Records of one status (all without), newest first. The status is written into the statement,
   * not bound: a prepared statement's generic plan cannot tell a bound status from 'sent', so it
   * could not use the index of undelivered records (push_records_undelivered, status <> 'sent').
   */
  listByStatus(status: PushStatus | undefined, limit: number, cursor?: string) {
    const where = {
      pending: () => this.sql`status = 'pending'`,
      failed: () => this.sql`status = 'failed'`,
      dead: () => this.sql`status = 'dead'`,
      sent: () => this.sql`status = 'sent'`,
    } satisfies Record<PushStatus, () => ReturnType<Sql>>;
    return this.list(status ? where[status]() : this.sql`TRUE`, limit, cursor);
  }

  /**
   * Gives a dead record a fresh retry budget: back to 'pending'. `db` is the transaction of the
   * admin's Idempotency-Key, so the key and the change commit together; queueRetry() releases the
   * job after the commit (the worker skips records that are not pending or failed, so a job
   * released before the commit could find the record still dead and finish without sending).
   */
  async markForRetry(id: number, db: Sql | Tx = this.sql): Promise<void> {
    const [rec] = await db<Array<{ id: number }>>`
      UPDATE push_records SET status = 'pending', error = NULL
      WHERE id = ${id} AND status = 'dead' AND device_id IS NOT NULL RETURNING id`;
    if (!rec) {
      const [row] = await db<Array<{ status: PushStatus }>>`SELECT status FROM push_records WHERE id = ${id}`;
      if (!row) throw new DomainError('PUSH_NOT_FOUND', `Push ${id} not found`);
      throw new DomainError('PUSH_NOT_DEAD', `Push ${id} is ${row.status}; only dead pushes can be retried`);
    }
  }

  /**
   * Releases the send job of a record marked for retry. Safe to repeat (a replayed request runs
   * it again): once the record has moved on (sent, dead again) or its job is queued, it does nothing.
   */
  async queueRetry(id: number): Promise<void> {
    const [rec] = await this.sql<Array<{ status: PushStatus; attempts: number }>>`
      SELECT status, attempts FROM push_records WHERE id = ${id}`;
    if (rec?.status !== 'pending') return;
    const job = await this.queue.getJob(sendJobId(id));
    const state = job ? await job.getState() : null;
    if (job && (state === 'failed' || state === 'completed')) {
      await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
    } else if (!job || state === 'unknown') {
      // the original job aged out; attempts only grow, so this id is new for every retry
      await this.queue.add('send', { recordId: id }, { ...this.jobOptions, jobId: `${sendJobId(id)}-r${rec.attempts}` });
    }
    // any other state: the job is still queued and will pick the record up as pending
  }

  private async queueSends(recordIds: number[]): Promise<void> {
    if (recordIds.length === 0) return;
    await this.queue.addBulk(
      recordIds.map((recordId) => ({
        name: 'send',
        data: { recordId },
        opts: { ...this.jobOptions, jobId: sendJobId(recordId) },
      })),
    );
  }

  /**
   * Newest first. created_at has microseconds, more than a millisecond cursor can carry, so the
   * cursor names the last record and the query compares against that record's own row.
   */
  private async list(where: ReturnType<Sql>, limit: number, cursor?: string) {
    const after = cursor ? decodeCursor(cursor) : null;
    if (after && !/^\d+$/.test(after.id)) return { items: [], nextCursor: null };
    const rows = await this.sql<PushRow[]>`
      SELECT id, user_id AS "userId", device_id AS "deviceId", push_id AS "pushId", type, title, body, data, status, error, attempts,
             created_at AS "createdAt", sent_at AS "sentAt"
      FROM push_records WHERE ${where}
      ${after ? this.sql`AND (created_at, id) < (SELECT created_at, id FROM push_records WHERE id = ${Number(after.id)})` : this.sql``}
      ORDER BY created_at DESC NULLS LAST, id DESC NULLS LAST LIMIT ${limit + 1}`;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r): PushRecord => ({ ...r, createdAt: r.createdAt.toISOString(), sentAt: r.sentAt?.toISOString() ?? null })),
      nextCursor: rows.length > limit ? encodeCursor(last.createdAt.getTime(), last.id) : null,
    };
  }
}
