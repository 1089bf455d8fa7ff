/**
 * Lotteries. Settings and prizes live in Postgres (admin writes); the live state a draw is decided
 * by — settings, prize weights, prize stock, prize holds — lives in the lottery's Redis slot
 * {l<id>}, the member's cooldown and daily count in the member's slot. A draw is a saga across
 * the two slots, mirroring the redemption's (src/redemptions/service.ts):
 *   reserve (lua/lottery-reserve-4.lua, lottery slot): open? pick a prize with a CSPRNG number
 *     among those in stock, take a unit of a limited prize, hold it under (member, key);
 *   draw (lua/lottery-draw-7.lua, member slot): cooldown, daily limit, balance; pay the cost and
 *     credit a points prize in ONE script, both ops to the outbox, the draw in the key's record;
 *   confirm (lua/confirm-2.lua on the holds): the unit stays given.
 * A draw refused or unknown is settled: lua/abort-1.lua finds it charged (confirm) or leaves a
 * tombstone that refuses a late charge with that token (release the unit). The sweeper settles
 * holds past RESERVATION_TIMEOUT_MS, what a crashed API leaves behind.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Sql, Tx } from '../db/client.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import type { Deps } from '../deps.ts';
import { offsetMs } from '../engagement/business-day.ts';
import { DomainError } from '../errors/domain-error.ts';
import { checkWindow } from '../goods/service.ts';
import { keyHash, newExchangeNo, newOpId, requestHash } from '../points/idempotency.ts';
import type { Op } from '../points/op.ts';
import type { PointsService } from '../points/service.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import { DRAW_AT_ONCE_SCRIPT, DRAW_SCRIPT, PRIZE_HOLD_SCRIPT, ScriptBatcher } from '../redis/script-batch.ts';
import { isCluster } from '../redis/client.ts';
import type { CreateLotteryBody, PatchLotteryBody, PrizeInput } from './schemas.ts';
import {
  findLottery,
  LOTTERY_COLUMNS,
  persistedWins,
  PRIZE_COLUMNS,
  prizeOf,
  writeLottery,
  type LivePrize,
  type LotteryRow,
  type Prize,
  type PrizeKind,
  type PrizeRow,
} from './store.ts';
import { recordAudit } from '../audit/log.ts';

const DAY_MS = 86_400_000;
/** The CSPRNG number handed to the reserve script: uniform in [0, 2^48 − 1), node:crypto's widest range. */
const RANDOM_RANGE = 2 ** 48 - 1;

/** A prize hold as lua/lottery-reserve-4.lua stores it. */
export interface PrizeHold {
  u: number;
  k: string;
  o: string;
  t: string;
  h: string;
  d: number;
  c: number;
  cd: number;
  dl: number;
  p: LivePrize;
}

/** A draw's spend op (its op id is the draw id), as lua/lottery-draw-7.lua records it. */
export interface DrawOp extends Op {
  lotteryId?: number;
  prize?: Prize;
  day?: number;
}

export interface Draw {
  drawId: string;
  lotteryId: number;
  cost: number;
  prize: Prize;
  exchangeNo?: string;
  available: number;
  createdAt: string;
}

export type SettleOutcome = 'confirmed' | 'released';

export class LotteryService {
  /**
   * Test-only clock: when set, scripts take "now" from it instead of Redis TIME (the override
   * every script accepts), and the business day is computed at that instant.
   */
  clock: (() => number) | null = null;

  /** The draws' prize holds (lua/lottery-reserve-4.lua) of one turn of the event loop, in one script call (per lottery on a cluster). */
  private readonly holds: ScriptBatcher;
  /** The draws' member side (lua/lottery-draw-7.lua), gathered the same way. */
  private readonly draws: ScriptBatcher;
  /** Whole draws (lua/draw-at-once-9.lua, a single-node Redis), gathered the same way. */
  private readonly whole?: ScriptBatcher;
  /** 'atonce': one script per draw (a single-node Redis); 'saga': prize hold → member side → confirm. */
  readonly path: 'atonce' | 'saga';

