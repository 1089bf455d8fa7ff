/**
 * Reconcile: checks the live Redis state against Postgres and repairs drift.
 *
 *   balance:  Redis avail + frozen = Σ persisted ledger deltas + Σ deltas of ops still in flight
 *             (a hold's freeze is an op of delta 0: frozen points are still the member's)
 *   lots:     Σ Redis lot remainders = Redis avail; no balance below zero
 *   mirror:   point_accounts.available = Σ persisted ledger deltas
 *   stock:    Redis stock = stocked − sold − held and not charged − taken by orders (the goods slot's record)
 *
 * Every comparison is made as of one Redis instant T, read atomically with the values it judges
 * (TIME inside the same MULTI, per slot): ops stamped before T count, later ones do not, and
 * anything stamped exactly T is left for the next measurement. A difference is only believed
 * when two measurements taken apart agree. Repair rule (docs/architecture.md):
 *   Redis balance disagrees with its own lots, and the lots agree with the record → the balance
 *     field was damaged: it is moved back by the drift, only while avail − lots is still exactly
 *     that drift (atomic in the script), so it holds under live traffic and applies once ('corrected');
 *   otherwise Redis is the live truth for acknowledged ops — members were answered from it — so
 *     the record is brought to it with an `adjust` ledger entry (biz_type 'reconcile') whose lots
 *     follow Redis's lots, so lots keep adding up and adjusted points expire ('adjusted'); done
 *     only for a member with nothing persisted after T and nothing in flight ('deferred'
 *     otherwise, to a quieter run);
 *   a member with ops in a parked persist batch is never adjusted ('parked'): Postgres is owed
 *     those ops, and the batch must be retried, not papered over;
 *   point_accounts differs from its ledger → recomputed from the ledger;
 *   stock differs → Redis stock is moved to the expected value, only if it is still what was
 *     measured (compare-and-set).
 * Repairs are fenced: each run takes a token (reconcile_fence) and a repair commits only while its
 * token is the latest, so a stalled run overlapping a newer one repairs nothing twice.
 */
import type { RedisClient } from '../redis/client.ts';
import type { Queue } from 'bullmq';
import type { Sql, Tx } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { Op } from '../points/op.ts';
import type { Hold } from '../redemptions/service.ts';
import { persistedSold, stockFromRecord } from '../goods/stock.ts';
import { bucketShare } from '../goods/bucket-stock.ts';
import { inflightOps, type Inflight } from './inflight.ts';
import { recordAudit } from '../audit/log.ts';

export interface MemberDrift {
  userId: number;
  redis: number;
  expected: number;
  drift: number;
  inflightOpIds: string[];
  recentOpIds: string[];
  repaired: 'corrected' | 'adjusted' | 'deferred' | 'parked' | 'fenced' | 'none';
}

export interface ReconcileReport {
  members: number;
  drifting: MemberDrift[];
  negative: number[];
  lotMismatch: number[];
  mirrorDrift: Array<{ userId: number; mirror: number; ledger: number }>;
  stockDrift: Array<{ goodsId: number; redis: number; expected: number; repaired: boolean }>;
  /** members with ops in a parked persist batch: never adjusted while the batch is parked */
  parked: number[];
  inflight: number;
  ms: number;
}

type LiveLot = { remaining: number; expiresAt: number };

interface LiveAccount {
  avail: number;
  /** points held by open holds (out of avail and out of the lots, still owned) */
  frozen: number;
  lots: number;
  at: number;
  /** lot id -> remaining and expiry, when measured in detail */
  detail?: Map<string, LiveLot>;
}

interface Measure {
  redis: Map<number, LiveAccount>;
  expected: Map<number, number>;
  inflight: Inflight;
}

const PAGE = 2000;

export class Reconciler {
  private token = 0;

  constructor(
    private readonly d: { sql: Sql; redis: RedisClient; keys: Keys; queue: Queue; log?: (msg: string, data: object) => void },
  ) {}

