/**
 * The scenarios. Each one: a warm-up run, then the measured run (CPU split sampled over
 * it; Redis-path writes also metered for persistence until the workers drained), then its
 * invariant checks against the live stores. The books are cumulative, so the checks hold for
 * everything done so far, warm-ups included.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../src/redis/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import type { Sql } from '../src/db/client.ts';
import { DURATION_S, EARN_RULE, FLASH_STOCK, LOTTERY, ORDER_CASH_PRICE, ORDER_POINTS_TO_USE, REDEEM_STOCK, WARMUP_S } from './config.ts';
import type { Env } from '../src/config/env.ts';
import { GoodsService } from '../src/goods/service.ts';
import { buildModel } from '../src/recommendations/model.ts';
import { signedHeaders } from '../src/orders/payments.ts';
import { runLoad, runPlain, type LoadSpec, type LoadStats } from './load.ts';
import { masters } from '../src/redis/client.ts';
import { measureCpu, servicePids, type CpuReport, type Roots } from './monitor.ts';
import type { PersistStats, Pipeline } from './pipeline.ts';
import { HELLO_AFTER } from './report.ts';
import type { Catalog, Member } from './seed.ts';
import {
  Books,
  baselineState,
  check,
  equal,
  redisBalances,
  redisBought,
  redisFrozen,
  redisStocks,
  sum,
  type Check,
} from './books.ts';

export interface World {
  url: string;
  members: Member[];
  catalog: Catalog;
  books: Books;
  redis: RedisClient;
  keys: Keys;
  sql: Sql;
  pipeline: Pipeline;
  roots: Roots;
  /** The simulated payment provider's webhook secret (the order scenario pays through the webhook). */
  paymentSecret: string;
  env: Env;
}

export interface ScenarioResult {
  name: string;
  stats: LoadStats;
  warmup: LoadStats;
  checks: Check[];
  ok: boolean;
  cpu: CpuReport;
  /**
   * CPU from the start of the measured run until its writes were persisted (the workers' and
   * Postgres's share of the load included): what the per-accepted-op table divides.
   */
  cpuUntilPersisted: CpuReport;
  persist?: PersistStats;
}

interface Definition {
  warm(): Promise<LoadStats>;
  run(onStop: () => void): Promise<LoadStats>;
  /** Status keys ('201', '409 SOLD_OUT') a correct run may produce. */
  allowed: string[];
  /** Meter persistence (and start from an empty backlog). */
  persist?: boolean;
  checks(stats: LoadStats): Promise<Check[]>;
}

async function measure(w: World, name: string, d: Definition): Promise<ScenarioResult> {
  const warmup = await d.warm();
  if (d.persist) await w.pipeline.drain();
  let cpu: CpuReport | undefined;
  let endAll: (() => CpuReport) | undefined;
  // only the Redis and Postgres processes serving the bench count (not other work on the machine)
  const services = await servicePids(masters(w.redis).map((m) => () => m.info('server')), w.sql);
  const timed = () => {
    const end = measureCpu(w.roots, services);
    endAll = measureCpu(w.roots, services);
    return d.run(() => (cpu = end()));
  };
  let stats: LoadStats;
  let persist: PersistStats | undefined;
  if (d.persist) ({ result: stats, persist } = await w.pipeline.meter(timed));
  else stats = await timed();
  const cpuUntilPersisted = endAll!();
  const unexpected = Object.entries(stats.statuses).filter(([k]) => !d.allowed.includes(k));
  const clean = unexpected.length === 0 && stats.errors === 0;
  const checks = [
    check(
      'only expected statuses',
      clean,
      clean ? d.allowed.join(', ') : `unexpected ${JSON.stringify(Object.fromEntries(unexpected))}, ${stats.errors} transport errors`,
    ),
    ...(await d.checks(stats)),
  ];
  return { name, stats, warmup, checks, ok: checks.every((c) => c.ok), cpu: cpu!, cpuUntilPersisted, persist };
}

