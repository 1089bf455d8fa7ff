/**
 * Final reconciliation once the workers have drained: Postgres must hold exactly what the API
 * accepted (redemptions, ledger spend and earn rows with the draws' costs and prizes and both
 * sides of each transfer, per-member
 * balances equal to Redis, lots summing to balances, durable stock equal to live stock) and
 * nothing may be left half-done (open reservations, failed persist jobs).
 */
import { LOTTERY, MEMBERS } from './config.ts';
import { check, equal, openReservations, redisBalances, redisStocks, type Check } from './books.ts';
import type { World } from './scenarios.ts';
import { persistedSold, stockFromRecord } from '../src/goods/stock.ts';

export async function verifyPersisted(w: World): Promise<Check[]> {
  const { sql, books, catalog } = w;
  await w.pipeline.drain();
  const goodsIds = [catalog.flash, catalog.warmFlash, ...catalog.items, ...catalog.orderPoints, ...catalog.orderCash];

  const [{ redemptions }] = await sql<Array<{ redemptions: number }>>`SELECT count(*)::bigint AS redemptions FROM redemptions`;
  const ledger = await sql<Array<{ kind: string; n: number; points: number }>>`
    SELECT kind, count(*)::bigint AS n, COALESCE(SUM(delta), 0)::bigint AS points FROM ledger_entries GROUP BY kind`;
  const byKind = (kind: string) => ledger.find((r) => r.kind === kind) ?? { n: 0, points: 0 };

  const [{ transfersCompleted }] = await sql<Array<{ transfersCompleted: number }>>`
    SELECT count(*)::bigint AS "transfersCompleted" FROM transfers WHERE completed_at IS NOT NULL`;

  const accounts = await sql<Array<{ userId: number; available: number }>>`
    SELECT user_id AS "userId", available FROM point_accounts`;
  const pgBalance = new Map(accounts.map((a) => [a.userId, a.available]));
  const live = await redisBalances(w.redis, w.keys, w.members);
  const balanceMismatches = w.members.filter((m, i) => pgBalance.get(m.id) !== live[i]).length;

  const [{ lotMismatches }] = await sql<Array<{ lotMismatches: number }>>`
    SELECT count(*)::bigint AS "lotMismatches" FROM point_accounts a
    LEFT JOIN (SELECT user_id, SUM(remaining) AS r FROM point_lots GROUP BY user_id) l USING (user_id)
    WHERE a.available <> COALESCE(l.r, 0)`;

  const soldById = await persistedSold(sql, goodsIds);
  const totals = await sql<Array<{ id: number; totalStock: number }>>`SELECT id, total_stock AS "totalStock" FROM goods WHERE id = ANY(${goodsIds}::bigint[])`;
  const durable = totals.map((g) => ({ id: g.id, stock: stockFromRecord(g.totalStock, soldById.get(g.id) ?? 0) }));
  const liveStock = await redisStocks(w.redis, w.keys, goodsIds);
  const durableById = new Map(durable.map((d) => [d.id, d.stock]));
  const stockMismatches = goodsIds.filter((id, i) => durableById.get(id) !== liveStock[i]).length;

  const [{ maxPerMember }] = await sql<Array<{ maxPerMember: number }>>`
    SELECT COALESCE(max(n), 0)::bigint AS "maxPerMember" FROM (
      SELECT count(*) AS n FROM redemptions WHERE goods_id IN (${catalog.flash}, ${catalog.warmFlash})
      GROUP BY user_id, goods_id) x`;

  return [
    equal('redemptions rows = accepted redemptions', redemptions, books.redemptions),
    equal(
      'ledger spend rows = accepted redemptions + draws + transfers + order captures',
      byKind('spend').n,
      books.redemptions + books.draws + books.transfers + books.ordersPaidAtOnce + books.paymentsSucceeded,
    ),
    equal(
      'ledger spend points = points spent + draw costs + points transferred + orders’ points',
      -byKind('spend').points,
      books.pointsSpent + books.drawCost + books.transferred + books.orderPoints,
    ),
    equal('ledger freeze rows = accepted orders', byKind('freeze').n, books.orders),
    equal('ledger unfreeze rows = failed payments', byKind('unfreeze').n, books.paymentsFailed),
    equal(
      'ledger earn rows = grants + accepted earns + points prizes + transfers received',
      byKind('earn').n,
      MEMBERS + books.earns + books.pointPrizes + books.transfers,
    ),
    equal('transfers rows completed = accepted transfers', transfersCompleted, books.transfers),
    check('limited lottery prize won ≤ its stock', books.jackpots <= LOTTERY.jackpot.stock, `${books.jackpots} ≤ ${LOTTERY.jackpot.stock}`),
    check('point_accounts.available = Redis balance', balanceMismatches === 0, `${balanceMismatches} of ${w.members.length} members differ`),
    check('Σ lots remaining = available', lotMismatches === 0, `${lotMismatches} accounts differ`),
    check('durable stock = live stock', stockMismatches === 0, `${stockMismatches} of ${goodsIds.length} goods differ`),
    check('flash redemptions per member ≤ 1', maxPerMember <= 1, `max ${maxPerMember}`),
    equal('open reservations', await openReservations(w.redis, w.keys, goodsIds), 0),
    equal('failed persist jobs', await w.pipeline.failedJobs(), 0),
  ];
}
