/**
 * Reconcile repairing drift while the system is in use. Members keep redeeming and earning (rule
 * earns and admin grants) through the services, with the relay and persist workers running, while
 * the Redis balance field of a few members is damaged behind the system's back (HINCRBY, some of
 * them busy, some idle) and Reconciler.run({ repair: true }) runs over and over. Every damaged
 * member is found and set back exactly by the damage, once; no other member — however busy — is
 * ever reported or "repaired" (no drift, no lot mismatch, no adjust entry); and once the traffic
 * stops, Redis, the Postgres mirror and the ledger all equal what the services acknowledged.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSIST_QUEUE } from '../../src/queues.ts';
import { createRedis } from '../../src/redis/client.ts';
import { Reconciler, type ReconcileReport } from '../../src/recovery/reconcile.ts';
import { sleep, waitUntil } from '../crash/procs.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';
import { expectBalancesMatch, expectLedgerExactlyOnce, waitForDrain, type AckedOp } from '../support/persisted.ts';

const MEMBERS = 40;
const BUSY = 30; // members[0..BUSY) are under live traffic
const GRANT = 1_000_000;
const PRICE = 10;
const SHARE_POINTS = 10; // the seeded 'share' rule, 5 a day
const RUNS = 4;
/** Damaged members (index into members) and what is added to their Redis balance field. */
const DAMAGE: Array<[index: number, delta: number]> = [
  [2, 250],
  [11, -130],
  [25, 77],
  [BUSY + 1, 400],
  [BUSY + 4, -55],
  [BUSY + 7, 1],
];

let ctx: TestContext;
let pipeline: Pipeline;
let conn: Redis;
let queue: Queue;
let producing = false;
let producer: Promise<void> | undefined;

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline(4);
  conn = createRedis(ctx.env.REDIS_URL, 'worker');
  queue = new Queue(PERSIST_QUEUE, { connection: conn, prefix: ctx.keys.queuePrefix(PERSIST_QUEUE) });
});

afterAll(async () => {
  producing = false;
  await producer?.catch(() => {});
  await queue?.close().catch(() => {});
  conn?.disconnect();
  await ctx?.close();
});

describe('reconcile under live load', () => {
  it('corrects damaged balances exactly once and never touches a member whose ops are in flight', { timeout: 85_000 }, async () => {
    const { app, redis, keys, sql } = ctx;
    const members = await ctx.createMembers(MEMBERS);
    const goods = await ctx.createGoods({ pointsPrice: PRICE, stock: 10_000_000 });
    const acked = new Map<string, AckedOp>();
    const failures: string[] = [];
    const ack = (opId: string, userId: number, delta: number) => {
      if (acked.has(opId)) failures.push(`${opId} acknowledged twice`);
      acked.set(opId, { userId, delta });
    };
    for (const m of members) {
      const { op } = await app.points.grant(0, m.id, GRANT, 'reconcile-live', `grant-${m.id}`);
      ack(op.opId, m.id, GRANT);
    }
    await pipeline.drain();

    // ---- live traffic: each busy member redeems every round, earns by rule in the first rounds
    // (the daily cap) and gets a small admin grant every third round
    producing = true;
    let rounds = 0;
    producer = (async () => {
      while (producing) {
        const n = rounds++;
        await Promise.all(
          members.slice(0, BUSY).map(async (m) => {
            try {
              const { redemption } = await app.redemptions.redeem(m.id, goods.id, 1, `r-${n}`);
              ack(redemption.id, m.id, -PRICE);
              if (n < 5) {
                const { op } = await app.points.earn(m.id, 'share', `s-${n}`);
                ack(op.opId, m.id, SHARE_POINTS);
              }
              if (n % 3 === 0) {
                const { op } = await app.points.grant(0, m.id, 5, 'reconcile-live', `g-${m.id}-${n}`);
                ack(op.opId, m.id, 5);
              }
            } catch (err) {
              failures.push(`member ${m.id} round ${n}: ${(err as Error).message}`);
            }
          }),
        );
        await sleep(10); // a steady stream, not a flood
      }
    })();
    await waitUntil('live traffic to be flowing', async () => rounds >= 5, 20_000);

    // ---- damage, then reconcile with repair, run after run, while the traffic goes on
    const damaged = new Map(DAMAGE.map(([i, delta]) => [members[i].id, delta]));
    for (const [id, delta] of damaged) await redis.hincrby(keys.account(id), 'avail', delta);
    const reconciler = new Reconciler({ sql, redis, keys, queue });
    const reports: ReconcileReport[] = [];
    const roundsBefore = rounds;
    for (let run = 0; run < RUNS; run++) reports.push(await reconciler.run({ repair: true, confirmDelayMs: 300 }));
    const roundsDuring = rounds - roundsBefore;

    producing = false;
    await producer;
    await waitUntil('confirms to land', async () => (await redis.hlen(keys.reservations(goods.id))) === 0, 5000);
    await waitForDrain(redis, keys, queue);
    const settled = await reconciler.run({ repair: false, confirmDelayMs: 300 });

    const drifts = reports.flatMap((r, run) => r.drifting.map((d) => ({ run, ...d })));
    console.info(
      `[reconcile-live] ${roundsDuring} traffic rounds during ${RUNS} runs (${reports.map((r) => r.ms).join('/')} ms, in flight ` +
        `${reports.map((r) => r.inflight).join('/')}); drift found ${JSON.stringify(drifts.map((d) => [d.run, d.userId, d.drift, d.repaired]))}; ` +
        `stock drift ${JSON.stringify(reports.map((r) => r.stockDrift))}; ${acked.size} ops acknowledged`,
    );

    expect(failures).toEqual([]);
    expect(roundsDuring, 'traffic rounds while reconcile ran').toBeGreaterThanOrEqual(RUNS);

    // every damaged member found and set back by exactly its damage, in one correction
    const found = new Map<number, Array<{ run: number; drift: number; repaired: string }>>();
    for (const d of drifts) found.set(d.userId, [...(found.get(d.userId) ?? []), { run: d.run, drift: d.drift, repaired: d.repaired }]);
    for (const [id, delta] of damaged) {
      expect({ member: id, found: found.get(id)?.map(({ drift, repaired }) => ({ drift, repaired })) }).toEqual({
        member: id,
        found: [{ drift: delta, repaired: 'corrected' }],
      });
    }
    // nobody else reported or repaired, whatever they had in flight
    expect(drifts.filter((d) => !damaged.has(d.userId)), 'undamaged members reported as drifting').toEqual([]);
    const undamagedFlagged = reports.flatMap((r) => [...r.lotMismatch, ...r.negative].filter((id) => !damaged.has(id)));
    expect(undamagedFlagged, 'undamaged members with a lot mismatch or negative balance').toEqual([]);
    expect(reports.flatMap((r) => r.mirrorDrift), 'Postgres mirror drift').toEqual([]);
    const adjusts = await sql<Array<{ userId: number; delta: number }>>`
      SELECT user_id AS "userId", delta FROM ledger_entries WHERE kind = 'adjust'`;
    expect(adjusts, 'adjust entries (a correction of Redis never writes one)').toEqual([]);

    // at rest: nothing left to find, and every balance is what the services acknowledged
    expect({ drifting: settled.drifting, lotMismatch: settled.lotMismatch, mirrorDrift: settled.mirrorDrift }).toEqual({
      drifting: [],
      lotMismatch: [],
      mirrorDrift: [],
    });
    await expectLedgerExactlyOnce(sql, queue, acked);
    await expectBalancesMatch(sql, redis, keys, members.map((m) => m.id), acked);
  });
});
