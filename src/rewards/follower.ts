/**
 * The engagement role's follower: reads the persisted ledger (ledger_entries) and member_events by
 * id, in pages, and derives what they cause — task progress and completions (src/tasks/progress.ts),
 * commissions and their reversals (src/referrals/commissions.ts) — then pays what is owed
 * (src/rewards/payouts.ts).
 *
 * Exactly once per row:
 *   - The watermark (engagement_watermarks, one row) says how far both streams have been derived.
 *     A page is derived in ONE transaction that holds the watermark row FOR UPDATE, writes what the
 *     page derived (progress, completions, payouts) and moves the watermark past it. A follower
 *     killed mid-page commits nothing; a second follower skips the locked row and waits its turn,
 *     then reads the moved watermark. So no row is derived twice, and none is skipped:
 *   - Rows are read only up to a horizon below which no transaction can still commit a row. Ids
 *     are handed out at insert but become visible at commit, so a batch that took lower ids can
 *     commit after one that took higher ids; reading past the lower ones would skip them for ever.
 *     Every persist batch holds the epoch lock shared (src/recovery/redis-epoch.ts) and every
 *     member event writer holds EVENTS_LOCK shared until commit: taking both exclusively for the
 *     instant of reading max(id) waits for the transactions in flight and sees their rows; any
 *     later transaction gets higher ids. (Reconcile's `adjust` rows are written without the epoch
 *     lock; nothing here counts them.)
 */
import type { Sql } from '../db/client.ts';
import { EPOCH_LOCK } from '../recovery/redis-epoch.ts';
import { applyCommissions } from '../referrals/commissions.ts';
import { applyTaskProgress, occurrencesOfEvent, occurrencesOfOp, type FollowedEvent, type FollowedOp } from '../tasks/progress.ts';
import { EVENTS_LOCK } from './events.ts';
import type { PayoutService } from './payouts.ts';

const WATERMARK = 'engagement';

export interface Horizon {
  ledger: number;
  events: number;
}

export interface PageResult {
  ops: number;
  events: number;
  completions: number;
  commissions: number;
  caughtUp: boolean;
}

export interface PassResult {
  ops: number;
  events: number;
  completions: number;
  commissions: number;
  paid: number;
  failed: number;
  /** Another follower held the watermark: this pass derived nothing. */
  busy: boolean;
}

export class EngagementFollower {
  private started = false;

  constructor(
    private readonly d: {
      sql: Sql;
      tz: string;
      batch: number;
      payouts: PayoutService;
      /** Whether Redis may be written now (the process's write gate); payouts wait while not. */
      canPay: () => Promise<boolean>;
    },
  ) {}

  /** Derives everything persisted so far, then pays what is owed. */
  async pass(): Promise<PassResult> {
    const out: PassResult = { ops: 0, events: 0, completions: 0, commissions: 0, paid: 0, failed: 0, busy: false };
    if (await this.behind()) {
      const h = await this.horizon();
      for (;;) {
        const page = await this.derivePage(h);
        if (page === null) {
          out.busy = true;
          break;
        }
        out.ops += page.ops;
        out.events += page.events;
        out.completions += page.completions;
        out.commissions += page.commissions;
        if (page.caughtUp) break;
      }
    }
    if (await this.d.canPay()) {
      const paid = await this.d.payouts.payPending(this.d.batch);
      out.paid = paid.paid;
      out.failed = paid.failed;
    }
    return out;
  }

  /**
   * Ids up to which every transaction that could write a followed row has ended. One stream at a
   * time, so persist batches and member-event writers never both wait on this.
   */
  async horizon(): Promise<Horizon> {
    const upTo = (lock: number, table: 'ledger_entries' | 'member_events') =>
      this.d.sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${lock})`;
        const [{ id }] = await tx<Array<{ id: number }>>`SELECT COALESCE(max(id), 0)::bigint AS id FROM ${tx(table)}`;
        return id;
      });
    return { ledger: await upTo(EPOCH_LOCK, 'ledger_entries'), events: await upTo(EVENTS_LOCK, 'member_events') };
  }

  /** One page of both streams, derived and the watermark moved in one transaction; null when another follower has it. */
  async derivePage(h: Horizon): Promise<PageResult | null> {
    const { tz, batch } = this.d;
    return this.d.sql.begin(async (tx) => {
      const [wm] = await tx<Array<{ ledgerId: number; eventId: number }>>`
        SELECT ledger_id AS "ledgerId", event_id AS "eventId" FROM engagement_watermarks
        WHERE name = ${WATERMARK} FOR UPDATE SKIP LOCKED`;
      if (!wm) return null;
      const ops = await tx<FollowedOp[]>`
        SELECT id, op_id AS "opId", user_id AS "userId", kind, delta, biz_type AS "bizType", biz_id AS "bizId",
               round(extract(epoch FROM created_at) * 1000)::bigint AS at
        FROM ledger_entries WHERE id > ${wm.ledgerId} AND id <= ${h.ledger} ORDER BY id LIMIT ${batch}`;
      const events = await tx<FollowedEvent[]>`
        SELECT id, user_id AS "userId", type, ref, round(extract(epoch FROM created_at) * 1000)::bigint AS at
        FROM member_events WHERE id > ${wm.eventId} AND id <= ${h.events} ORDER BY id LIMIT ${batch}`;
      const occurrences = [...ops.flatMap(occurrencesOfOp), ...events.flatMap(occurrencesOfEvent)];
      const completions = await applyTaskProgress(tx, tz, occurrences);
      const commissions = await applyCommissions(tx, ops);
      // a short page reached the horizon: nothing between its last row and the horizon exists
      const ledgerTo = ops.length === batch ? ops[ops.length - 1].id : h.ledger;
      const eventTo = events.length === batch ? events[events.length - 1].id : h.events;
      await tx`
        UPDATE engagement_watermarks
        SET ledger_id = GREATEST(ledger_id, ${ledgerTo}), event_id = GREATEST(event_id, ${eventTo}), updated_at = now()
        WHERE name = ${WATERMARK}`;
      return { ops: ops.length, events: events.length, completions, commissions, caughtUp: ops.length < batch && events.length < batch };
    });
  }

  /** Whether anything may have been persisted past the watermark (cheap: no lock taken). */
  private async behind(): Promise<boolean> {
    if (!this.started) {
      await this.d.sql`INSERT INTO engagement_watermarks (name) VALUES (${WATERMARK}) ON CONFLICT (name) DO NOTHING`;
      this.started = true;
    }
    const [r] = await this.d.sql<Array<{ behind: boolean }>>`
      SELECT (SELECT COALESCE(max(id), 0) FROM ledger_entries) > w.ledger_id
          OR (SELECT COALESCE(max(id), 0) FROM member_events) > w.event_id AS behind
      FROM engagement_watermarks w WHERE w.name = ${WATERMARK}`;
    return r.behind;
  }
}