  constructor(
    private readonly deps: Deps,
    private readonly points: PointsService,
  ) {
    this.holds = new ScriptBatcher(deps.redis, PRIZE_HOLD_SCRIPT, deps.env.SCRIPT_BATCH_MAX);
    this.draws = new ScriptBatcher(deps.redis, DRAW_SCRIPT, deps.env.SCRIPT_BATCH_MAX);
    this.path = deps.env.DRAW_PATH === 'saga' || isCluster(deps.redis) ? 'saga' : 'atonce';
    if (this.path === 'atonce') this.whole = new ScriptBatcher(deps.redis, DRAW_AT_ONCE_SCRIPT, deps.env.SCRIPT_BATCH_MAX);
  }

  // ------------------------------------------------------------------ admin writes

  /** The lottery, its prizes and an audit row, inside the admin write's transaction; sync() after the commit. */
  async insert(tx: Tx, body: CreateLotteryBody, actorId: number): Promise<{ id: number }> {
    checkWindow(body.startsAt ?? null, body.endsAt ?? null);
    await checkPrizes(tx, body.prizes, []);
    const [row] = await tx<Array<{ id: number }>>`
      INSERT INTO lotteries (name, cost, cooldown_seconds, daily_draw_limit, starts_at, ends_at, active)
      VALUES (${body.name}, ${body.cost}, ${body.cooldownSeconds ?? 0}, ${body.dailyDrawLimit ?? null},
              ${body.startsAt ?? null}, ${body.endsAt ?? null}, ${body.active ?? true})
      RETURNING id`;
    await insertPrizes(tx, row.id, body.prizes.map((p, i) => ({ p, position: i })));
    await recordAudit(tx, { actorId, action: 'lottery.create', targetType: 'lottery', targetId: String(row.id), data: { ...body } });
    return row;
  }

  /**
   * A patch: settings, and with `prizes` the new prize list — an entry with an id keeps that prize
   * (its name, weight and stock may change), one without is a new prize, a current prize left out
   * is retired (out of the draw, kept for history and stats).
   */
  async applyPatch(tx: Tx, id: number, patch: PatchLotteryBody, actorId: number): Promise<{ id: number }> {
    const [current] = await tx<LotteryRow[]>`SELECT ${tx.unsafe(LOTTERY_COLUMNS)} FROM lotteries WHERE id = ${id} FOR UPDATE`;
    if (!current) throw notFound(id);
    const startsAt = patch.startsAt !== undefined ? patch.startsAt : current.startsAt?.toISOString() ?? null;
    const endsAt = patch.endsAt !== undefined ? patch.endsAt : current.endsAt?.toISOString() ?? null;
    checkWindow(startsAt, endsAt);
    await tx`
      UPDATE lotteries SET
        name = ${patch.name ?? current.name},
        cost = ${patch.cost ?? current.cost},
        cooldown_seconds = ${patch.cooldownSeconds ?? current.cooldownSeconds},
        daily_draw_limit = ${patch.dailyDrawLimit !== undefined ? patch.dailyDrawLimit : current.dailyDrawLimit},
        starts_at = ${startsAt}, ends_at = ${endsAt},
        active = ${patch.active ?? current.active},
        version = version + 1, updated_at = now()
      WHERE id = ${id}`;
    if (patch.prizes) {
      const existing = await tx<PrizeRow[]>`
        SELECT ${tx.unsafe(PRIZE_COLUMNS)} FROM lottery_prizes WHERE lottery_id = ${id} AND NOT retired FOR UPDATE`;
      await checkPrizes(tx, patch.prizes, existing);
      const kept = patch.prizes.map((p, i) => ({ p, position: i })).filter((e) => e.p.id !== undefined);
      for (const { p, position } of kept) {
        await tx`
          UPDATE lottery_prizes SET name = ${p.name}, weight = ${p.weight}, position = ${position},
            stock = COALESCE(${p.stock ?? null}::bigint, stock)
          WHERE id = ${p.id!}`;
      }
      const keptIds = kept.map((e) => e.p.id!);
      await tx`UPDATE lottery_prizes SET retired = true
               WHERE lottery_id = ${id} AND NOT retired AND NOT (id = ANY(${keptIds}::int[]))`;
      await insertPrizes(tx, id, patch.prizes.map((p, i) => ({ p, position: i })).filter((e) => e.p.id === undefined));
    }
    await recordAudit(tx, { actorId, action: 'lottery.update', targetType: 'lottery', targetId: String(id), data: { ...patch } });
    return { id };
  }

