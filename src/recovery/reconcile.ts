/**
 * Reconcile: checks the live Redis state against Postgres and repairs drift.
 *
 *   balance:  Redis avail = Σ persisted ledger deltas + Σ deltas of ops still in flight
 *   lots:     Σ Redis lot remainders = Redis avail; no balance below zero
 *   mirror:   point_accounts.available = Σ persisted ledger deltas
 *   stock:    Redis stock = stocked − persisted sold − in-flight sold − reserved and not charged
 *
 * A difference is only believed when two measurements taken apart agree (an op landing between
 * reads can make one measurement look wrong). Repair rule (docs/architecture.md):
 *   Redis balance disagrees with its own lots, and the lots agree with the record → the balance
 *     field was damaged: it is set back to the record ('corrected');
 *   otherwise Redis is the live truth for acknowledged ops — members were answered from it — so
 *     the record is brought to it with an `adjust` ledger entry (biz_type 'reconcile'), whichever
 *     way the difference goes ('adjusted'). Redis *behind* Postgres (restored from an older
 *     snapshot, failover) is not a per-member drift: it is detected globally by the outbox
 *     watermark and repaired by rolling Redis forward (src/recovery/roll-forward.ts) before the
 *     API serves writes again.
 *   point_accounts differs from its ledger → recomputed from the ledger;
 *   stock differs → Redis stock is moved to the expected value.
 */
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Sql, Tx } from '../db/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { Op } from '../points/op.ts';
import { inflightOps } from './inflight.ts';
import type { Hold } from '../redemptions/service.ts';

export interface MemberDrift {
  userId: number;
  redis: number;
  expected: number;
  drift: number;
  inflightOpIds: string[];
  recentOpIds: string[];
  repaired: 'corrected' | 'adjusted' | 'none';
}

export interface ReconcileReport {
  members: number;
  drifting: MemberDrift[];
  negative: number[];
  lotMismatch: number[];
  mirrorDrift: Array<{ userId: number; mirror: number; ledger: number }>;
  stockDrift: Array<{ goodsId: number; redis: number; expected: number }>;
  inflight: number;
  ms: number;
}

interface Measure {
  redis: Map<number, { avail: number; lots: number; at: number }>;
  expected: Map<number, number>;
  inflight: Map<string, Op>;
}

const PAGE = 2000;

export class Reconciler {
  constructor(
    private readonly d: { sql: Sql; redis: Redis; keys: Keys; queue: Queue; log?: (msg: string, data: object) => void },
  ) {}

