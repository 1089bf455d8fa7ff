/**
 * Virtual rewards of coupon and VIP goods, issued once per unit of an order item whatever retries
 * or crashes happen: each unit's row is keyed (order, position, unit), so issuing again adds
 * nothing. A refund revokes them. Coupons expire with the expire role (expireCoupons).
 *   coupon: a code `CP` + 8 of [A-Z0-9] (CSPRNG), valid `couponValidDays` (default 30)
 *   vip:    `vipDays` (default 30) more VIP membership; periods stack end to end
 */
import { randomInt } from 'node:crypto';
import type { Sql, Tx } from '../db/client.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import { DomainError } from '../errors/domain-error.ts';
import { recordAudit } from '../audit/log.ts';

const DAY_MS = 86_400_000;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const DEFAULT_COUPON_DAYS = 30;
export const DEFAULT_VIP_DAYS = 30;

export function newCouponCode(): string {
  let code = 'CP';
  for (let i = 0; i < 8; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code;
}

export interface RewardItem {
  position: number;
  goodsId: number;
  goodsType: string;
  quantity: number;
}

export interface Coupon {
  code: string;
  goodsId: number;
  orderId: string;
  status: 'active' | 'used' | 'expired' | 'revoked';
  validUntil: string;
  usedAt: string | null;
  createdAt: string;
}

/** Issues the rewards of an order's coupon and VIP items, inside `tx`; returns the units issued now. */
export async function issueRewards(tx: Tx, order: { id: string; userId: number }, items: RewardItem[]): Promise<number> {
  let issued = 0;
  const ids = items.filter((i) => i.goodsType === 'coupon' || i.goodsType === 'vip').map((i) => i.goodsId);
  if (ids.length === 0) return 0;
  const settings = await tx<Array<{ id: number; couponValidDays: number | null; vipDays: number | null }>>`
    SELECT id, coupon_valid_days AS "couponValidDays", vip_days AS "vipDays" FROM goods WHERE id = ANY(${ids}::bigint[])`;
  const byId = new Map(settings.map((s) => [s.id, s]));
  for (const item of items) {
    const s = byId.get(item.goodsId);
    for (let unit = 1; unit <= item.quantity; unit++) {
      if (item.goodsType === 'coupon') {
        const days = s?.couponValidDays ?? DEFAULT_COUPON_DAYS;
        // a code already taken by another coupon (1 in 2.8e12) is drawn again
        for (let attempt = 0; attempt < 5; attempt++) {
          const rows = await tx`
            INSERT INTO user_coupons (code, user_id, order_id, position, unit, goods_id, valid_until)
            VALUES (${newCouponCode()}, ${order.userId}, ${order.id}, ${item.position}, ${unit}, ${item.goodsId},
                    now() + make_interval(days => ${days}))
            ON CONFLICT DO NOTHING RETURNING 1`;
          if (rows.length > 0) {
            issued++;
            break;
          }
          const [had] = await tx`SELECT 1 FROM user_coupons WHERE order_id = ${order.id} AND position = ${item.position} AND unit = ${unit}`;
          if (had) break;
        }
      } else if (item.goodsType === 'vip') {
        const days = s?.vipDays ?? DEFAULT_VIP_DAYS;
        // one member's VIP periods are chained one after the other: serialize them per member
        await tx`SELECT pg_advisory_xact_lock(hashtext('vip:' || ${order.userId}::text))`;
        const rows = await tx`
          INSERT INTO vip_grants (user_id, order_id, position, unit, days, starts_at, ends_at)
          SELECT ${order.userId}, ${order.id}, ${item.position}, ${unit}, ${days}, s.start, s.start + make_interval(days => ${days})
          FROM (SELECT GREATEST(now(), COALESCE(MAX(ends_at), now())) AS start
                FROM vip_grants WHERE user_id = ${order.userId} AND NOT revoked) s
          ON CONFLICT DO NOTHING RETURNING 1`;
        issued += rows.length;
      }
    }
  }
  return issued;
}

/**
 * Revokes an order's rewards (a refund): active coupons become revoked (a used one stays used and
 * is counted), VIP periods are withdrawn and the later ones move up. Returns what was found used.
 */
export async function revokeRewards(tx: Tx, orderId: string): Promise<{ couponsRevoked: number; couponsUsed: number; vipRevoked: number }> {
  const revoked = await tx`UPDATE user_coupons SET status = 'revoked' WHERE order_id = ${orderId} AND status IN ('active', 'expired') RETURNING 1`;
  const [{ used }] = await tx<Array<{ used: number }>>`SELECT COUNT(*)::int AS used FROM user_coupons WHERE order_id = ${orderId} AND status = 'used'`;
  const vip = await tx<Array<{ userId: number }>>`
    UPDATE vip_grants SET revoked = true WHERE order_id = ${orderId} AND NOT revoked RETURNING user_id AS "userId"`;
  if (vip.length > 0) await rechainVip(tx, vip[0].userId);
  return { couponsRevoked: revoked.length, couponsUsed: used, vipRevoked: vip.length };
}

/** Lays a member's remaining VIP periods end to end again after one was withdrawn. */
async function rechainVip(tx: Tx, userId: number): Promise<void> {
  await tx`SELECT pg_advisory_xact_lock(hashtext('vip:' || ${userId}::text))`;
  const grants = await tx<Array<{ id: number; days: number; createdAt: Date }>>`
    SELECT id, days, created_at AS "createdAt" FROM vip_grants WHERE user_id = ${userId} AND NOT revoked ORDER BY id`;
  let end = 0;
  for (const g of grants) {
    const start = Math.max(end, g.createdAt.getTime());
    end = start + g.days * DAY_MS;
    await tx`UPDATE vip_grants SET starts_at = to_timestamp(${start} / 1000.0), ends_at = to_timestamp(${end} / 1000.0) WHERE id = ${g.id}`;
  }
}

export async function vipOf(sql: Sql, userId: number): Promise<{ active: boolean; endsAt: string | null; periods: Array<{ orderId: string; days: number; startsAt: string; endsAt: string }> }> {
  const rows = await sql<Array<{ orderId: string; days: number; startsAt: Date; endsAt: Date }>>`
    SELECT order_id AS "orderId", days, starts_at AS "startsAt", ends_at AS "endsAt"
    FROM vip_grants WHERE user_id = ${userId} AND NOT revoked AND ends_at > now() ORDER BY starts_at`;
  const last = rows[rows.length - 1];
  return {
    active: rows.some((r) => r.startsAt.getTime() <= Date.now()),
    endsAt: last ? last.endsAt.toISOString() : null,
    periods: rows.map((r) => ({ orderId: r.orderId, days: r.days, startsAt: r.startsAt.toISOString(), endsAt: r.endsAt.toISOString() })),
  };
}

type CouponRow = Omit<Coupon, 'validUntil' | 'usedAt' | 'createdAt'> & { validUntil: Date; usedAt: Date | null; createdAt: Date };

const couponView = (r: CouponRow): Coupon => ({
  ...r,
  validUntil: r.validUntil.toISOString(),
  usedAt: r.usedAt?.toISOString() ?? null,
  createdAt: r.createdAt.toISOString(),
});

export async function listCoupons(sql: Sql, userId: number, limit: number, cursor?: string, status?: Coupon['status']) {
  const after = cursor ? decodeCursor(cursor) : null;
  const rows = await sql<CouponRow[]>`
    SELECT code, goods_id AS "goodsId", order_id AS "orderId", status, valid_until AS "validUntil", used_at AS "usedAt", created_at AS "createdAt"
    FROM user_coupons WHERE user_id = ${userId}
    ${status ? sql`AND status = ${status}` : sql``}
    ${after ? sql`AND (created_at, code) < (to_timestamp(${after.ms} / 1000.0), ${after.id})` : sql``}
    ORDER BY created_at DESC NULLS LAST, code DESC LIMIT ${limit + 1}`;
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page.map(couponView), nextCursor: rows.length > limit ? encodeCursor(last.createdAt.getTime(), last.code) : null };
}

