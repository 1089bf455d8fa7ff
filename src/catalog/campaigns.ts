/**
 * Goods campaigns: a discount on the price of the goods listed, or of every goods item of a
 * category, inside [startsAt, endsAt). The discount is the factor paid (0.85 = 15 % off), kept
 * per mille. It moves only goods with dynamic pricing (the other goods keep their list price ×
 * tier factor). Campaigns never stack: where several run for one item, the lowest factor (the
 * largest discount) applies.
 *
 * The API passes the discount to the reserve script in ARGV, from a cache in each process
 * (GoodsCampaignCache) refreshed every RULES_REFRESH_MS like the multiplier campaigns, and at once
 * in the process that wrote a campaign or moved goods between categories. A category campaign is
 * resolved to its goods ids when the cache loads, so the redemption path needs no Postgres; other
 * processes see a new campaign, or an item's new category, within RULES_REFRESH_MS.
 */
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { CampaignDiscounts } from '../goods/pricing.ts';
import { recordAudit } from '../audit/log.ts';

export interface GoodsCampaignInput {
  name?: string;
  goodsIds?: number[];
  categoryId?: number;
  discount: number;
  startsAt: string;
  endsAt: string;
}

export interface GoodsCampaignView {
  id: number;
  name: string;
  goodsIds: number[] | null;
  categoryId: number | null;
  discount: number;
  startsAt: string;
  endsAt: string;
  status: 'scheduled' | 'running' | 'ended';
}

interface Row {
  id: number;
  name: string;
  goodsIds: number[] | null;
  categoryId: number | null;
  discountPerMille: number;
  startsAt: Date;
  endsAt: Date;
}

interface Window {
  discountPerMille: number;
  startsAt: number;
  endsAt: number;
}

const COLUMNS = `id, name, goods_ids AS "goodsIds", category_id AS "categoryId", discount_per_mille AS "discountPerMille",
  starts_at AS "startsAt", ends_at AS "endsAt"`;

/** Campaigns still to come or running, resolved to goods ids; refreshed from Postgres. */
export class GoodsCampaignCache implements CampaignDiscounts {
  private byGoods = new Map<number, Window[]>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly sql: Sql) {}

  async refresh(): Promise<void> {
    const rows = await this.sql<Array<Window & { goodsIds: number[] }>>`
      SELECT c.discount_per_mille AS "discountPerMille",
             (extract(epoch FROM c.starts_at) * 1000)::bigint AS "startsAt",
             (extract(epoch FROM c.ends_at) * 1000)::bigint AS "endsAt",
             COALESCE(c.goods_ids, ARRAY(SELECT g.id FROM goods g WHERE g.category_id = c.category_id)) AS "goodsIds"
      FROM goods_campaigns c WHERE c.ends_at > now()`;
    const byGoods = new Map<number, Window[]>();
    for (const { goodsIds, ...w } of rows) {
      for (const id of goodsIds.map(Number)) {
        const list = byGoods.get(id);
        if (list) list.push(w);
        else byGoods.set(id, [w]);
      }
    }
    this.byGoods = byGoods;
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => void this.refresh().catch(() => {}), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The lowest discount running for any item at `ms` (1000 when none runs). */
  lowestRunning(ms: number): number {
    let best = 1000;
    for (const list of this.byGoods.values()) {
      for (const w of list) if (w.startsAt <= ms && ms < w.endsAt && w.discountPerMille < best) best = w.discountPerMille;
    }
    return best;
  }

  discountFor(goodsId: number, ms: number): number {
    let best = 1000;
    for (const w of this.byGoods.get(goodsId) ?? []) {
      if (w.startsAt <= ms && ms < w.endsAt && w.discountPerMille < best) best = w.discountPerMille;
    }
    return best;
  }
}

/** Admin writes and reads of goods campaigns (each write inside the caller's transaction, audited). */
export class GoodsCampaignService {
  constructor(private readonly sql: Sql) {}

  async create(tx: Tx, actorId: number, input: GoodsCampaignInput): Promise<GoodsCampaignView> {
    const target = await checkTarget(tx, input.goodsIds, input.categoryId);
    checkWindow(input.startsAt, input.endsAt);
    const [row] = await tx<Row[]>`
      INSERT INTO goods_campaigns (name, goods_ids, category_id, discount_per_mille, starts_at, ends_at)
      VALUES (${input.name ?? ''}, ${target.goodsIds}, ${target.categoryId}, ${discountPerMille(input.discount)},
              ${input.startsAt}, ${input.endsAt})
      RETURNING ${tx.unsafe(COLUMNS)}`;
    await recordAudit(tx, { actorId, action: 'goods_campaign.create', targetType: 'goods_campaign', targetId: String(row.id), data: { ...input } });
    return present(row);
  }