  /**
   * After a write's commit, and again on its replay: brings the lottery's Redis state to the
   * current rows (settings if not older than Redis's; limited prizes' stock raised to what is
   * allocated, lua/lottery-set-2.lua). Safe to repeat and to run concurrently.
   */
  async sync(id: number) {
    const { row, prizes } = await this.load(this.deps.sql, id);
    await this.publish(row, prizes, false);
    return this.adminView(row, prizes);
  }

  /** Loads a lottery into Redis if it is missing there (it is lost only with Redis itself). */
  async ensureInRedis(id: number): Promise<boolean> {
    const found = await findLottery(this.deps.sql, id);
    if (!found) return false;
    await this.publish(found.row, found.prizes, true);
    return true;
  }

  private async publish(row: LotteryRow, prizes: PrizeRow[], onlyIfAbsent: boolean): Promise<void> {
    const wins = (await persistedWins(this.deps.sql, [row.id])).get(row.id) ?? new Map<number, number>();
    await writeLottery(this.deps.redis, this.deps.keys, { row, prizes, wins }, onlyIfAbsent);
  }

  // ------------------------------------------------------------------ reads

  async adminGet(id: number) {
    const { row, prizes } = await this.load(this.deps.sql, id);
    return this.adminView(row, prizes);
  }

  async adminList(limit: number, cursor?: number) {
    const rows = await this.deps.sql<LotteryRow[]>`
      SELECT ${this.deps.sql.unsafe(LOTTERY_COLUMNS)} FROM lotteries
      ${cursor ? this.deps.sql`WHERE id > ${cursor}` : this.deps.sql``} ORDER BY id LIMIT ${limit + 1}`;
    return this.page(rows, limit, (row, prizes) => this.adminView(row, prizes));
  }

  /** Lotteries members can see: switched on and not ended (upcoming ones say `open: false`). */
  async listPublic(limit: number, cursor?: number) {
    const rows = await this.deps.sql<LotteryRow[]>`
      SELECT ${this.deps.sql.unsafe(LOTTERY_COLUMNS)} FROM lotteries
      WHERE active AND (ends_at IS NULL OR ends_at > now()) ${cursor ? this.deps.sql`AND id > ${cursor}` : this.deps.sql``}
      ORDER BY id LIMIT ${limit + 1}`;
    return this.page(rows, limit, (row, prizes) => this.publicView(row, prizes));
  }

  /** A lottery switched off is not shown to members (the seeded example is one). */
  async getPublic(id: number) {
    const found = await findLottery(this.deps.sql, id);
    if (!found || !found.row.active) throw notFound(id);
    return this.publicView(found.row, found.prizes);
  }

  private async page<T>(rows: LotteryRow[], limit: number, view: (row: LotteryRow, prizes: PrizeRow[]) => Promise<T>) {
    const shown = rows.slice(0, limit);
    const prizes = await this.deps.sql<PrizeRow[]>`
      SELECT ${this.deps.sql.unsafe(PRIZE_COLUMNS)} FROM lottery_prizes
      WHERE lottery_id = ANY(${shown.map((r) => r.id)}::int[]) AND NOT retired ORDER BY lottery_id, position`;
    const items = await Promise.all(shown.map((r) => view(r, prizes.filter((p) => p.lotteryId === r.id))));
    return { items, nextCursor: rows.length > limit ? String(shown[shown.length - 1].id) : null };
  }

  /** Units left of each limited prize, from Redis (loading the lottery there first if needed). */
  private async remaining(row: LotteryRow, prizes: PrizeRow[]): Promise<Map<number, number>> {
    const { redis, keys } = this.deps;
    const limited = prizes.filter((p) => p.stock !== null);
    if ((await redis.exists(keys.lottery(row.id))) === 0) await this.publish(row, prizes, true);
    if (limited.length === 0) return new Map();
    const left = await redis.hmget(keys.lotteryStock(row.id), ...limited.map((p) => String(p.id)));
    return new Map(limited.map((p, i) => [p.id, Number(left[i] ?? 0)]));
  }