/** Who asked for a flash item and who got it, by member index. */
class FlashTally {
  private readonly asked: Uint8Array;
  private readonly won: Uint16Array;
  constructor(n: number) {
    this.asked = new Uint8Array(n);
    this.won = new Uint16Array(n);
  }
  record(member: number, status: number): void {
    if (status < 300 || status === 409) this.asked[member] = 1;
    if (status < 300) this.won[member]++;
  }
  get demand(): number {
    return sum(Array.from(this.asked));
  }
  get twice(): number {
    return this.won.filter((n) => n > 1).length;
  }
}

type Route = 'redis' | 'baseline';

/**
 * Waits until no other session of the bench database is busy. The baseline route checks its
 * idempotency key before taking its locks, so a replay racing its still-running original would
 * be answered as a new request (LIMIT_EXCEEDED, or a duplicate-key error) — not what it did.
 */
async function databaseIdle(sql: Sql): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (let quiet = 0; quiet < 2 && Date.now() < deadline; ) {
    await sleep(250);
    const [{ busy }] = await sql<Array<{ busy: number }>>`
      SELECT count(*)::int AS busy FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`;
    quiet = busy === 0 ? quiet + 1 : 0;
  }
}

function redemptionSpec(w: World, route: Route, pick: () => number, tally?: FlashTally): LoadSpec {
  return {
    method: 'POST',
    write: true,
    settle: route === 'baseline' ? () => databaseIdle(w.sql) : undefined,
    plan: (seq) => ({
      member: seq % w.members.length,
      path: route === 'redis' ? '/v1/redemptions' : '/bench/baseline/redeem',
      body: { goodsId: pick(), quantity: 1 },
    }),
    onResult: (sent, status, body) => {
      tally?.record(sent.member, status);
      if (status >= 300) return;
      const goodsId = sent.body!.goodsId as number;
      const cost = w.catalog.price.get(goodsId)!;
      if (route === 'redis') w.books.redeemed(goodsId, 1, (JSON.parse(body) as { pointsSpent: number }).pointsSpent, cost);
      else w.books.baselineRedeemed(goodsId, 1, cost);
    },
  };
}

const load = (w: World, spec: LoadSpec, seconds: number, onStop?: () => void) =>
  runLoad(w.url, w.members, spec, seconds, onStop);

async function redisBalanceCheck(w: World): Promise<Check> {
  const total = sum(await redisBalances(w.redis, w.keys, w.members));
  return equal('Σ Redis balances = seeded − spent + earned − draw costs + prizes', total, w.books.redisTotal);
}

async function baselineChecks(w: World, goodsIds: number[]): Promise<{ state: Awaited<ReturnType<typeof baselineState>>; checks: Check[] }> {
  const state = await baselineState(w.sql, goodsIds);
  return {
    state,
    checks: [
      equal('orders = accepted (all runs)', state.orders.n, w.books.baselineOrders),
      equal('ledger rows = orders', state.ledger.n, state.orders.n),
      equal('ledger spend = points spent', state.ledger.spent, w.books.baselineSpent),
      equal('Σ balances = seeded − spent', state.total, w.books.baselineTotal),
    ],
  };
}

export function hello(w: World): Promise<ScenarioResult> {
  return measureBareRoute(w, 'hello');
}

/**
 * The bare route again, right after the scenarios the targets compare with it (run.ts adds it when
 * hello and any of them run): the host's speed drifts within a run, and the reference is the mean of
 * the two (bench/report.ts), with the drift between them reported.
 */
export function helloAfter(w: World): Promise<ScenarioResult> {
  return measureBareRoute(w, HELLO_AFTER);
}

function measureBareRoute(w: World, name: string): Promise<ScenarioResult> {
  return measure(w, name, {
    warm: () => runPlain(w.url, '/bench/hello', WARMUP_S),
    run: (onStop) => runPlain(w.url, '/bench/hello', DURATION_S, onStop),
    allowed: ['200'],
    checks: async () => [],
  });
}

