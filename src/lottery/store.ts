/**
 * A lottery's rows and its live Redis state, shared by the service and the rebuild: the one place
 * that writes a lottery into its Redis slot (lua/lottery-set-2.lua), with each limited prize's
 * units left from the record = allocated stock − persisted wins.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Sql, Tx } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';

export type PrizeKind = 'points' | 'goods' | 'none';

export interface LotteryRow {
  id: number;
  name: string;
  cost: number;
  cooldownSeconds: number;
  dailyDrawLimit: number | null;
  startsAt: Date | null;
  endsAt: Date | null;
  active: boolean;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface PrizeRow {
  id: number;
  lotteryId: number;
  position: number;
  name: string;
  kind: PrizeKind;
  points: number | null;
  goodsId: number | null;
  weight: number;
  stock: number | null;
  retired: boolean;
}

/** A prize as a draw records it and members see it. */
export interface Prize {
  id: number;
  name: string;
  kind: PrizeKind;
  points?: number;
  goodsId?: number;
}

/** A prize in the lottery's Redis hash (what the reserve script draws from). */
export interface LivePrize extends Prize {
  weight: number;
  limited: 0 | 1;
}

export const LOTTERY_COLUMNS = `id, name, cost, cooldown_seconds AS "cooldownSeconds", daily_draw_limit AS "dailyDrawLimit",
  starts_at AS "startsAt", ends_at AS "endsAt", active, version, created_at AS "createdAt", updated_at AS "updatedAt"`;
export const PRIZE_COLUMNS = `id, lottery_id AS "lotteryId", position, name, kind, points, goods_id AS "goodsId", weight, stock, retired`;

/** A lottery and its prizes in the draw (retired ones left out), or null. */
export async function findLottery(db: Sql | Tx, id: number): Promise<{ row: LotteryRow; prizes: PrizeRow[] } | null> {
  const [row] = await db<LotteryRow[]>`SELECT ${db.unsafe(LOTTERY_COLUMNS)} FROM lotteries WHERE id = ${id}`;
  if (!row) return null;
  const prizes = await db<PrizeRow[]>`
    SELECT ${db.unsafe(PRIZE_COLUMNS)} FROM lottery_prizes WHERE lottery_id = ${id} AND NOT retired ORDER BY position`;
  return { row, prizes };
}

/** Units won per prize (persisted draws), of the given lotteries: lottery id -> prize id -> wins. */
export async function persistedWins(sql: Sql | Tx, lotteryIds: number[]): Promise<Map<number, Map<number, number>>> {
  const rows = await sql<Array<{ lotteryId: number; prizeId: number; n: number }>>`
    SELECT lottery_id AS "lotteryId", prize_id AS "prizeId", count(*)::int AS n FROM lottery_draws
    WHERE lottery_id = ANY(${lotteryIds}::int[]) GROUP BY lottery_id, prize_id`;
  const out = new Map<number, Map<number, number>>();
  for (const r of rows) {
    const m = out.get(r.lotteryId) ?? new Map<number, number>();
    m.set(r.prizeId, r.n);
    out.set(r.lotteryId, m);
  }
  return out;
}

export function prizeOf(p: Pick<PrizeRow, 'id' | 'name' | 'kind'> & { points?: number | null; goodsId?: number | null }): Prize {
  return {
    id: p.id,
    name: p.name,
    kind: p.kind,
    ...(p.kind === 'points' ? { points: p.points! } : {}),
    ...(p.kind === 'goods' ? { goodsId: p.goodsId! } : {}),
  };
}

function livePrize(p: PrizeRow): LivePrize {
  return { ...prizeOf(p), weight: p.weight, limited: p.stock === null ? 0 : 1 };
}

/**
 * Writes a lottery's settings and prize stock to its Redis slot. `onlyIfAbsent`: load it only if
 * Redis has none (a present one is newer than anything read here). A limited prize Redis has no
 * count for starts at stock − wins; one it has is only raised to a larger allocation.
 */
export async function writeLottery(
  redis: RedisClient,
  keys: Keys,
  l: { row: LotteryRow; prizes: PrizeRow[]; wins: Map<number, number> },
  onlyIfAbsent: boolean,
): Promise<void> {
  const { row, prizes, wins } = l;
  const limited = prizes.filter((p) => p.stock !== null);
  await redis.pmLotterySet(
    keys.lottery(row.id),
    keys.lotteryStock(row.id),
    row.version,
    row.active ? 1 : 0,
    row.startsAt?.getTime() ?? 0,
    row.endsAt?.getTime() ?? 0,
    row.cost,
    row.cooldownSeconds * 1000,
    row.dailyDrawLimit ?? 0,
    JSON.stringify(prizes.map(livePrize)),
    onlyIfAbsent ? 1 : 0,
    ...limited.flatMap((p) => [p.id, p.stock!, Math.max(0, p.stock! - (wins.get(p.id) ?? 0))]),
  );
  await redis.sadd(keys.lotteryIndex(), String(row.id));
}