  async run(o: { repair?: boolean; confirmDelayMs?: number } = {}): Promise<ReconcileReport> {
    const started = Date.now();
    const repair = o.repair ?? true;
    const delay = () => new Promise((r) => setTimeout(r, o.confirmDelayMs ?? 500));
    this.token = await takeToken(this.d.sql);
    const report: ReconcileReport = {
      members: 0, drifting: [], negative: [], lotMismatch: [], mirrorDrift: [], stockDrift: [], parked: [], inflight: 0, ms: 0,
    };
    const suspects: number[] = [];
    let after = 0;
    for (;;) {
      const rows = await this.d.sql<Array<{ userId: number; mirror: number; ledger: number }>>`
        SELECT a.user_id AS "userId", a.available AS mirror, COALESCE(l.total, 0)::bigint AS ledger
        FROM point_accounts a
        LEFT JOIN (SELECT user_id, SUM(delta) AS total FROM ledger_entries GROUP BY user_id) l ON l.user_id = a.user_id
        WHERE a.user_id > ${after} ORDER BY a.user_id LIMIT ${PAGE}`;
      if (rows.length === 0) break;
      after = rows[rows.length - 1].userId;
      report.members += rows.length;
      for (const r of rows) {
        if (r.mirror === r.ledger) continue;
        report.mirrorDrift.push(r);
        if (repair) await this.fenced((tx) => recomputeMirror(tx, r.userId));
      }
      const m = await this.measure(rows.map((r) => r.userId), false);
      report.inflight = Math.max(report.inflight, m.inflight.ops.size);
      for (const [uid, live] of m.redis) {
        if (live.avail < 0) report.negative.push(uid);
        if (live.lots !== live.avail) report.lotMismatch.push(uid);
        if (live.avail + live.frozen !== m.expected.get(uid)) suspects.push(uid);
      }
    }
    if (suspects.length > 0) {
      await delay();
      const first = await this.measure(suspects, false);
      await delay();
      const second = await this.measure(suspects, true);
      for (const uid of suspects) {
        const a = first.redis.get(uid);
        const b = second.redis.get(uid);
        if (!a || !b) continue;
        const d1 = a.avail + a.frozen - (first.expected.get(uid) ?? 0);
        const d2 = b.avail + b.frozen - (second.expected.get(uid) ?? 0);
        if (d1 === 0 || d1 !== d2) continue;
        report.drifting.push(await this.describe(uid, b, second, repair));
      }
    }
    report.stockDrift = await this.checkStock(repair, delay);
    const { parked } = await inflightOps(this.d.redis, this.d.keys, this.d.queue);
    report.parked = [...new Set([...parked.values()].map((o) => o.userId))].sort((a, b) => a - b);
    report.ms = Date.now() - started;
    return report;
  }

  /** Runs a repair in a transaction that holds the fence: refused once a newer run has started. */
  private async fenced<R>(fn: (tx: Tx) => Promise<R>): Promise<R | null> {
    let out: R | null = null;
    await this.d.sql.begin(async (tx) => {
      const [row] = await tx<Array<{ token: number }>>`SELECT token FROM reconcile_fence WHERE id = 1 FOR UPDATE`;
      if (row && row.token === this.token) out = await fn(tx);
    });
    return out;
  }