export function flash(w: World): Promise<ScenarioResult> {
  const { flash: id, warmFlash } = w.catalog;
  const tally = new FlashTally(w.members.length);
  return measure(w, 'flash', {
    warm: () => load(w, redemptionSpec(w, 'redis', () => warmFlash), WARMUP_S),
    run: (onStop) => load(w, redemptionSpec(w, 'redis', () => id, tally), DURATION_S, onStop),
    allowed: ['201', '409 SOLD_OUT', '409 LIMIT_EXCEEDED'],
    persist: true,
    checks: async (stats) => {
      const [stock] = await redisStocks(w.redis, w.keys, [id]);
      const bought = await redisBought(w.redis, w.keys, id);
      const gone = FLASH_STOCK - stock;
      return [
        check('accepted ≤ stock', stats.accepted <= FLASH_STOCK, `${stats.accepted} ≤ ${FLASH_STOCK}`),
        equal('live stock = stock − accepted', stock, FLASH_STOCK - stats.accepted),
        equal('units gone = min(stock, demand)', gone, Math.min(FLASH_STOCK, tally.demand)),
        equal('members accepted twice', tally.twice, 0),
        equal('Redis bought: members = accepted', bought.length, stats.accepted),
        equal('Redis bought: members with > 1', bought.filter((n) => n > 1).length, 0),
        await redisBalanceCheck(w),
      ];
    },
  });
}

export function baselineFlash(w: World): Promise<ScenarioResult> {
  const { flash: id, warmFlash } = w.catalog;
  const tally = new FlashTally(w.members.length);
  return measure(w, 'baseline-flash', {
    warm: () => load(w, redemptionSpec(w, 'baseline', () => warmFlash), WARMUP_S),
    run: (onStop) => load(w, redemptionSpec(w, 'baseline', () => id, tally), DURATION_S, onStop),
    allowed: ['201', '200', '409 SOLD_OUT', '409 LIMIT_EXCEEDED'], // 200: replay of a committed order
    checks: async (stats) => {
      const { state, checks } = await baselineChecks(w, [id]);
      return [
        check('accepted ≤ stock', stats.accepted <= FLASH_STOCK, `${stats.accepted} ≤ ${FLASH_STOCK}`),
        equal('stock row = stock − accepted', state.stock, FLASH_STOCK - stats.accepted),
        equal('units gone = min(stock, demand)', FLASH_STOCK - state.stock, Math.min(FLASH_STOCK, tally.demand)),
        equal('orders on item = accepted', state.orders.onGoods, stats.accepted),
        equal('members accepted twice', tally.twice, 0),
        check('orders per member ≤ 1', state.orders.maxPerUser <= 1, `max ${state.orders.maxPerUser}`),
        ...checks,
      ];
    },
  });
}

const randomItem = (items: number[]) => () => items[Math.floor(Math.random() * items.length)];

export function redeem(w: World): Promise<ScenarioResult> {
  const { items } = w.catalog;
  const spec = redemptionSpec(w, 'redis', randomItem(items));
  return measure(w, 'redeem', {
    warm: () => load(w, spec, WARMUP_S),
    run: (onStop) => load(w, spec, DURATION_S, onStop),
    allowed: ['201'],
    persist: true,
    checks: async () => {
      const stocks = await redisStocks(w.redis, w.keys, items);
      const sold = sum(items.map((id, i) => w.catalog.initialStock.get(id)! - stocks[i]));
      return [
        equal('units sold = accepted units (all runs)', sold, w.books.unitsOn('redis', items)),
        equal('accepted responses with a wrong amount (all runs)', w.books.amountMismatches, 0),
        await redisBalanceCheck(w),
      ];
    },
  });
}

export function baselineRedeem(w: World): Promise<ScenarioResult> {
  const { items } = w.catalog;
  const spec = redemptionSpec(w, 'baseline', randomItem(items));
  return measure(w, 'baseline-redeem', {
    warm: () => load(w, spec, WARMUP_S),
    run: (onStop) => load(w, spec, DURATION_S, onStop),
    allowed: ['201', '200'],
    checks: async () => {
      const { state, checks } = await baselineChecks(w, items);
      const initial = sum(items.map((id) => w.catalog.initialStock.get(id)!));
      return [equal('units sold = accepted units (all runs)', initial - state.stock, w.books.unitsOn('baseline', items)), ...checks];
    },
  });
}