  private async adminView(row: LotteryRow, prizes: PrizeRow[]) {
    const left = await this.remaining(row, prizes);
    const odds = oddsOf(prizes, left);
    return {
      ...settingsOf(row),
      active: row.active,
      expectedPointsPerDraw: expectedPoints(prizes, new Map()),
      prizes: prizes.map((p) => ({
        id: p.id,
        name: p.name,
        kind: p.kind,
        points: p.points,
        goodsId: p.goodsId,
        weight: p.weight,
        stock: p.stock,
        remaining: p.stock === null ? null : left.get(p.id) ?? 0,
        odds: odds.get(p.id) ?? 0,
      })),
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    };
  }

  private async publicView(row: LotteryRow, prizes: PrizeRow[]) {
    const left = await this.remaining(row, prizes);
    const odds = oddsOf(prizes, left);
    const now = this.clock?.() ?? Date.now();
    const inWindow = (!row.startsAt || row.startsAt.getTime() <= now) && (!row.endsAt || now < row.endsAt.getTime());
    return {
      ...settingsOf(row),
      open: row.active && inWindow && odds.size > 0,
      expectedPointsPerDraw: expectedPoints(prizes, left),
      prizes: prizes.map((p) => ({
        ...prizeOf(p),
        odds: odds.get(p.id) ?? 0,
        ...(p.stock === null ? {} : { remaining: left.get(p.id) ?? 0 }),
      })),
    };
  }

  private async load(db: Sql | Tx, id: number) {
    const found = await findLottery(db, id);
    if (!found) throw notFound(id);
    return found;
  }

  // ------------------------------------------------------------------ draws

  async draw(userId: number, lotteryId: number, idempotencyKey: string): Promise<{ draw: Draw; replayed: boolean }> {
    const kh = keyHash(idempotencyKey);
    const hash = requestHash('lottery-draw', { lotteryId });
    const prior = await this.points.findByKey(userId, kh);
    if (prior) {
      if (prior.h !== hash) throw scriptError(ScriptCode.KeyReused);
      return { draw: await this.fromRecord(prior as DrawOp), replayed: true };
    }
    if (this.path === 'atonce') {
      const drawn = await this.drawAtOnce(userId, lotteryId, kh, hash);
      return { draw: await this.fromRecord(drawn.op), replayed: drawn.replayed };
    }
    // concurrent attempts with one key share the first one's hold: one draw id, one prize
    const hold = await this.reserve(userId, lotteryId, kh, hash);
    let charged: { op: DrawOp; replayed: boolean };
    try {
      charged = await this.charge(userId, lotteryId, kh, hash, hold);
    } catch (err) {
      await this.settle(lotteryId, userId, hold.o, kh, hold.t);
      throw err;
    }
    if (charged.op.opId === hold.o && charged.op.t === hold.t) {
      // the answer does not wait for confirm: if it is lost, the sweeper confirms after the deadline
      this.confirm(lotteryId, holdId(userId, kh), hold.t).catch(() => {});
    } else {
      // a concurrent attempt with the same key was charged first: give our unit back
      await this.settle(lotteryId, userId, hold.o, kh, hold.t);
    }
    return { draw: await this.fromRecord(charged.op), replayed: charged.replayed };
  }

  private nowArg(): number | '' {
    return this.clock ? this.clock() : '';
  }

  /**
   * The whole draw in one script (a single-node Redis): the prize picked among those in stock, the
   * member's side with it, a limited prize's unit taken once the draw is made; no hold in between.
   * Gathered with the other draws of this turn into one call (src/redis/script-batch.ts).
   */
  private async drawAtOnce(userId: number, lotteryId: number, kh: string, hash: string): Promise<{ op: DrawOp; replayed: boolean }> {
    const { keys, env } = this.deps;
    const now = this.nowArg();
    const call = () =>
      this.whole!.run(
        [keys.lottery(lotteryId), keys.lotteryStock(lotteryId), ...this.memberKeys(userId, lotteryId, kh)],
        [
          newOpId(),
          userId,
          hash,
          env.IDEMPOTENCY_TTL_SECONDS,
          now,
          randomBytes(8).toString('hex'),
          kh,
          lotteryId,
          randomInt(RANDOM_RANGE),
          offsetMs(env.BUSINESS_TIMEZONE, now === '' ? Date.now() : now),
          env.LOT_EXPIRY_DAYS * DAY_MS,
          newExchangeNo(),
          '', // the member draws: refused while frozen
        ],
      );
    let reply = await call();
    if (Number(reply[0]) === ScriptCode.LotteryNotFound) {
      if (!(await this.ensureInRedis(lotteryId))) throw notFound(lotteryId);
      reply = await call();
    }
    if (Number(reply[0]) === ScriptCode.NotHydrated) {
      if (!(await this.points.hydrate(userId))) throw new DomainError('USER_NOT_FOUND', `No member with id ${userId}`);
      reply = await call();
    }
    return this.drawn(reply);
  }