  /**
   * Redis balances and lots, read atomically per partition together with Redis TIME (T), then
   * what Postgres + in-flight ops say as of T. The in-flight ops are read after every T, so an op
   * stamped before T is in an outbox, a job or the ledger by then.
   */
  private async measure(userIds: number[], detail: boolean): Promise<Measure> {
    const { redis, keys, sql } = this.d;
    const byPartition = new Map<number, number[]>();
    for (const uid of userIds) {
      const p = keys.partitionOf(uid);
      const list = byPartition.get(p);
      if (list) list.push(uid);
      else byPartition.set(p, [uid]);
    }
    const live = new Map<number, LiveAccount>();
    await Promise.all(
      [...byPartition.values()].map(async (uids) => {
        const tx = redis.multi().time();
        for (const uid of uids) {
          tx.hmget(keys.account(uid), 'avail', 'frozen').hgetall(keys.lotRemaining(uid));
          if (detail) tx.zrange(keys.lotsByExpiry(uid), 0, -1, 'WITHSCORES');
        }
        const res = (await tx.exec()) ?? [];
        const [sec, usec] = res[0][1] as [string, string];
        const at = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
        const width = detail ? 3 : 2;
        uids.forEach((uid, i) => {
          const [avail, frozen] = res[1 + i * width][1] as Array<string | null>;
          if (avail === null) return; // not loaded in Redis: hydrated from Postgres on first use
          const remaining = res[2 + i * width][1] as Record<string, string>;
          const lots = Object.values(remaining).reduce((sum, v) => sum + Number(v), 0);
          const account: LiveAccount = { avail: Number(avail), frozen: Number(frozen ?? 0), lots, at };
          if (detail) {
            const z = res[3 + i * width][1] as string[];
            const expiries = new Map<string, number>();
            for (let j = 0; j < z.length; j += 2) expiries.set(z[j], Number(z[j + 1]));
            account.detail = new Map(
              Object.entries(remaining).map(([id, rem]) => [id, { remaining: Number(rem), expiresAt: expiries.get(id) ?? 0 }]),
            );
          }
          live.set(uid, account);
        });
      }),
    );
    const inflight = await inflightOps(redis, keys, this.d.queue);
    const flying = [...inflight.ops.values()].filter((op) => live.has(op.userId));
    const ids = [...live.keys()];
    const ledger = await sql<Array<{ userId: number; total: number; ties: number }>>`
      SELECT u.id AS "userId",
             COALESCE(SUM(l.delta) FILTER (WHERE l.created_at < to_timestamp(u.t / 1000.0)), 0)::bigint AS total,
             COUNT(l.op_id) FILTER (WHERE l.created_at = to_timestamp(u.t / 1000.0))::int AS ties
      FROM unnest(${ids}::bigint[], ${ids.map((id) => live.get(id)!.at)}::bigint[]) AS u(id, t)
      LEFT JOIN ledger_entries l ON l.user_id = u.id AND NOT (l.op_id = ANY(${flying.map((o) => o.opId)}::text[]))
      GROUP BY u.id`;
    const expected = new Map<number, number>();
    const ambiguous = new Set<number>();
    for (const r of ledger) {
      expected.set(r.userId, r.total);
      if (r.ties > 0) ambiguous.add(r.userId);
    }
    for (const op of flying) {
      const at = live.get(op.userId)!.at;
      if (op.at < at) expected.set(op.userId, (expected.get(op.userId) ?? 0) + op.delta);
      else if (op.at === at) ambiguous.add(op.userId);
    }
    for (const uid of ambiguous) live.delete(uid);
    return { redis: live, expected, inflight };
  }

  private async describe(uid: number, live: LiveAccount, m: Measure, repair: boolean): Promise<MemberDrift> {
    const expected = m.expected.get(uid) ?? 0;
    const drift = live.avail + live.frozen - expected;
    const mine = [...m.inflight.ops.values()].filter((o) => o.userId === uid);
    const recent = await this.d.sql<Array<{ opId: string }>>`
      SELECT op_id AS "opId" FROM ledger_entries WHERE user_id = ${uid} ORDER BY created_at DESC NULLS LAST, id DESC NULLS LAST LIMIT 10`;
    const item: MemberDrift = {
      userId: uid, redis: live.avail + live.frozen, expected, drift, inflightOpIds: mine.map((o) => o.opId),
      recentOpIds: recent.map((r) => r.opId), repaired: 'none',
    };
    if ([...m.inflight.parked.values()].some((o) => o.userId === uid)) {
      item.repaired = 'parked';
    } else if (repair) {
      if (live.lots + live.frozen === expected) {
        const done = await this.fenced(async () =>
          this.d.redis.pmRepairBalance(this.d.keys.account(uid), this.d.keys.lotRemaining(uid), drift),
        );
        item.repaired = done === 1 ? 'corrected' : done === null ? 'fenced' : 'deferred';
      } else if (mine.length > 0 || live.frozen !== 0) {
        // (Postgres lots still count frozen portions, Redis lots do not: no adjust while any are held)
        item.repaired = 'deferred';
      } else {
        item.repaired = (await this.adjustRecord(uid, drift, live)) ?? 'fenced';
      }
    }
    this.d.log?.('balance drift', item);
    return item;
  }