  async update(tx: Tx, actorId: number, id: number, patch: Partial<GoodsCampaignInput>): Promise<GoodsCampaignView> {
    const [cur] = await tx<Row[]>`SELECT ${tx.unsafe(COLUMNS)} FROM goods_campaigns WHERE id = ${id} FOR UPDATE`;
    if (!cur) throw new DomainError('GOODS_CAMPAIGN_NOT_FOUND', `No goods campaign with id ${id}`);
    const retarget = patch.goodsIds !== undefined || patch.categoryId !== undefined;
    const target = retarget ? await checkTarget(tx, patch.goodsIds, patch.categoryId) : { goodsIds: cur.goodsIds, categoryId: cur.categoryId };
    const startsAt = patch.startsAt ?? cur.startsAt.toISOString();
    const endsAt = patch.endsAt ?? cur.endsAt.toISOString();
    checkWindow(startsAt, endsAt);
    const [row] = await tx<Row[]>`
      UPDATE goods_campaigns SET name = ${patch.name ?? cur.name}, goods_ids = ${target.goodsIds}, category_id = ${target.categoryId},
        discount_per_mille = ${patch.discount !== undefined ? discountPerMille(patch.discount) : cur.discountPerMille},
        starts_at = ${startsAt}, ends_at = ${endsAt}, updated_at = now()
      WHERE id = ${id} RETURNING ${tx.unsafe(COLUMNS)}`;
    await recordAudit(tx, { actorId, action: 'goods_campaign.update', targetType: 'goods_campaign', targetId: String(id), data: { ...patch } });
    return present(row);
  }

  async get(id: number): Promise<GoodsCampaignView> {
    const [row] = await this.sql<Row[]>`SELECT ${this.sql.unsafe(COLUMNS)} FROM goods_campaigns WHERE id = ${id}`;
    if (!row) throw new DomainError('GOODS_CAMPAIGN_NOT_FOUND', `No goods campaign with id ${id}`);
    return present(row);
  }

  async list(o: { status?: GoodsCampaignView['status']; limit: number; cursor?: number }) {
    const { sql } = this;
    const rows = await sql<Row[]>`
      SELECT ${sql.unsafe(COLUMNS)} FROM goods_campaigns
      WHERE true
        ${o.status === 'running' ? sql`AND starts_at <= now() AND ends_at > now()` : sql``}
        ${o.status === 'scheduled' ? sql`AND starts_at > now()` : sql``}
        ${o.status === 'ended' ? sql`AND ends_at <= now()` : sql``}
        ${o.cursor ? sql`AND id < ${o.cursor}` : sql``}
      ORDER BY id DESC LIMIT ${o.limit + 1}`;
    const page = rows.slice(0, o.limit);
    return { items: page.map((r) => present(r)), nextCursor: rows.length > o.limit ? String(page[page.length - 1].id) : null };
  }
}

/** 0 < discount < 1, to the thousandth (a per-mille factor of 1..999). */
function discountPerMille(discount: number): number {
  const pm = Math.round(discount * 1000);
  if (pm < 1 || pm > 999) throw new DomainError('VALIDATION_FAILED', 'discount must be between 0.001 and 0.999 (the factor paid)');
  return pm;
}

/** Exactly one target, and it exists: goods listed (each once) or a category. */
async function checkTarget(tx: Tx, goodsIds: number[] | undefined, categoryId: number | undefined) {
  if ((goodsIds === undefined) === (categoryId === undefined)) {
    throw new DomainError('VALIDATION_FAILED', 'give exactly one of goodsIds and categoryId');
  }
  if (categoryId !== undefined) {
    const [c] = await tx`SELECT 1 FROM categories WHERE id = ${categoryId} FOR SHARE`;
    if (!c) throw new DomainError('VALIDATION_FAILED', `categoryId ${categoryId}: no such category`);
    return { goodsIds: null, categoryId };
  }
  const ids = [...new Set(goodsIds)].sort((a, b) => a - b);
  const found = await tx<Array<{ id: number }>>`SELECT id FROM goods WHERE id = ANY(${ids}::bigint[])`;
  const missing = ids.filter((id) => !found.some((f) => f.id === id));
  if (missing.length > 0) throw new DomainError('VALIDATION_FAILED', `goodsIds: no goods with id ${missing.join(', ')}`);
  return { goodsIds: ids, categoryId: null };
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

function present(r: Row, now = Date.now()): GoodsCampaignView {
  const status = now < r.startsAt.getTime() ? 'scheduled' : now < r.endsAt.getTime() ? 'running' : 'ended';
  return {
    id: r.id,
    name: r.name,
    goodsIds: r.goodsIds?.map(Number) ?? null,
    categoryId: r.categoryId,
    discount: r.discountPerMille / 1000,
    startsAt: r.startsAt.toISOString(),
    endsAt: r.endsAt.toISOString(),
    status,
  };
}