  /** A draw's keys in the member's slot (lua/lottery-draw-7.lua's KEYS). */
  private memberKeys(userId: number, lotteryId: number, kh: string): string[] {
    const { keys } = this.deps;
    return [
      keys.account(userId),
      keys.lotsByExpiry(userId),
      keys.lotRemaining(userId),
      keys.idem(userId, kh),
      keys.drawState(userId, lotteryId),
      keys.outboxOf(userId),
      keys.expiryIndexOf(userId),
    ];
  }

  private async reserve(userId: number, lotteryId: number, kh: string, hash: string): Promise<PrizeHold> {
    const { keys, env } = this.deps;
    const call = () =>
      this.holds.run(
        [keys.lottery(lotteryId), keys.lotteryStock(lotteryId), keys.lotteryHolds(lotteryId), keys.lotteryHoldDeadlines(lotteryId)],
        [newOpId(), userId, hash, env.RESERVATION_TIMEOUT_MS, this.nowArg(), randomBytes(8).toString('hex'), kh, randomInt(RANDOM_RANGE)],
      );
    let reply = await call();
    if (Number(reply[0]) === ScriptCode.LotteryNotFound) {
      if (!(await this.ensureInRedis(lotteryId))) throw notFound(lotteryId);
      reply = await call();
    }
    const code = Number(reply[0]);
    if (code !== 1) throw scriptError(code);
    return JSON.parse(String(reply[1])) as PrizeHold;
  }

  private async charge(userId: number, lotteryId: number, kh: string, hash: string, hold: PrizeHold) {
    const { env } = this.deps;
    const now = this.nowArg();
    const prize = prizeOf(hold.p);
    const call = () =>
      this.draws.run(
        this.memberKeys(userId, lotteryId, kh),
        [
          hold.o,
          userId,
          hash,
          env.IDEMPOTENCY_TTL_SECONDS,
          now,
          hold.t,
          kh,
          lotteryId,
          hold.c,
          hold.cd,
          hold.dl,
          offsetMs(env.BUSINESS_TIMEZONE, now === '' ? Date.now() : now),
          JSON.stringify(prize),
          env.LOT_EXPIRY_DAYS * DAY_MS,
          prize.kind === 'goods' ? newExchangeNo() : '',
          '', // the member draws: refused while frozen
        ],
      );
    let reply = await call();
    if (Number(reply[0]) === ScriptCode.NotHydrated) {
      if (!(await this.points.hydrate(userId))) throw new DomainError('USER_NOT_FOUND', `No member with id ${userId}`);
      reply = await call();
    }
    return this.drawn(reply, hold.dl);
  }

  /**
   * The draw's op from a member-side reply; its refusals thrown. `daily`: the lottery's daily limit,
   * for the message (without it, the limit the at-once script adds to its refusal).
   */
  private drawn(reply: Array<string | number | null>, daily?: number): { op: DrawOp; replayed: boolean } {
    const code = Number(reply[0]);
    if (code === ScriptCode.LotteryCooldown) {
      const retryAfterSeconds = Math.max(1, Math.ceil(Number(reply[1]) / 1000));
      throw new DomainError('LOTTERY_COOLDOWN', `Too soon after your last draw: draw again in ${retryAfterSeconds} s`, {
        retryAfterSeconds,
      });
    }
    if (code === ScriptCode.DailyLimit) {
      throw new DomainError('DAILY_LIMIT_REACHED', `You have used today's ${daily ?? Number(reply[2])} draw(s) of this lottery`);
    }
    if (code !== 1) throw scriptError(code);
    return { op: JSON.parse(String(reply[1])) as DrawOp, replayed: Number(reply[2]) === 1 };
  }

  private confirm(lotteryId: number, hold: string, token: string): Promise<number> {
    const { redis, keys } = this.deps;
    return redis.pmConfirm(keys.lotteryHolds(lotteryId), keys.lotteryHoldDeadlines(lotteryId), hold, token);
  }