  /**
   * Postgres lost acknowledged ops: record the difference so the ledger matches what members saw,
   * and make the member's Postgres lots equal Redis's lots as of T (the lost ops' lots). Only for a
   * member with nothing persisted at or after T (checked under the account's row lock, which every
   * persist batch of this member takes) — then Postgres's lots are exactly the lots as of T.
   */
  private async adjustRecord(uid: number, drift: number, live: LiveAccount): Promise<'adjusted' | 'deferred' | null> {
    const at = live.at;
    const lots = live.detail ?? new Map<string, LiveLot>();
    const opId = `adj-${this.token}-${uid}`;
    return this.fenced(async (tx) => {
      await tx`SELECT 1 FROM point_accounts WHERE user_id = ${uid} FOR UPDATE`;
      const [{ later }] = await tx<Array<{ later: boolean }>>`
        SELECT EXISTS (SELECT 1 FROM ledger_entries WHERE user_id = ${uid} AND created_at >= to_timestamp(${at} / 1000.0)) AS later`;
      if (later) return 'deferred' as const;
      const inserted = await tx`
        INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, created_at)
        VALUES (${opId}, ${uid}, ${drift}, 0, 'adjust', 'reconcile', null, to_timestamp(${at} / 1000.0))
        ON CONFLICT (op_id) DO NOTHING`;
      if (inserted.count === 0) return 'adjusted' as const;
      const ids = [...lots.keys()].sort();
      await tx`
        UPDATE point_lots SET remaining = 0
        WHERE user_id = ${uid} AND remaining <> 0 AND NOT (id = ANY(${ids}::text[]))`;
      if (ids.length > 0) {
        const v = ids.map((id) => lots.get(id)!);
        await tx`
          INSERT INTO point_lots (id, user_id, amount, remaining, expires_at)
          SELECT t.id, ${uid}, t.remaining, t.remaining, to_timestamp(t.expires_at / 1000.0)
          FROM unnest(${ids}::text[], ${v.map((l) => l.remaining)}::bigint[], ${v.map((l) => l.expiresAt)}::bigint[])
            AS t(id, remaining, expires_at)
          ON CONFLICT (id) DO UPDATE SET remaining = EXCLUDED.remaining`;
      }
      const after = await recomputeMirror(tx, uid);
      await tx`UPDATE ledger_entries SET balance_after = ${after} WHERE op_id = ${opId}`;
      await recordAudit(tx, { opId, action: 'reconcile.adjust', targetType: 'user', targetId: String(uid), data: { drift, lots: Object.fromEntries(lots) } });
      return 'adjusted' as const;
    });
  }

  private async checkStock(repair: boolean, delay: () => Promise<unknown>): Promise<ReconcileReport['stockDrift']> {
    const first = await this.measureStock();
    const suspects = [...first].filter(([, v]) => v.redis !== v.expected).map(([id]) => id);
    if (suspects.length === 0) return [];
    await delay();
    const second = await this.measureStock(suspects);
    const drift: ReconcileReport['stockDrift'] = [];
    for (const id of suspects) {
      const a = first.get(id)!;
      const b = second.get(id);
      if (!b || a.redis - a.expected !== b.redis - b.expected) continue;
      let repaired = false;
      if (repair && !b.parked && b.buckets) {
        const applied = await this.fenced(() => this.repairBuckets(id, b.buckets!, b.totalStock, b.expected - b.redis));
        repaired = applied !== null && applied >= 0;
      } else if (repair && !b.parked) {
        const goodsKey = this.d.keys.goods(id);
        // A restock whose Redis step was lost is finished the way a replay of it would be (the
        // restock script raises the stock to the stocked total, once), never by an increment a
        // later replay would add again.
        const applied = await this.fenced(() =>
          b.stocked !== null && b.stocked < b.totalStock
            ? this.d.redis.pmRestock(goodsKey, b.totalStock)
            : this.d.redis.pmRepairStock(goodsKey, b.redis, b.expected - b.redis),
        );
        repaired = applied !== null && applied >= 0;
      }
      drift.push({ goodsId: id, redis: b.redis, expected: b.expected, repaired });
      this.d.log?.('stock drift', { goodsId: id, redis: b.redis, expected: b.expected, repaired });
    }
    return drift;
  }

