/**
 * Member lookup for operators: search by username or email, and one member's picture — balance,
 * frozen points, tier, risk status, recent ledger and orders — gathered from the domains that own
 * each (points, tiers, orders); only the member record itself is read here.
 *
 * Balance and tier come from the live state in Redis (through the points and tier services, which
 * load an account missing from Redis); when Redis cannot answer (down, or its write gate closed
 * after a restart) they come from Postgres's persisted mirror instead, marked `source: postgres`.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Sql } from '../db/client.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import { DomainError } from '../errors/domain-error.ts';
import type { PointsService } from '../points/service.ts';
import { listLedger, type LedgerItem } from '../points/ledger.ts';
import type { MemberTier, TierService } from '../engagement/tiers.ts';
import type { OrderService } from '../orders/service.ts';

export interface MemberSummary {
  id: number;
  username: string;
  email: string;
  role: 'member' | 'admin';
  riskStatus: 'normal' | 'flagged' | 'frozen';
  createdAt: string;
}

export interface MemberDetail extends MemberSummary {
  balance: { available: number; frozen: number; totalEarned: number; source: 'redis' | 'postgres' };
  tier: MemberTier;
  recentLedger: LedgerItem[];
  recentOrders: Array<{ id: string; orderNo: string; source: string; status: string; pointsTotal: number; cashTotal: number; createdAt: string }>;
}

/** How many ledger entries and orders the detail lists. */
export const RECENT = 20;

type Row = Omit<MemberSummary, 'createdAt'> & { createdAt: Date };

/** A LIKE pattern matching `q` literally at the start. */
const prefixPattern = (q: string) => `${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export class MemberLookup {
  constructor(
    private readonly sql: Sql,
    private readonly points: PointsService,
    private readonly tiers: TierService,
    private readonly orders: OrderService,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Members whose username or email starts with q (any case), by id. */
  async search(q: { q: string; limit: number; cursor?: string }): Promise<{ items: MemberSummary[]; nextCursor: string | null }> {
    const { sql } = this;
    const after = q.cursor ? cursorId(q.cursor) : 0;
    const pattern = prefixPattern(q.q);
    const rows = await sql<Row[]>`
      SELECT id, username, email, role, risk_status AS "riskStatus", created_at AS "createdAt" FROM users
      WHERE (lower(username) LIKE ${pattern} OR lower(email) LIKE ${pattern}) AND id > ${after}
      ORDER BY id LIMIT ${q.limit + 1}`;
    const page = rows.slice(0, q.limit);
    return {
      items: page.map(summary),
      nextCursor: rows.length > q.limit ? encodeCursor(0, page[page.length - 1].id) : null,
    };
  }

  async detail(id: number): Promise<MemberDetail> {
    const { sql } = this;
    const [row] = await sql<Row[]>`
      SELECT id, username, email, role, risk_status AS "riskStatus", created_at AS "createdAt" FROM users WHERE id = ${id}`;
    if (!row) throw new DomainError('USER_NOT_FOUND', `No member with id ${id}`);
    const [live, ledger, orders] = await Promise.all([this.live(id), listLedger(sql, id, RECENT), this.orders.list({ userId: id, limit: RECENT })]);
    return {
      ...summary(row),
      ...live,
      recentLedger: ledger.items,
      recentOrders: orders.items.map((o) => ({
        id: o.id,
        orderNo: o.orderNo,
        source: o.source,
        status: o.status,
        pointsTotal: o.pointsTotal,
        cashTotal: o.cashTotal,
        createdAt: o.createdAt,
      })),
    };
  }

  /** Balance and tier from Redis, or from Postgres when Redis cannot answer. */
  private async live(id: number): Promise<Pick<MemberDetail, 'balance' | 'tier'>> {
    try {
      const [b, tier] = await Promise.all([this.points.balance(id, 0), this.tiers.describe(id)]);
      return { balance: { available: b.available, frozen: b.frozen, totalEarned: b.totalEarned, source: 'redis' }, tier };
    } catch (err) {
      if (err instanceof DomainError && err.code !== 'SERVICE_UNAVAILABLE') throw err;
      this.log.warn({ err, memberId: id }, 'member lookup: live balance unavailable, answering from Postgres');
      const p = await this.points.persistedBalance(id);
      if (!p) throw new DomainError('USER_NOT_FOUND', `No member with id ${id}`);
      return {
        balance: { available: p.available, frozen: p.frozen, totalEarned: p.totalEarned, source: 'postgres' },
        tier: this.tiers.describeStanding({ position: p.tier, earned: p.totalEarned }),
      };
    }
  }
}

function summary(r: Row): MemberSummary {
  return { ...r, createdAt: r.createdAt.toISOString() };
}

function cursorId(cursor: string): number {
  const id = Number(decodeCursor(cursor).id);
  if (!Number.isSafeInteger(id) || id < 1) throw new DomainError('VALIDATION_FAILED', 'cursor is not valid');
  return id;
}