export function earn(w: World): Promise<ScenarioResult> {
  const spec: LoadSpec = {
    method: 'POST',
    write: true,
    plan: (seq) => ({ member: seq % w.members.length, path: '/v1/points/earn', body: { action: EARN_RULE.action } }),
    onResult: (_sent, status, body) => {
      if (status === 200) w.books.earnedPoints((JSON.parse(body) as { delta: number }).delta, EARN_RULE.points);
    },
  };
  return measure(w, 'earn', {
    warm: () => load(w, spec, WARMUP_S),
    run: (onStop) => load(w, spec, DURATION_S, onStop),
    allowed: ['200'],
    persist: true,
    checks: async () => [
      equal('accepted responses with a wrong amount (all runs)', w.books.amountMismatches, 0),
      await redisBalanceCheck(w),
    ],
  });
}

/**
 * Check-in: every member checks in over and over; the first of the business day credits 10 (the
 * base: bench members are Regular), the rest are refused (409 ALREADY_CHECKED_IN) by the same
 * script. The refusal path is the hot one, as on a real morning.
 */
export function checkin(w: World): Promise<ScenarioResult> {
  const creditedMembers = new Set<number>();
  let credited = 0;
  const spec: LoadSpec = {
    method: 'POST',
    write: true,
    plan: (seq) => ({ member: seq % w.members.length, path: '/v1/me/checkins', body: {} }),
    onResult: (sent, status, body) => {
      if (status === 201) credited++;
      // A check-in whose answer was lost (in flight at the stop) is replayed as a 409 carrying the
      // day's check-in: a member never seen credited was credited by that request.
      if ((status !== 201 && status !== 409) || creditedMembers.has(sent.member)) return;
      creditedMembers.add(sent.member);
      const points = status === 201 ? (JSON.parse(body) as { points: number }).points : (JSON.parse(body) as { today: { points: number } }).today.points;
      w.books.earnedPoints(points, 10);
    },
  };
  return measure(w, 'checkin', {
    warm: () => load(w, spec, WARMUP_S),
    run: (onStop) => load(w, spec, DURATION_S, onStop),
    allowed: ['201', '409 ALREADY_CHECKED_IN'],
    persist: true,
    checks: async () => [
      check('check-ins answered 201 ≤ members (one per business day)', credited <= w.members.length, `${credited} ≤ ${w.members.length}`),
      equal('accepted responses with a wrong amount (all runs)', w.books.amountMismatches, 0),
      await redisBalanceCheck(w),
    ],
  });
}

/**
 * Lottery draws: each one a prize reserve in the lottery's slot and one member-slot script that
 * pays the cost and credits a points prize (two ops to persist), then a confirm.
 */