  /**
   * A hot item's repair (src/goods/bucket-stock.ts): a restock whose Redis step was lost is
   * finished bucket by bucket (each raised to its share of the stocked total, once); otherwise the
   * correction goes to one bucket, compare-and-set on the stock measured there (a shortfall to
   * bucket 0, a surplus from a bucket that holds it all). Returns < 0 when nothing could apply.
   */
  private async repairBuckets(id: number, buckets: Array<{ stock: number; stocked: number | null }>, totalStock: number, delta: number): Promise<number> {
    const { redis, keys } = this.d;
    const n = buckets.length;
    if (buckets.some((b, k) => b.stocked !== null && b.stocked < bucketShare(totalStock, n, k))) {
      const stocks = await Promise.all(buckets.map((_, k) => redis.pmRestock(keys.bucket(id, k), bucketShare(totalStock, n, k))));
      return Math.min(...stocks);
    }
    const k = delta > 0 ? 0 : buckets.findIndex((b) => b.stock >= -delta);
    if (k < 0) return -1;
    return redis.pmRepairStock(keys.bucket(id, k), buckets[k].stock, delta);
  }

  /**
   * A hot item's stock, judged bucket by bucket: each bucket's stock, holds and TIME read
   * atomically at its own instant T_k. A charge stamped before the first instant counts as sold
   * (and its hold, if still there, as not held); one stamped after the last leaves its hold held
   * and its units not yet sold. A charge stamped between the first and last instants could be
   * either: the item is then not judged this time (`ambiguous`).
   */
  private async measureBuckets(id: number, n: number) {
    const { redis, keys } = this.d;
    const reads: Array<{ at: number; stock: number | null; stocked: number | null; holds: Hold[] }> = [];
    for (let k = 0; k < n; k++) {
      const res =
        (await redis.multi().time().hget(keys.bucket(id, k), 'stock').hvals(keys.bucketReservations(id, k)).hget(keys.bucket(id, k), 'stocked').exec()) ?? [];
      const [sec, usec] = res[0][1] as [string, string];
      const stock = res[1][1] as string | null;
      const stocked = res[3][1] as string | null;
      reads.push({
        at: Number(sec) * 1000 + Math.floor(Number(usec) / 1000),
        stock: stock === null ? null : Number(stock),
        stocked: stocked === null ? null : Number(stocked),
        holds: (res[2][1] as string[]).map((raw) => JSON.parse(raw) as Hold),
      });
    }
    if (reads.some((r) => r.stock === null)) return null;
    const at = reads[0].at;
    const atEnd = reads[reads.length - 1].at;
    let held = 0;
    let ambiguous = false;
    for (const r of reads) {
      for (const h of r.holds) {
        const rec = await redis.get(keys.idem(h.u, h.k));
        const op = rec === null ? null : (JSON.parse(rec) as Op);
        const charged = op !== null && op.opId === h.o && op.t === h.t;
        if (charged && op.at >= at && op.at <= atEnd) ambiguous = true;
        if (!(charged && op.at < at)) held += h.q;
      }
    }
    const stock = reads.reduce((a, r) => a + r.stock!, 0);
    const buckets = reads.map((r) => ({ stock: r.stock!, stocked: r.stocked }));
    return { at, atEnd, stock, stocked: null, held, ambiguous, buckets };
  }