  /**
   * Settles a hold whose draw is unknown: a tombstone in the member's record makes any later
   * charge with this token fail, so the outcome is final — confirmed if the key's op is this draw
   * charged with this token, released (a limited prize's unit back in stock) otherwise.
   */
  async settle(lotteryId: number, userId: number, drawId: string, kh: string, token: string): Promise<SettleOutcome> {
    const { redis, keys, env } = this.deps;
    const abort = await redis.pmAbort(keys.idem(userId, kh), token, env.IDEMPOTENCY_TTL_SECONDS);
    if (Number(abort[0]) === 1) {
      const op = JSON.parse(String(abort[1])) as Op;
      if (op.opId === drawId && op.t === token) {
        await this.confirm(lotteryId, holdId(userId, kh), token);
        return 'confirmed';
      }
    }
    await redis.pmLotteryRelease(
      keys.lotteryStock(lotteryId),
      keys.lotteryHolds(lotteryId),
      keys.lotteryHoldDeadlines(lotteryId),
      holdId(userId, kh),
      token,
    );
    return 'released';
  }

  /** Settles prize holds past their deadline, for every lottery with Redis state (the sweeper role). */
  async sweep(graceMs = 0, batch = 500): Promise<{ confirmed: number; released: number }> {
    const { redis, keys } = this.deps;
    let now = this.clock?.();
    if (now === undefined) {
      const [sec, usec] = await redis.time();
      now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    }
    const counts = { confirmed: 0, released: 0 };
    for (const lid of await redis.smembers(keys.lotteryIndex())) {
      const due = await redis.zrangebyscore(keys.lotteryHoldDeadlines(lid), '-inf', now - graceMs, 'LIMIT', 0, batch);
      if (due.length === 0) continue;
      const raws = await redis.hmget(keys.lotteryHolds(lid), ...due);
      for (let i = 0; i < due.length; i++) {
        const raw = raws[i];
        if (raw === null) {
          await redis.zrem(keys.lotteryHoldDeadlines(lid), due[i]);
          continue;
        }
        const h = JSON.parse(raw) as PrizeHold;
        counts[await this.settle(Number(lid), h.u, h.o, h.k, h.t)]++;
      }
    }
    return counts;
  }

  /**
   * The answer for a draw from its record. A record rebuilt from the ledger (npm run rebuild)
   * carries no prize: the persisted draw row has it (it commits with the ledger row).
   */
  private async fromRecord(op: DrawOp): Promise<Draw> {
    if (op.prize && op.lotteryId !== undefined) {
      return {
        drawId: op.opId,
        lotteryId: op.lotteryId,
        cost: -op.delta,
        prize: op.prize,
        ...(op.exchangeNo ? { exchangeNo: op.exchangeNo } : {}),
        available: op.available,
        createdAt: new Date(op.at).toISOString(),
      };
    }
    const [row] = await this.deps.sql<Array<DrawRow & { exchangeNo: string | null }>>`
      SELECT ${this.deps.sql.unsafe(DRAW_COLUMNS)}, r.exchange_no AS "exchangeNo"
      FROM lottery_draws d LEFT JOIN redemptions r ON r.id = d.draw_id WHERE d.draw_id = ${op.opId}`;
    if (!row) throw new Error(`draw ${op.opId} has a record but no persisted row`);
    return {
      ...drawOf(row),
      ...(row.exchangeNo ? { exchangeNo: row.exchangeNo } : {}),
      available: op.balanceAfter + row.prizePoints,
    };
  }

  // ------------------------------------------------------------------ history and stats

