/**
 * Member profiles. The first time a profile holds a nickname, an avatar and a birthday, the
 * completion is recorded (completed_at, and a profile_complete member event for tasks) in the
 * transaction of that update; clearing a field later does not undo it, so it counts once.
 */
import type { Sql } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { businessDate } from '../engagement/business-day.ts';
import { recordMemberEvent } from '../rewards/events.ts';
import type { Gender } from './schemas.ts';

export interface ProfilePatch {
  nickname?: string | null;
  avatarUrl?: string | null;
  birthday?: string | null;
  gender?: Gender | null;
}

export interface Profile {
  nickname: string | null;
  avatarUrl: string | null;
  birthday: string | null;
  gender: Gender | null;
  complete: boolean;
  completedAt: string | null;
}

interface ProfileRow {
  nickname: string | null;
  avatarUrl: string | null;
  birthday: string | null;
  gender: Gender | null;
  completedAt: Date | null;
}

const EMPTY: ProfileRow = { nickname: null, avatarUrl: null, birthday: null, gender: null, completedAt: null };
const EARLIEST_BIRTHDAY = '1900-01-01';

const present = (r: ProfileRow): Profile => ({
  nickname: r.nickname,
  avatarUrl: r.avatarUrl,
  birthday: r.birthday,
  gender: r.gender,
  complete: r.completedAt !== null,
  completedAt: r.completedAt?.toISOString() ?? null,
});

export class ProfileService {
  constructor(private readonly d: { sql: Sql; tz: string }) {}

  async get(userId: number): Promise<Profile> {
    const [row] = await this.d.sql<ProfileRow[]>`
      SELECT nickname, avatar_url AS "avatarUrl", birthday::text AS birthday, gender, completed_at AS "completedAt"
      FROM member_profiles WHERE user_id = ${userId}`;
    return present(row ?? EMPTY);
  }

  async update(userId: number, patch: ProfilePatch, now = Date.now()): Promise<Profile> {
    const clean = this.validate(patch, now);
    return this.d.sql.begin(async (tx) => {
      await tx`INSERT INTO member_profiles (user_id) VALUES (${userId}) ON CONFLICT (user_id) DO NOTHING`;
      const [current] = await tx<ProfileRow[]>`
        SELECT nickname, avatar_url AS "avatarUrl", birthday::text AS birthday, gender, completed_at AS "completedAt"
        FROM member_profiles WHERE user_id = ${userId} FOR UPDATE`;
      const next = { ...current, ...clean };
      const completes = next.completedAt === null && next.nickname !== null && next.avatarUrl !== null && next.birthday !== null;
      const [row] = await tx<ProfileRow[]>`
        UPDATE member_profiles SET nickname = ${next.nickname}, avatar_url = ${next.avatarUrl}, birthday = ${next.birthday},
          gender = ${next.gender}, updated_at = now(),
          completed_at = CASE WHEN ${completes}::boolean THEN now() ELSE completed_at END
        WHERE user_id = ${userId}
        RETURNING nickname, avatar_url AS "avatarUrl", birthday::text AS birthday, gender, completed_at AS "completedAt"`;
      if (completes) {
        await recordMemberEvent(tx, { userId, type: 'profile_complete', dedupe: `profile_complete:${userId}` });
      }
      return present(row);
    });
  }

  /** What the schema cannot say: a nickname of spaces, a URL that is not http(s), a birthday ahead. */
  private validate(patch: ProfilePatch, now: number): ProfilePatch {
    const out: ProfilePatch = { ...patch };
    if (typeof patch.nickname === 'string') {
      out.nickname = patch.nickname.trim();
      if (out.nickname === '') throw new DomainError('VALIDATION_FAILED', 'nickname must not be blank');
    }
    if (typeof patch.avatarUrl === 'string') {
      let url: URL | null = null;
      try {
        url = new URL(patch.avatarUrl);
      } catch {
        url = null;
      }
      if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.hostname === '') {
        throw new DomainError('VALIDATION_FAILED', 'avatarUrl must be an http or https URL');
      }
    }
    if (typeof patch.birthday === 'string') {
      if (patch.birthday > businessDate(this.d.tz, now)) throw new DomainError('VALIDATION_FAILED', 'birthday must not be in the future');
      if (patch.birthday < EARLIEST_BIRTHDAY) throw new DomainError('VALIDATION_FAILED', `birthday must be on or after ${EARLIEST_BIRTHDAY}`);
    }
    return out;
  }
}