  /**
   * Each item's stock judged at one Redis instant T: stock, holds and TIME read atomically in the
   * goods slot; a hold present at T counts as held unless its charge is stamped before T (then
   * its units are counted sold); sold = persisted redemptions stamped before T plus spends in
   * flight stamped before T. A sale in progress therefore never looks like drift.
   */
  private async measureStock(only?: number[]) {
    const { sql, redis, keys } = this.d;
    const goods = await sql<Array<{ id: number; totalStock: number; hotBuckets: number }>>`
      SELECT id, total_stock AS "totalStock", hot_buckets AS "hotBuckets" FROM goods ${only ? sql`WHERE id = ANY(${only}::bigint[])` : sql``}`;
    const snap = new Map<number, { at: number; atEnd?: number; stock: number; stocked: number | null; held: number; ambiguous: boolean;
      buckets?: Array<{ stock: number; stocked: number | null }> }>();
    for (const g of goods) {
      if (g.hotBuckets > 0) {
        const hot = await this.measureBuckets(g.id, g.hotBuckets);
        if (hot) snap.set(g.id, hot);
        continue;
      }
      const res =
        (await redis
          .multi()
          .time()
          .hget(keys.goods(g.id), 'stock')
          .hvals(keys.reservations(g.id))
          .hget(keys.goods(g.id), 'stocked')
          .hvals(keys.ordersTaken(g.id))
          .exec()) ?? [];
      const [sec, usec] = res[0][1] as [string, string];
      const at = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
      const stockRaw = res[1][1] as string | null;
      if (stockRaw === null) continue;
      let held = 0;
      let ambiguous = false;
      for (const raw of res[2][1] as string[]) {
        const h = JSON.parse(raw) as Hold;
        const rec = await redis.get(keys.idem(h.u, h.k));
        const op = rec === null ? null : (JSON.parse(rec) as Op);
        const charged = op !== null && op.opId === h.o && op.t === h.t;
        if (charged && op.at === at) ambiguous = true;
        // charged before T: its units are counted as sold (persisted or in flight)
        if (!(charged && op.at < at)) held += h.q;
      }
      const stocked = res[3][1] as string | null;
      // orders' units, as the goods slot records them at T (lua/take-4.lua): sold until given back
      for (const raw of res[4][1] as string[]) held += (JSON.parse(raw) as { q: number }).q;
      snap.set(g.id, { at, stock: Number(stockRaw), stocked: stocked === null ? null : Number(stocked), held, ambiguous });
    }
    const inflight = await inflightOps(redis, keys, this.d.queue);
    const spends = [...inflight.ops.values()].filter((o) => o.kind === 'spend' && o.goodsId !== undefined);
    const ids = [...snap.keys()];
    const sold = await persistedSold(sql, ids, {
      beforeMs: new Map(ids.map((id) => [id, snap.get(id)!.at])),
      excludeOpIds: spends.map((o) => o.opId),
      // orders' units are counted from Redis's record, read at T with the stock
      orders: false,
    });
    // hot items are read over [at, atEnd]: a redemption persisted inside that span leaves them unjudged
    const spans = ids.filter((id) => snap.get(id)!.atEnd !== undefined);
    const soldByEnd = await persistedSold(sql, spans, {
      beforeMs: new Map(spans.map((id) => [id, snap.get(id)!.atEnd! + 1])),
      excludeOpIds: spends.map((o) => o.opId),
      orders: false,
    });
    const out = new Map<number, { redis: number; expected: number; parked: boolean; stocked: number | null; totalStock: number;
      buckets?: Array<{ stock: number; stocked: number | null }> }>();
    for (const g of goods) {
      const s = snap.get(g.id);
      if (!s || s.ambiguous) continue;
      if (s.atEnd !== undefined && (soldByEnd.get(g.id) ?? 0) !== (sold.get(g.id) ?? 0)) continue;
      const mine = spends.filter((o) => Number(o.goodsId) === g.id);
      if (mine.some((o) => o.at >= s.at && o.at <= (s.atEnd ?? s.at))) continue;
      const flyingSold = mine.filter((o) => o.at < s.at).reduce((n, o) => n + Number(o.quantity), 0);
      const expected = stockFromRecord(g.totalStock, (sold.get(g.id) ?? 0) + flyingSold) - s.held;
      const parked = mine.some((o) => inflight.parked.has(o.opId));
      out.set(g.id, { redis: s.stock, expected, parked, stocked: s.stocked, totalStock: g.totalStock, buckets: s.buckets });
    }
    return out;
  }
}

/** The next fencing token: a run's repairs commit only while it is the latest. */
async function takeToken(sql: Sql): Promise<number> {
  const [{ token }] = await sql<Array<{ token: number }>>`
    INSERT INTO reconcile_fence (id, token) VALUES (1, 1)
    ON CONFLICT (id) DO UPDATE SET token = reconcile_fence.token + 1
    RETURNING token`;
  return token;
}

/**
 * point_accounts.available := Σ ledger deltas. The row lock comes first, so a persist batch
 * committing meanwhile is either already summed or waits and adds its own delta afterwards.
 */
async function recomputeMirror(tx: Tx, uid: number): Promise<number> {
  await tx`SELECT 1 FROM point_accounts WHERE user_id = ${uid} FOR UPDATE`;
  const [{ after }] = await tx<Array<{ after: number }>>`
    UPDATE point_accounts SET available = (SELECT COALESCE(SUM(delta), 0) FROM ledger_entries WHERE user_id = ${uid}),
      updated_at = now()
    WHERE user_id = ${uid} RETURNING available AS after`;
  return after;
}

