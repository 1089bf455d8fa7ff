/**
 * Crash test: coupons are issued exactly once per unit through kill -9s. Members redeem coupon
 * goods (the flash path) and place coupon orders while a real worker process running the relay,
 * persist and orders roles (workers/main.ts) is SIGKILLed three times — each time while batches
 * are being written and the order pump is issuing coupons. After a last restart, every coupon
 * redemption and order holds exactly one coupon per unit (no unit without, none twice), every code
 * is distinct, and every acknowledged op is in the ledger once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { childEnv, killAll, sleep, spawnTs, waitUntil, type Child } from './procs.ts';

let ctx: TestContext;
let producing = false;
let producer: Promise<void> | undefined;

beforeAll(async () => {
  ctx = await createTestContext({ RELAY_BATCH: 25, ORDERS_EVERY_MS: 200 });
});
afterAll(async () => {
  producing = false;
  await producer?.catch(() => {});
  await killAll();
  await ctx?.close();
});

function startWorker(): Child {
  return spawnTs('workers', 'workers/main.ts', ['--only', 'relay,persist,orders', '--lock-ms', '1000'], childEnv(ctx.env, { LOG_LEVEL: 'info', TASK_LOCK_MS: 1000 }));
}

describe('coupons through worker kills', () => {
  it('issues exactly one coupon per unit across three SIGKILLs of the relay + persist + orders worker', { timeout: 110_000 }, async () => {
    const { app, sql } = ctx;
    const members = await ctx.createMembers(30);
    for (const m of members) await ctx.grant(m.id, 100_000);
    const coupon = await ctx.createGoods({ pointsPrice: 10, stock: 100_000, type: 'coupon', couponValidDays: 7 });
    const acked = new Map<string, number>(); // order id → units
    const failures: string[] = [];
    let round = 0;
    producing = true;
    producer = (async () => {
      while (producing) {
        const r = round++;
        await Promise.all(
          members.map(async (m, i) => {
            try {
              if ((r + i) % 2 === 0) {
                const { redemption } = await app.redemptions.redeem(m.id, coupon.id, 1, `r-${r}`);
                acked.set(redemption.id, 1);
              } else {
                const { order } = await app.orders.place(m.id, { items: [{ goodsId: coupon.id, quantity: 2 }] }, `o-${r}`);
                acked.set(order.id, 2);
              }
            } catch (err) {
              failures.push((err as Error).message);
            }
          }),
        );
        await sleep(20);
      }
    })();

    let worker = startWorker();
    await worker.waitForOutput('workers started', 30_000);
    for (let kill = 0; kill < 3; kill++) {
      // let it get into batches and coupon issuing, then kill it mid-flight
      await waitUntil('coupons being issued', async () => {
        const [{ n }] = await sql`SELECT count(*)::int AS n FROM user_coupons`;
        return n > (kill + 1) * 40;
      }, 30_000);
      await sleep(50 + kill * 70);
      await worker.kill9();
      await sleep(300);
      worker = startWorker();
      await worker.waitForOutput('workers started', 30_000);
    }
    producing = false;
    await producer;
    expect(failures).toEqual([]);

    // every acknowledged redemption persisted as an order, every order's coupons issued
    const ids = [...acked.keys()];
    await waitUntil('all coupons issued', async () => {
      const [{ pending }] = await sql`
        SELECT (${ids.length} - count(*) FILTER (WHERE rewards_state = 'issued'))::int AS pending FROM orders WHERE id = ANY(${ids}::text[])`;
      return pending === 0;
    }, 60_000, 200);
    const perOrder = await sql<Array<{ orderId: string; n: number; units: number }>>`
      SELECT order_id AS "orderId", count(*)::int AS n, count(DISTINCT (position, unit))::int AS units FROM user_coupons
      WHERE order_id = ANY(${ids}::text[]) GROUP BY order_id`;
    const byOrder = new Map(perOrder.map((r) => [r.orderId, r]));
    for (const [id, units] of acked) {
      expect(byOrder.get(id)?.n, `coupons of ${id}`).toBe(units);
      expect(byOrder.get(id)?.units).toBe(units);
    }
    const [{ codes, distinct }] = await sql`SELECT count(*)::int AS codes, count(DISTINCT code)::int AS distinct FROM user_coupons`;
    expect(codes).toBe(distinct);
    expect(codes).toBe([...acked.values()].reduce((a, b) => a + b, 0));
    // and the ledger holds each spend once
    const [{ dup }] = await sql`SELECT count(*)::int AS dup FROM (SELECT op_id FROM ledger_entries GROUP BY op_id HAVING count(*) > 1) d`;
    expect(dup).toBe(0);
    await worker.kill9();
  });
});