  /** The member's persisted draws, newest first. */
  async listOwn(userId: number, limit: number, cursor?: string) {
    const { sql } = this.deps;
    const after = cursor ? decodeCursor(cursor) : null;
    const rows = await sql<DrawRow[]>`
      SELECT ${sql.unsafe(DRAW_COLUMNS)} FROM lottery_draws d WHERE d.user_id = ${userId}
      ${after ? sql`AND (d.created_at, d.draw_id) < (to_timestamp(${after.ms} / 1000.0), ${after.id})` : sql``}
      ORDER BY d.created_at DESC NULLS LAST, d.draw_id DESC NULLS LAST LIMIT ${limit + 1}`;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(drawOf),
      nextCursor: rows.length > limit ? encodeCursor(last.createdAt.getTime(), last.drawId) : null,
    };
  }

  /**
   * Persisted draws of a lottery: points collected and paid, the payout ratio, and how it compares
   * with the expected value of the current weights (every prize in stock).
   */
  async stats(id: number) {
    const { sql } = this.deps;
    const { row } = await this.load(sql, id);
    const all = await sql<PrizeRow[]>`
      SELECT ${sql.unsafe(PRIZE_COLUMNS)} FROM lottery_prizes WHERE lottery_id = ${id} ORDER BY retired, position`;
    const byPrize = await sql<Array<{ prizeId: number; wins: number; collected: number; paid: number }>>`
      SELECT prize_id AS "prizeId", count(*)::int AS wins, COALESCE(SUM(cost), 0)::bigint AS collected,
             COALESCE(SUM(prize_points), 0)::bigint AS paid
      FROM lottery_draws WHERE lottery_id = ${id} GROUP BY prize_id`;
    const draws = byPrize.reduce((n, r) => n + r.wins, 0);
    const collected = byPrize.reduce((n, r) => n + r.collected, 0);
    const paid = byPrize.reduce((n, r) => n + r.paid, 0);
    const current = all.filter((p) => !p.retired);
    const expected = expectedPoints(current, new Map());
    const totalWeight = current.reduce((n, p) => n + p.weight, 0);
    const winsOf = new Map(byPrize.map((r) => [r.prizeId, r.wins]));
    const perDraw = draws > 0 ? paid / draws : null;
    return {
      lotteryId: id,
      draws,
      pointsCollected: collected,
      pointsPaid: paid,
      payoutRatio: collected > 0 ? paid / collected : null,
      expectedPointsPerDraw: expected,
      expectedPayoutRatio: expected / row.cost,
      pointsPaidPerDraw: perDraw,
      payoutVsExpected: perDraw !== null && expected > 0 ? perDraw / expected : null,
      prizes: all.map((p) => ({
        id: p.id,
        name: p.name,
        kind: p.kind,
        points: p.points,
        retired: p.retired,
        wins: winsOf.get(p.id) ?? 0,
        share: draws > 0 ? (winsOf.get(p.id) ?? 0) / draws : null,
        expectedShare: p.retired || totalWeight === 0 ? 0 : p.weight / totalWeight,
      })),
    };
  }
}

interface DrawRow {
  drawId: string;
  lotteryId: number;
  cost: number;
  prizeId: number;
  prizeName: string;
  prizeKind: PrizeKind;
  prizePoints: number;
  prizeGoodsId: number | null;
  createdAt: Date;
}

const DRAW_COLUMNS = `d.draw_id AS "drawId", d.lottery_id AS "lotteryId", d.cost, d.prize_id AS "prizeId",
  d.prize_name AS "prizeName", d.prize_kind AS "prizeKind", d.prize_points AS "prizePoints",
  d.prize_goods_id AS "prizeGoodsId", d.created_at AS "createdAt"`;

function drawOf(r: DrawRow): Omit<Draw, 'available'> {
  return {
    drawId: r.drawId,
    lotteryId: r.lotteryId,
    cost: r.cost,
    prize: {
      id: r.prizeId,
      name: r.prizeName,
      kind: r.prizeKind,
      ...(r.prizeKind === 'points' ? { points: r.prizePoints } : {}),
      ...(r.prizeGoodsId !== null ? { goodsId: r.prizeGoodsId } : {}),
    },
    createdAt: r.createdAt.toISOString(),
  };
}

/** Holds belong to (member, Idempotency-Key): the holds hash field. */
export function holdId(userId: number, kh: string): string {
  return `${userId}:${kh}`;
}

function notFound(id: number): DomainError {
  return new DomainError('LOTTERY_NOT_FOUND', `No lottery with id ${id}`);
}

function settingsOf(row: LotteryRow) {
  return {
    id: row.id,
    name: row.name,
    cost: row.cost,
    cooldownSeconds: row.cooldownSeconds,
    dailyDrawLimit: row.dailyDrawLimit,
    startsAt: row.startsAt?.toISOString() ?? null,
    endsAt: row.endsAt?.toISOString() ?? null,
  };
}



