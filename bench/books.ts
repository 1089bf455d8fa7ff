/**
 * What the bench knows from the client side — the books every invariant is checked against —
 * plus the store reads the checks compare them with (live Redis state, baseline tables).
 */
import type { RedisClient } from '../src/redis/client.ts';
import { slotPipeline } from '../src/redis/slot-pipeline.ts';
import type { Keys } from '../src/redis/keys.ts';
import type { Sql } from '../src/db/client.ts';
import type { Member } from './seed.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export const check = (name: string, ok: boolean, detail: string): Check => ({ name, ok, detail });

export const equal = (name: string, actual: number, expected: number): Check =>
  check(name, actual === expected, actual === expected ? String(actual) : `${actual}, expected ${expected}`);

/** Cumulative over the whole run, warm-ups included: every accepted write changes the stores. */
export class Books {
  redemptions = 0;
  pointsSpent = 0;
  earns = 0;
  earned = 0;
  /** Accepted responses whose points disagree with price × quantity (or the rule's points, or the draw's cost). */
  amountMismatches = 0;
  draws = 0;
  /** Points the accepted draws charged, and paid back as points prizes. */
  drawCost = 0;
  prizePoints = 0;
  /** Draws that won the limited prize, and those that paid a points prize (one earn row each). */
  jackpots = 0;
  pointPrizes = 0;
  /** Accepted transfers and the points they moved (member to member: Σ balances unchanged). */
  transfers = 0;
  transferred = 0;
  /** Orders accepted (paid at once, or pending), their payments, and the points they captured. */
  orders = 0;
  ordersPaidAtOnce = 0;
  paymentsSucceeded = 0;
  paymentsFailed = 0;
  orderPoints = 0;
  /** Units of paid orders (pending and failed ones hold none in the end). */
  readonly orderUnits = new Map<number, number>();
  baselineOrders = 0;
  baselineSpent = 0;
  readonly units = { redis: new Map<number, number>(), baseline: new Map<number, number>() };

  constructor(readonly seededTotal: number) {}

  redeemed(goodsId: number, quantity: number, spent: number, expected: number): void {
    this.redemptions++;
    this.pointsSpent += spent;
    if (spent !== expected) this.amountMismatches++;
    this.units.redis.set(goodsId, (this.units.redis.get(goodsId) ?? 0) + quantity);
  }

  baselineRedeemed(goodsId: number, quantity: number, cost: number): void {
    this.baselineOrders++;
    this.baselineSpent += cost;
    this.units.baseline.set(goodsId, (this.units.baseline.get(goodsId) ?? 0) + quantity);
  }

  earnedPoints(delta: number, expected: number): void {
    this.earns++;
    this.earned += delta;
    if (delta !== expected) this.amountMismatches++;
  }

  drew(cost: number, expectedCost: number, prizePoints: number, jackpot: boolean): void {
    this.draws++;
    this.drawCost += cost;
    this.prizePoints += prizePoints;
    if (prizePoints > 0) this.pointPrizes++;
    if (jackpot) this.jackpots++;
    if (cost !== expectedCost) this.amountMismatches++;
  }

  transferredPoints(amount: number, expected: number): void {
    this.transfers++;
    this.transferred += amount;
    if (amount !== expected) this.amountMismatches++;
  }

  /** An order's points captured (paid at once, or its payment succeeded) and its units kept. */
  orderCaptured(goodsId: number, quantity: number, points: number): void {
    this.orderPoints += points;
    this.orderUnits.set(goodsId, (this.orderUnits.get(goodsId) ?? 0) + quantity);
  }

  get redisTotal(): number {
    return this.seededTotal - this.pointsSpent + this.earned - this.drawCost + this.prizePoints - this.orderPoints;
  }

  get baselineTotal(): number {
    return this.seededTotal - this.baselineSpent;
  }

  unitsOn(route: 'redis' | 'baseline', goodsIds: number[]): number {
    return goodsIds.reduce((n, id) => n + (this.units[route].get(id) ?? 0), 0);
  }
}

/** Live `frozen` of every member, in member order. */
export async function redisFrozen(redis: RedisClient, keys: Keys, members: Member[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < members.length; i += 2000) {
    const p = slotPipeline(redis);
    for (const m of members.slice(i, i + 2000)) p.hget(keys.account(m.id), 'frozen');
    for (const [err, v] of (await p.exec()) ?? []) {
      if (err) throw err;
      out.push(Number(v ?? 0));
    }
  }
  return out;
}

/** Live `avail` of every member, in member order. */
export async function redisBalances(redis: RedisClient, keys: Keys, members: Member[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < members.length; i += 2000) {
    const p = slotPipeline(redis);
    for (const m of members.slice(i, i + 2000)) p.hget(keys.account(m.id), 'avail');
    for (const [err, v] of (await p.exec()) ?? []) {
      if (err) throw err;
      out.push(Number(v));
    }
  }
  return out;
}

export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

export async function redisStocks(redis: RedisClient, keys: Keys, goodsIds: number[]): Promise<number[]> {
  const p = slotPipeline(redis);
  for (const id of goodsIds) p.hget(keys.goods(id), 'stock');
  return ((await p.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return Number(v);
  });
}

export async function redisBought(redis: RedisClient, keys: Keys, goodsId: number): Promise<number[]> {
  return (await redis.hvals(keys.bought(goodsId))).map(Number);
}

export async function openReservations(redis: RedisClient, keys: Keys, goodsIds: number[]): Promise<number> {
  const p = slotPipeline(redis);
  for (const id of goodsIds) p.hlen(keys.reservations(id));
  return sum(((await p.exec()) ?? []).map(([, v]) => Number(v)));
}

export async function baselineState(sql: Sql, goodsIds: number[]) {
  const [acct] = await sql<Array<{ total: number }>>`
    SELECT COALESCE(SUM(available), 0)::bigint AS total FROM bench_baseline_accounts`;
  const [goods] = await sql<Array<{ stock: number }>>`
    SELECT COALESCE(SUM(stock), 0)::bigint AS stock FROM bench_baseline_goods WHERE id = ANY(${goodsIds}::bigint[])`;
  const [orders] = await sql<Array<{ n: number; onGoods: number; maxPerUser: number }>>`
    SELECT count(*)::bigint AS n,
           count(*) FILTER (WHERE goods_id = ANY(${goodsIds}::bigint[]))::bigint AS "onGoods",
           COALESCE((SELECT max(c) FROM (SELECT count(*) AS c FROM bench_baseline_orders
                     WHERE goods_id = ANY(${goodsIds}::bigint[]) GROUP BY user_id, goods_id) x), 0)::bigint AS "maxPerUser"
    FROM bench_baseline_orders`;
  const [ledger] = await sql<Array<{ n: number; spent: number }>>`
    SELECT count(*)::bigint AS n, COALESCE(-SUM(delta), 0)::bigint AS spent FROM bench_baseline_ledger`;
  return { total: acct.total, stock: goods.stock, orders, ledger };
}