  async run(o: { repair?: boolean; confirmDelayMs?: number } = {}): Promise<ReconcileReport> {
    const started = Date.now();
    const repair = o.repair ?? true;
    const report: ReconcileReport = {
      members: 0, drifting: [], negative: [], lotMismatch: [], mirrorDrift: [], stockDrift: [], inflight: 0, ms: 0,
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
        if (repair) await this.d.sql.begin((tx) => recomputeMirror(tx, r.userId));
      }
      const m = await this.measure(rows.map((r) => r.userId));
      report.inflight = Math.max(report.inflight, [...m.inflight.values()].length);
      for (const [uid, live] of m.redis) {
        if (live.avail < 0) report.negative.push(uid);
        if (live.lots !== live.avail) report.lotMismatch.push(uid);
        if (live.avail !== m.expected.get(uid)) suspects.push(uid);
      }
    }
    if (suspects.length > 0) {
      await new Promise((r) => setTimeout(r, o.confirmDelayMs ?? 500));
      const first = await this.measure(suspects);
      await new Promise((r) => setTimeout(r, o.confirmDelayMs ?? 500));
      const second = await this.measure(suspects);
      for (const uid of suspects) {
        const a = first.redis.get(uid);
        const b = second.redis.get(uid);
        if (!a || !b) continue;
        const d1 = a.avail - (first.expected.get(uid) ?? 0);
        const d2 = b.avail - (second.expected.get(uid) ?? 0);
        if (d1 === 0 || d1 !== d2) continue;
        report.drifting.push(await this.describe(uid, b, second, repair));
      }
    }
    report.stockDrift = await this.checkStock(repair, o.confirmDelayMs ?? 500);
    report.ms = Date.now() - started;
    return report;
  }

  /**
   * Redis balances and lot sums, read atomically per partition together with Redis TIME (T), then
   * what Postgres + in-flight ops say as of T: ops stamped before T count, later ones do not, and
   * a member with an op stamped exactly T is left out of this measurement (before or after the
   * read cannot be told apart within a millisecond).
   */
  private async measure(userIds: number[]): Promise<Measure> {
    const { redis, keys, sql } = this.d;
    const byPartition = new Map<number, number[]>();
    for (const uid of userIds) {
      const p = keys.partitionOf(uid);
      const list = byPartition.get(p);
      if (list) list.push(uid);
      else byPartition.set(p, [uid]);
    }
    const live = new Map<number, { avail: number; lots: number; at: number }>();
    await Promise.all(
      [...byPartition.values()].map(async (uids) => {
        const tx = redis.multi().time();
        for (const uid of uids) tx.hget(keys.account(uid), 'avail').hvals(keys.lotRemaining(uid));
        const res = (await tx.exec()) ?? [];
        const [sec, usec] = res[0][1] as [string, string];
        const at = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
        uids.forEach((uid, i) => {
          const avail = res[1 + i * 2][1] as string | null;
          if (avail === null) return; // not loaded in Redis: hydrated from Postgres on first use
          const lots = (res[2 + i * 2][1] as string[]).reduce((sum, v) => sum + Number(v), 0);
          live.set(uid, { avail: Number(avail), lots, at });
        });
      }),
    );
    const inflight = await inflightOps(redis, keys, this.d.queue);
    const flying = [...inflight.values()].filter((op) => live.has(op.userId));
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

  private async describe(uid: number, live: { avail: number; lots: number; at: number }, m: Measure, repair: boolean): Promise<MemberDrift> {
    const redisAvail = live.avail;
    const expected = m.expected.get(uid) ?? 0;
    const drift = redisAvail - expected;
    const inflightOpIds = [...m.inflight.values()].filter((o) => o.userId === uid).map((o) => o.opId);
    const recent = await this.d.sql<Array<{ opId: string }>>`
      SELECT op_id AS "opId" FROM ledger_entries WHERE user_id = ${uid} ORDER BY created_at DESC, id DESC LIMIT 10`;
    const item: MemberDrift = {
      userId: uid, redis: redisAvail, expected, drift, inflightOpIds, recentOpIds: recent.map((r) => r.opId), repaired: 'none',
    };
    if (repair) {
      if (live.lots === expected) {
        await this.d.redis.hincrby(this.d.keys.account(uid), 'avail', -drift);
        item.repaired = 'corrected';
      } else {
        item.repaired = await this.adjustRecord(uid, drift, live.at);
      }
    }
    this.d.log?.('balance drift', item);
    return item;
  }

  /** Postgres lost acknowledged ops: record the difference so the ledger matches what members saw. */
  private async adjustRecord(uid: number, drift: number, at: number): Promise<'adjusted'> {
    const opId = `adj${Date.now().toString(36)}${uid}`;
    await this.d.sql.begin(async (tx) => {
      await tx`INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, created_at)
               VALUES (${opId}, ${uid}, ${drift}, 0, 'adjust', 'reconcile', null, to_timestamp(${at} / 1000.0))`;
      const after = await recomputeMirror(tx, uid);
      await tx`UPDATE ledger_entries SET balance_after = ${after} WHERE op_id = ${opId}`;
      await tx`INSERT INTO audit_log (op_id, action, target_type, target_id, data)
               VALUES (${opId}, 'reconcile.adjust', 'user', ${String(uid)}, ${JSON.stringify({ drift })}::jsonb)`;
    });
    return 'adjusted';
  }

  private async checkStock(repair: boolean, confirmDelayMs: number) {
    const first = await this.measureStock(await inflightOps(this.d.redis, this.d.keys, this.d.queue));
    const suspects = [...first].filter(([, v]) => v.redis !== v.expected).map(([id]) => id);
    if (suspects.length === 0) return [];
    await new Promise((r) => setTimeout(r, confirmDelayMs));
    const second = await this.measureStock(await inflightOps(this.d.redis, this.d.keys, this.d.queue), suspects);
    const drift: ReconcileReport['stockDrift'] = [];
    for (const id of suspects) {
      const a = first.get(id)!;
      const b = second.get(id);
      if (!b || a.redis - a.expected !== b.redis - b.expected) continue;
      drift.push({ goodsId: id, redis: b.redis, expected: b.expected });
      if (repair) await this.d.redis.hincrby(this.d.keys.goods(id), 'stock', b.expected - b.redis);
    }
    return drift;
  }

  private async measureStock(inflight: Map<string, Op>, only?: number[]) {
    const { sql, redis, keys } = this.d;
    const goods = await sql<Array<{ id: number; totalStock: number }>>`
      SELECT id, total_stock AS "totalStock" FROM goods ${only ? sql`WHERE id = ANY(${only}::bigint[])` : sql``}`;
    const out = new Map<number, { redis: number; expected: number }>();
    for (const g of goods) {
      const flying = [...inflight.values()].filter((o) => o.kind === 'spend' && Number(o.goodsId) === g.id);
      const [{ sold }] = await sql<Array<{ sold: number }>>`
        SELECT COALESCE(SUM(quantity), 0)::bigint AS sold FROM redemptions
        WHERE goods_id = ${g.id} AND status <> 'cancelled' AND NOT (op_id = ANY(${flying.map((o) => o.opId)}::text[]))`;
      const [stockRaw, reservations] = await Promise.all([
        redis.hget(keys.goods(g.id), 'stock'),
        redis.hgetall(keys.reservations(g.id)),
      ]);
      if (stockRaw === null) continue;
      let reserved = 0;
      for (const raw of Object.values(reservations)) {
        const r = JSON.parse(raw) as Hold;
        const op = await redis.get(keys.idem(r.u, r.k));
        const charged = op !== null && (JSON.parse(op) as Op).opId === r.o && (JSON.parse(op) as Op).t === r.t;
        // a charged reservation's units are already counted as sold (persisted or in flight)
        if (!charged) reserved += r.q;
      }
      const expected = g.totalStock - sold - flying.reduce((s, o) => s + Number(o.quantity), 0) - reserved;
      out.set(g.id, { redis: Number(stockRaw), expected });
    }
    return out;
  }
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