/** Marks a coupon used (by a merchant's admin), inside the caller's transaction; using it again replays. */
export async function useCoupon(tx: Tx, code: string, adminId: number): Promise<{ coupon: Coupon; replayed: boolean }> {
  {
    const [row] = await tx<CouponRow[]>`
      SELECT code, goods_id AS "goodsId", order_id AS "orderId", status, valid_until AS "validUntil", used_at AS "usedAt", created_at AS "createdAt"
      FROM user_coupons WHERE code = ${code} FOR UPDATE`;
    if (!row) throw new DomainError('COUPON_NOT_FOUND', 'No such coupon');
    if (row.status === 'used') return { coupon: couponView(row), replayed: true };
    if (row.status === 'active' && row.validUntil.getTime() <= Date.now()) {
      await tx`UPDATE user_coupons SET status = 'expired' WHERE code = ${code}`;
      row.status = 'expired';
    }
    if (row.status !== 'active') throw new DomainError('COUPON_NOT_ACTIVE', `The coupon is ${row.status}`, { status: row.status });
    const [used] = await tx<CouponRow[]>`
      UPDATE user_coupons SET status = 'used', used_at = now() WHERE code = ${code}
      RETURNING code, goods_id AS "goodsId", order_id AS "orderId", status, valid_until AS "validUntil", used_at AS "usedAt", created_at AS "createdAt"`;
    await recordAudit(tx, { actorId: adminId, action: 'coupon.use', targetType: 'coupon', targetId: code, data: { orderId: row.orderId } });
    return { coupon: couponView(used), replayed: false };
  }
}

export async function expireCoupons(sql: Sql, limit = 5000): Promise<number> {
  const rows = await sql`
    UPDATE user_coupons SET status = 'expired'
    WHERE code IN (SELECT code FROM user_coupons WHERE status = 'active' AND valid_until <= now() LIMIT ${limit})
    RETURNING 1`;
  return rows.length;
}