export function draw(w: World): Promise<ScenarioResult> {
  const { id, jackpotPrizeId } = w.catalog.lottery;
  const spec: LoadSpec = {
    method: 'POST',
    write: true,
    plan: (seq) => ({ member: seq % w.members.length, path: `/v1/lotteries/${id}/draws` }),
    onResult: (_sent, status, body) => {
      if (status !== 201) return;
      const d = JSON.parse(body) as { cost: number; prize: { id: number; points?: number } };
      w.books.drew(d.cost, LOTTERY.cost, d.prize.points ?? 0, d.prize.id === jackpotPrizeId);
    },
  };
  return measure(w, 'draw', {
    warm: () => load(w, spec, WARMUP_S),
    run: (onStop) => load(w, spec, DURATION_S, onStop),
    allowed: ['201'],
    persist: true,
    checks: async () => {
      const [stock] = (await w.redis.hmget(w.keys.lotteryStock(id), String(jackpotPrizeId))).map(Number);
      const [ledger] = await w.sql<Array<{ charged: number; paid: number }>>`
        SELECT COALESCE(-SUM(delta) FILTER (WHERE biz_type = 'lottery'), 0)::bigint AS charged,
               COALESCE(SUM(delta) FILTER (WHERE biz_type = 'lottery_prize'), 0)::bigint AS paid
        FROM ledger_entries WHERE biz_type IN ('lottery', 'lottery_prize')`;
      const [won] = await w.sql<Array<{ draws: number; jackpots: number }>>`
        SELECT count(*)::bigint AS draws, count(*) FILTER (WHERE prize_id = ${jackpotPrizeId})::bigint AS jackpots
        FROM lottery_draws WHERE lottery_id = ${id}`;
      return [
        equal('points charged = cost × accepted draws (ledger, all runs)', ledger.charged, LOTTERY.cost * w.books.draws),
        equal('prize points paid = points prizes answered (ledger, all runs)', ledger.paid, w.books.prizePoints),
        equal('draws persisted = accepted draws (all runs)', won.draws, w.books.draws),
        check('limited prize won ≤ its stock', w.books.jackpots <= LOTTERY.jackpot.stock, `${w.books.jackpots} ≤ ${LOTTERY.jackpot.stock}`),
        equal('limited prize: live stock = stock − won', stock, LOTTERY.jackpot.stock - w.books.jackpots),
        equal('limited prize: persisted wins = won', won.jackpots, w.books.jackpots),
        equal('accepted responses with a wrong amount (all runs)', w.books.amountMismatches, 0),
        await redisBalanceCheck(w),
      ];
    },
  });
}

/**
 * Points transfers: each member sends a few points to another member (by username, the receiver
 * read from Postgres), the debit in the sender's slot and the credit in the receiver's, two ops to
 * persist. The books' Σ balances does not move; the pending sets are empty once answered (the API
 * credits before it answers, and the workers' sweeper would complete any credit left behind).
 */
export function transfer(w: World): Promise<ScenarioResult> {
  const n = w.members.length;
  const amountOf = (seq: number) => 1 + (seq % 5);
  const spec: LoadSpec = {
    method: 'POST',
    write: true,
    plan: (seq) => {
      const member = seq % n;
      // a receiver 1..97 places on: never the sender, spread over the partitions
      const to = w.members[(member + 1 + (Math.floor(seq / n) % 97)) % n];
      return { member, path: '/v1/points/transfers', body: { toUsername: to.username, amount: amountOf(seq) } };
    },
    onResult: (sent, status, body) => {
      if (status === 201) w.books.transferredPoints((JSON.parse(body) as { amount: number }).amount, sent.body!.amount as number);
    },
  };
  return measure(w, 'transfer', {
    warm: () => load(w, spec, WARMUP_S),
    run: (onStop) => load(w, spec, DURATION_S, onStop),
    allowed: ['201'],
    persist: true,
    checks: async () => {
      let pending = 0;
      for (let p = 0; p < w.keys.partitions; p++) pending += await w.redis.zcard(w.keys.transfersPending(p));
      const [ledger] = await w.sql<Array<{ outs: number; ins: number; sent: number; received: number }>>`
        SELECT count(*) FILTER (WHERE biz_type = 'transfer_out')::bigint AS outs,
               count(*) FILTER (WHERE biz_type = 'transfer_in')::bigint AS ins,
               COALESCE(-SUM(delta) FILTER (WHERE biz_type = 'transfer_out'), 0)::bigint AS sent,
               COALESCE(SUM(delta) FILTER (WHERE biz_type = 'transfer_in'), 0)::bigint AS received
        FROM ledger_entries WHERE biz_type IN ('transfer_out', 'transfer_in')`;
      const [rows] = await w.sql<Array<{ n: number; completed: number; points: number }>>`
        SELECT count(*)::bigint AS n, count(completed_at)::bigint AS completed, COALESCE(SUM(amount), 0)::bigint AS points FROM transfers`;
      return [
        equal('transfers left to credit (pending sets)', pending, 0),
        equal('ledger transfer_out rows = accepted transfers (all runs)', ledger.outs, w.books.transfers),
        equal('ledger transfer_in rows = accepted transfers (all runs)', ledger.ins, w.books.transfers),
        equal('points sent = points received = points answered (ledger, all runs)', ledger.sent + ledger.received, 2 * w.books.transferred),
        equal('transfers rows = accepted transfers, all completed (all runs)', rows.n + rows.completed, 2 * w.books.transfers),
        equal('transfers rows: Σ amount = points answered', rows.points, w.books.transferred),
        equal('accepted responses with a wrong amount (all runs)', w.books.amountMismatches, 0),
        await redisBalanceCheck(w),
      ];
    },
  });
}

