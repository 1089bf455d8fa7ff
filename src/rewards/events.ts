/**
 * Member events: things members did that are not points ops (a completed profile, an invitation),
 * recorded by the API in the transaction that did them and followed by the engagement role like
 * the ledger (src/rewards/follower.ts).
 *
 * The follower reads rows by id up to a horizon below which no transaction can still commit a
 * row: ids are handed out at insert time but become visible at commit, so a later id can commit
 * first. Every writer therefore holds EVENTS_LOCK shared until its commit, and the follower takes
 * it exclusively for the instant it reads max(id) (the ledger's writers do the same with the
 * epoch lock every persist batch holds).
 */
import type { Tx } from '../db/client.ts';

/** Advisory lock: writers of member_events hold it shared, the follower's horizon exclusive. */
export const EVENTS_LOCK = 7_311_010;

export type MemberEventType = 'profile_complete' | 'invite';

export interface MemberEvent {
  userId: number;
  type: MemberEventType;
  ref?: string;
  /** One event per fact: a second record with the same dedupe is ignored. */
  dedupe: string;
}

/** Records the event in the caller's transaction; false when it was recorded before. */
export async function recordMemberEvent(tx: Tx, e: MemberEvent): Promise<boolean> {
  await tx`SELECT pg_advisory_xact_lock_shared(${EVENTS_LOCK})`;
  const rows = await tx`
    INSERT INTO member_events (user_id, type, ref, dedupe) VALUES (${e.userId}, ${e.type}, ${e.ref ?? null}, ${e.dedupe})
    ON CONFLICT (dedupe) DO NOTHING RETURNING id`;
  return rows.length > 0;
}