/** Each prize's chance now: weight over the weights of the prizes in stock (an empty map: none left). */
function oddsOf(prizes: PrizeRow[], left: Map<number, number>): Map<number, number> {
  const live = prizes.filter((p) => p.stock === null || (left.get(p.id) ?? 0) > 0);
  const total = live.reduce((n, p) => n + p.weight, 0);
  return new Map(live.map((p) => [p.id, p.weight / total]));
}

/**
 * Points a draw pays on average: Σ points × weight / Σ weight over the prizes in stock. With an
 * empty `left`, every prize counts as in stock (the lottery as configured).
 */
function expectedPoints(prizes: PrizeRow[], left: Map<number, number>): number {
  const live = left.size === 0 ? prizes : prizes.filter((p) => p.stock === null || (left.get(p.id) ?? 0) > 0);
  const total = live.reduce((n, p) => n + p.weight, 0);
  if (total === 0) return 0;
  return live.reduce((n, p) => n + (p.kind === 'points' ? p.points! * p.weight : 0), 0) / total;
}


async function insertPrizes(tx: Tx, lotteryId: number, entries: Array<{ p: PrizeInput; position: number }>): Promise<void> {
  for (const { p, position } of entries) {
    await tx`
      INSERT INTO lottery_prizes (lottery_id, position, name, kind, points, goods_id, weight, stock)
      VALUES (${lotteryId}, ${position}, ${p.name}, ${p.kind}, ${p.points ?? null}, ${p.goodsId ?? null}, ${p.weight},
              ${p.stock ?? null})`;
  }
}

/**
 * What a prize list must satisfy: a points prize has points, a goods prize an existing goods item,
 * neither carries the other's field; an entry with an id is a current prize of this lottery, once,
 * with its kind, points and goods unchanged (a prize's draws stay true to it: retire it and add a
 * new one instead), and its stock only raised (an unlimited prize stays unlimited).
 */
async function checkPrizes(tx: Tx, prizes: PrizeInput[], existing: PrizeRow[]): Promise<void> {
  const bad = (i: number, why: string) => new DomainError('VALIDATION_FAILED', `prizes[${i}]: ${why}`);
  const byId = new Map(existing.map((p) => [p.id, p]));
  const seen = new Set<number>();
  for (const [i, p] of prizes.entries()) {
    if (p.kind === 'points' && p.points === undefined) throw bad(i, 'a points prize needs points');
    if (p.kind !== 'points' && p.points !== undefined) throw bad(i, `a ${p.kind} prize has no points`);
    if (p.kind === 'goods' && p.goodsId === undefined) throw bad(i, 'a goods prize needs a goodsId');
    if (p.kind !== 'goods' && p.goodsId !== undefined) throw bad(i, `a ${p.kind} prize has no goodsId`);
    if (p.id === undefined) continue;
    const cur = byId.get(p.id);
    if (!cur) throw bad(i, `no current prize ${p.id} in this lottery`);
    if (seen.has(p.id)) throw bad(i, `prize ${p.id} is listed twice`);
    seen.add(p.id);
    if (cur.kind !== p.kind || (cur.points ?? undefined) !== p.points || (cur.goodsId ?? undefined) !== p.goodsId) {
      throw bad(i, "a prize's kind, points and goods cannot change: leave it out (it is retired) and add a new prize");
    }
    if (cur.stock === null && p.stock !== undefined && p.stock !== null) {
      throw bad(i, 'an unlimited prize cannot be given a stock: retire it and add a new prize');
    }
    if (cur.stock !== null && p.stock !== undefined && (p.stock === null || p.stock < cur.stock)) {
      throw bad(i, `stock can only be raised (it is ${cur.stock}); leave it out to keep it`);
    }
  }
  const goodsIds = [...new Set(prizes.filter((p) => p.goodsId !== undefined).map((p) => p.goodsId!))];
  if (goodsIds.length > 0) {
    const found = await tx<Array<{ id: number }>>`SELECT id FROM goods WHERE id = ANY(${goodsIds}::bigint[])`;
    const known = new Set(found.map((g) => g.id));
    const i = prizes.findIndex((p) => p.goodsId !== undefined && !known.has(p.goodsId));
    if (i >= 0) throw bad(i, `no goods with id ${prizes[i].goodsId}`);
  }
}