/**
 * Orders, mixed: even requests buy a points-priced virtual item (paid at once: freeze + capture),
 * odd ones a physical item for cash with part paid in points (pending: points frozen, a payment
 * id). A payer pays the pending ones through the signed webhook while the load runs — 9 in 10
 * succeed, 1 in 10 fail — and settles the rest after the stop. Measured: orders per second.
 */
export function order(w: World): Promise<ScenarioResult> {
  const { orderPoints, orderCash } = w.catalog;
  const receiver = { name: 'Bench Buyer', phone: '13800000000', address: '1 Bench Road' };
  const pending: Array<{ paymentId: string; cashDue: number; goodsId: number; points: number }> = [];
  let paying = true;
  let webhookErrors = 0;
  let sent = 0;
  const pay = async (p: (typeof pending)[number]) => {
    const fail = sent++ % 10 === 9;
    const raw = JSON.stringify({ eventId: `evt-${p.paymentId}`, paymentId: p.paymentId, status: fail ? 'failed' : 'succeeded', amount: p.cashDue });
    const res = await fetch(`${w.url}/v1/payments/webhook`, { method: 'POST', headers: signedHeaders(w.paymentSecret, raw), body: raw });
    const body = (await res.json()) as { outcome?: string; duplicate?: boolean };
    if (res.status !== 200) {
      webhookErrors++;
      return;
    }
    if (body.duplicate) return;
    if (body.outcome === 'paid') {
      w.books.paymentsSucceeded++;
      w.books.orderCaptured(p.goodsId, 1, p.points);
    } else if (body.outcome === 'cancelled') w.books.paymentsFailed++;
    else webhookErrors++;
  };
  const payer = async () => {
    while (paying || pending.length > 0) {
      const batch = pending.splice(0, 16);
      if (batch.length === 0) await sleep(20);
      else await Promise.all(batch.map(pay));
    }
  };
  const spec: LoadSpec = {
    method: 'POST',
    write: true,
    plan: (seq) => {
      const member = seq % w.members.length;
      if (seq % 2 === 0) return { member, path: '/v1/orders', body: { items: [{ goodsId: orderPoints[(seq >> 1) % orderPoints.length], quantity: 1 }] } };
      const goodsId = orderCash[(seq >> 1) % orderCash.length];
      return { member, path: '/v1/orders', body: { items: [{ goodsId, quantity: 1 }], pointsToUse: ORDER_POINTS_TO_USE, receiver } };
    },
    onResult: (sentReq, status, body) => {
      if (status !== 201) return;
      const o = JSON.parse(body) as { status: string; pointsTotal: number; pointsToUse: number; cashDue: number; paymentId: string | null; items: Array<{ goodsId: number; unitPoints: number }> };
      w.books.orders++;
      const goodsId = o.items[0].goodsId;
      if (o.status === 'pending_payment') {
        if (o.cashDue !== ORDER_CASH_PRICE - ORDER_POINTS_TO_USE || o.pointsToUse !== ORDER_POINTS_TO_USE) w.books.amountMismatches++;
        pending.push({ paymentId: o.paymentId!, cashDue: o.cashDue, goodsId, points: o.pointsToUse });
      } else {
        w.books.ordersPaidAtOnce++;
        if (o.pointsTotal !== w.catalog.price.get(goodsId)) w.books.amountMismatches++;
        w.books.orderCaptured(goodsId, 1, o.pointsTotal);
      }
      void sentReq;
    },
  };
  const runWithPayer = async (seconds: number, onStop?: () => void) => {
    paying = true;
    const payerDone = payer();
    const stats = await load(w, spec, seconds, onStop);
    paying = false;
    await payerDone;
    return stats;
  };
  return measure(w, 'order', {
    warm: () => runWithPayer(WARMUP_S),
    run: (onStop) => runWithPayer(DURATION_S, onStop),
    allowed: ['201'],
    persist: true,
    checks: async () => {
      const frozen = sum(await redisFrozen(w.redis, w.keys, w.members));
      const [rows] = await w.sql<Array<{ n: number; kept: number; cancelled: number; pending: number }>>`
        SELECT count(*)::bigint AS n,
               count(*) FILTER (WHERE status IN ('paid', 'completed'))::bigint AS kept,
               count(*) FILTER (WHERE status = 'cancelled')::bigint AS cancelled,
               count(*) FILTER (WHERE status IN ('placing', 'pending_payment'))::bigint AS pending
        FROM orders WHERE source = 'order'`;
      const goods = [...orderPoints, ...orderCash];
      const stocks = await redisStocks(w.redis, w.keys, goods);
      const soldUnits = sum(goods.map((id, i) => w.catalog.initialStock.get(id)! - stocks[i]));
      const keptUnits = sum([...w.books.orderUnits.values()]);
      return [
        equal('webhook answers other than paid / cancelled', webhookErrors, 0),
        equal('frozen points left (all members)', frozen, 0),
        equal('orders rows = accepted orders (all runs)', rows.n, w.books.orders),
        equal('orders paid or completed = paid at once + payments succeeded', rows.kept, w.books.ordersPaidAtOnce + w.books.paymentsSucceeded),
        equal('orders cancelled = payments failed', rows.cancelled, w.books.paymentsFailed),
        equal('orders left pending', rows.pending, 0),
        equal('units sold = units of paid orders (failed payments gave theirs back)', soldUnits, keptUnits),
        equal('accepted responses with a wrong amount (all runs)', w.books.amountMismatches, 0),
        await redisBalanceCheck(w),
      ];
    },
  });
}

