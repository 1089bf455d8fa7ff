/**
 * Multiplier campaigns: an earn of a matching bizType inside [startsAt, endsAt) is multiplied by
 * the member's tier × the highest running campaign, floored (EngagementConfig.multipliers). With
 * `notify`, members get a push when a campaign starts: the reminders role broadcasts each once
 * (notified_at set in the same transaction that claims it).
 */
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { EngagementConfig } from './config.ts';
import { perMille } from './settings.ts';
import { recordAudit } from '../audit/log.ts';

export interface CampaignInput {
  name: string;
  bizTypes: string[];
  multiplier: number;
  startsAt: string;
  endsAt: string;
  notify?: boolean;
}

export interface CampaignView {
  id: number;
  name: string;
  bizTypes: string[];
  multiplier: number;
  startsAt: string;
  endsAt: string;
  notify: boolean;
  notifiedAt: string | null;
  status: 'scheduled' | 'running' | 'ended';
}

interface Row {
  id: number;
  name: string;
  bizTypes: string[];
  multiplierPerMille: number;
  startsAt: Date;
  endsAt: Date;
  notify: boolean;
  notifiedAt: Date | null;
}

const COLUMNS = `id, name, biz_types AS "bizTypes", multiplier_per_mille AS "multiplierPerMille", starts_at AS "startsAt",
  ends_at AS "endsAt", notify, notified_at AS "notifiedAt"`;

function present(r: Row, now = Date.now()): CampaignView {
  const status = now < r.startsAt.getTime() ? 'scheduled' : now < r.endsAt.getTime() ? 'running' : 'ended';
  return {
    id: r.id,
    name: r.name,
    bizTypes: r.bizTypes,
    multiplier: r.multiplierPerMille / 1000,
    startsAt: r.startsAt.toISOString(),
    endsAt: r.endsAt.toISOString(),
    notify: r.notify,
    notifiedAt: r.notifiedAt?.toISOString() ?? null,
    status,
  };
}

function checkWindow(startsAt: string, endsAt: string): void {
  for (const [name, value] of [['startsAt', startsAt], ['endsAt', endsAt]] as const) {
    const year = new Date(Date.parse(value)).getUTCFullYear();
    if (!Number.isFinite(Date.parse(value)) || year < 1 || year > 9999) {
      throw new DomainError('VALIDATION_FAILED', `${name} must be a date-time between years 0001 and 9999 (UTC)`);
    }
  }
  if (Date.parse(endsAt) <= Date.parse(startsAt)) throw new DomainError('VALIDATION_FAILED', 'endsAt must be after startsAt');
}

export class CampaignService {
  constructor(
    private readonly sql: Sql,
    private readonly config: EngagementConfig,
  ) {}

  async create(tx: Tx, actorId: number, input: CampaignInput): Promise<CampaignView> {
    checkWindow(input.startsAt, input.endsAt);
    const [row] = await tx<Row[]>`
      INSERT INTO campaigns (name, biz_types, multiplier_per_mille, starts_at, ends_at, notify)
      VALUES (${input.name}, ${[...new Set(input.bizTypes)]}, ${perMille(input.multiplier)}, ${input.startsAt}, ${input.endsAt},
              ${input.notify ?? false})
      RETURNING ${tx.unsafe(COLUMNS)}`;
    await recordAudit(tx, { actorId, action: 'campaign.create', targetType: 'campaign', targetId: String(row.id), data: { ...input } });
    return present(row);
  }

  async update(tx: Tx, actorId: number, id: number, patch: Partial<CampaignInput>): Promise<CampaignView> {
    const [cur] = await tx<Row[]>`SELECT ${tx.unsafe(COLUMNS)} FROM campaigns WHERE id = ${id} FOR UPDATE`;
    if (!cur) throw new DomainError('CAMPAIGN_NOT_FOUND', `No campaign with id ${id}`);
    const startsAt = patch.startsAt ?? cur.startsAt.toISOString();
    const endsAt = patch.endsAt ?? cur.endsAt.toISOString();
    checkWindow(startsAt, endsAt);
    const [row] = await tx<Row[]>`
      UPDATE campaigns SET name = ${patch.name ?? cur.name}, biz_types = ${patch.bizTypes ? [...new Set(patch.bizTypes)] : cur.bizTypes},
        multiplier_per_mille = ${patch.multiplier !== undefined ? perMille(patch.multiplier) : cur.multiplierPerMille},
        starts_at = ${startsAt}, ends_at = ${endsAt}, notify = ${patch.notify ?? cur.notify}, updated_at = now()
      WHERE id = ${id} RETURNING ${tx.unsafe(COLUMNS)}`;
    await recordAudit(tx, { actorId, action: 'campaign.update', targetType: 'campaign', targetId: String(id), data: { ...patch } });
    return present(row);
  }

  async get(id: number): Promise<CampaignView> {
    const [row] = await this.sql<Row[]>`SELECT ${this.sql.unsafe(COLUMNS)} FROM campaigns WHERE id = ${id}`;
    if (!row) throw new DomainError('CAMPAIGN_NOT_FOUND', `No campaign with id ${id}`);
    return present(row);
  }

  async list(o: { status?: CampaignView['status']; limit: number; cursor?: number }): Promise<{ items: CampaignView[]; nextCursor: string | null }> {
    const { sql } = this;
    const rows = await sql<Row[]>`
      SELECT ${sql.unsafe(COLUMNS)} FROM campaigns
      WHERE true
        ${o.status === 'running' ? sql`AND starts_at <= now() AND ends_at > now()` : sql``}
        ${o.status === 'scheduled' ? sql`AND starts_at > now()` : sql``}
        ${o.status === 'ended' ? sql`AND ends_at <= now()` : sql``}
        ${o.cursor ? sql`AND id < ${o.cursor}` : sql``}
      ORDER BY id DESC LIMIT ${o.limit + 1}`;
    const page = rows.slice(0, o.limit);
    return { items: page.map((r) => present(r)), nextCursor: rows.length > o.limit ? String(page[page.length - 1].id) : null };
  }

  /** Campaigns running now (public), from this process's cache. */
  active(now = Date.now()): Array<Omit<CampaignView, 'notifiedAt' | 'notify'>> {
    return this.config.campaigns
      .filter((c) => c.startsAt.getTime() <= now && now < c.endsAt.getTime())
      .map((c) => ({
        id: c.id,
        name: c.name,
        bizTypes: c.bizTypes,
        multiplier: c.multiplierPerMille / 1000,
        startsAt: c.startsAt.toISOString(),
        endsAt: c.endsAt.toISOString(),
        status: 'running' as const,
      }));
  }

  /**
   * Claims the campaigns that have started, want a notification and have not had one: each is
   * returned once, however many runs race (the claim and notified_at commit together).
   */
  async claimStarted(tx: Tx): Promise<CampaignView[]> {
    const rows = await tx<Row[]>`
      UPDATE campaigns SET notified_at = now()
      WHERE id IN (SELECT id FROM campaigns WHERE notify AND notified_at IS NULL AND starts_at <= now() AND ends_at > now()
                   FOR UPDATE SKIP LOCKED)
      RETURNING ${tx.unsafe(COLUMNS)}`;
    return rows.map((r) => present(r));
  }
}