export function balance(w: World): Promise<ScenarioResult> {
  const seen = new Float64Array(w.members.length).fill(Number.NaN);
  const spec: LoadSpec = {
    method: 'GET',
    write: false,
    plan: (seq) => ({ member: seq % w.members.length, path: '/v1/me/points' }),
    onResult: (sent, status, body) => {
      if (status === 200) seen[sent.member] = (JSON.parse(body) as { available: number }).available;
    },
  };
  return measure(w, 'balance', {
    warm: () => load(w, spec, WARMUP_S),
    run: (onStop) => load(w, spec, DURATION_S, onStop),
    allowed: ['200'],
    checks: async () => {
      const live = await redisBalances(w.redis, w.keys, w.members);
      const observed = live.filter((_, i) => !Number.isNaN(seen[i])).length;
      const wrong = live.filter((v, i) => !Number.isNaN(seen[i]) && seen[i] !== v).length;
      return [
        check('answered balance = live balance', wrong === 0, `${wrong} wrong of ${observed} members observed`),
        equal('Σ Redis balances = seeded − spent + earned', sum(live), w.books.redisTotal),
      ];
    },
  });
}

/** The recommend scenario's catalog: per category, cheap goods members redeem and goods in their points window. */
const RECO = { categories: 12, cheapPerCategory: 10, windowPerCategory: 20, members: 3_000, redemptionsEach: 4 } as const;

/**
 * GET /v1/me/recommendations after the model is built. Setup (not measured): RECO.categories
 * categories, cheap goods members redeem through the API (priced like the redeem items, so
 * balances stay about the seed) and goods priced in the members' points window (0.5–1.0× of about
 * SEED_POINTS); RECO.members members redeem RECO.redemptionsEach cheap goods each, mostly of one
 * category; the workers persist them; the model is built from Postgres (src/recommendations/model.ts).
 * Measured: the members with a history ask for 5 recommendations (the hybrid path).
 */
export async function recommend(w: World): Promise<ScenarioResult> {
  const goods = new GoodsService({ redis: w.redis, keys: w.keys, sql: w.sql, env: w.env });
  const tags = (c: number, i: number) => [`r${c}t${i % 4}`, `r${c}t${(i + 1) % 4}`];
  const cheap: number[][] = [];
  for (let c = 0; c < RECO.categories; c++) {
    const [{ id: categoryId }] = await w.sql<Array<{ id: number }>>`
      INSERT INTO categories (name, slug) VALUES (${`Reco ${c}`}, ${`reco-${c}`}) RETURNING id`;
    const made = await Promise.all(
      Array.from({ length: RECO.cheapPerCategory }, (_, i) =>
        goods.create({ name: `Reco small ${c} ${i}`, type: 'virtual', categoryId, tags: tags(c, i), pointsPrice: 1 + i, stock: REDEEM_STOCK }, 0),
      ),
    );
    await Promise.all(
      Array.from({ length: RECO.windowPerCategory }, (_, i) =>
        goods.create(
          { name: `Reco prize ${c} ${i}`, type: 'virtual', categoryId, tags: tags(c, i), pointsPrice: 600_000 + i * 20_000, stock: REDEEM_STOCK },
          0,
        ),
      ),
    );
    for (const g of made) {
      w.catalog.price.set(g.id, g.pointsPrice);
      w.catalog.initialStock.set(g.id, g.stock);
    }
    cheap.push(made.map((g) => g.id));
  }
  const shoppers = Math.min(RECO.members, w.members.length);
  const wanted = Array.from({ length: shoppers }, (_, m) =>
    Array.from({ length: RECO.redemptionsEach }, (_, k) => {
      const c = k === RECO.redemptionsEach - 1 ? (m * 7 + k) % RECO.categories : m % RECO.categories;
      return cheap[c][(m + k * 3) % RECO.cheapPerCategory];
    }),
  );
  const redeemOne = async (m: number, goodsId: number, k: number) => {
    const res = await fetch(`${w.url}/v1/redemptions`, {
      method: 'POST',
      headers: { authorization: w.members[m].auth, 'content-type': 'application/json', 'idempotency-key': `reco-${m}-${k}` },
      body: JSON.stringify({ goodsId, quantity: 1 }),
    });
    const body = await res.text();
    if (res.status !== 201) throw new Error(`recommend setup: redemption answered ${res.status} ${body}`);
    w.books.redeemed(goodsId, 1, (JSON.parse(body) as { pointsSpent: number }).pointsSpent, w.catalog.price.get(goodsId)!);
  };
  for (let m = 0; m < shoppers; m += 100) {
    await Promise.all(
      wanted.slice(m, m + 100).map(async (list, i) => {
        for (const [k, goodsId] of list.entries()) await redeemOne(m + i, goodsId, k);
      }),
    );
  }
  await w.pipeline.drain();
  await buildModel(w.sql, w.redis, w.keys);

  let answered = 0;
  let empty = 0;
  const spec: LoadSpec = {
    method: 'GET',
    write: false,
    plan: (seq) => ({ member: seq % shoppers, path: '/v1/me/recommendations?limit=5' }),
    onResult: (_sent, status, body) => {
      if (status !== 200) return;
      answered++;
      if ((JSON.parse(body) as { items: unknown[] }).items.length === 0) empty++;
    },
  };
  return measure(w, 'recommend', {
    warm: () => load(w, spec, WARMUP_S),
    run: (onStop) => load(w, spec, DURATION_S, onStop),
    allowed: ['200'],
    checks: async () => [
      check('every answer recommends goods', answered > 0 && empty === 0, `${empty} empty of ${answered}`),
      await redisBalanceCheck(w),
    ],
  });
}
