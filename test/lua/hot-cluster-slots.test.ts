/**
 * Every step of a hot item's life is a one-slot command, as Redis Cluster requires: run on a
 * private one-node cluster (cluster-enabled, all 16384 slots on the node), which refuses any
 * script or MULTI whose keys span slots with CROSSSLOT. The saga (reserve, charge, confirm),
 * a settled hold (abort, release), a refund (return, uncount), restock, reconcile's snapshot and
 * repair of a bucket all run there; a script given keys of two slots is refused (the check bites).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketShare } from '../../src/goods/bucket-stock.ts';
import { createKeys } from '../../src/redis/keys.ts';
import { registerScripts } from '../../src/redis/scripts.ts';
import { DAY, T0 } from './support.ts';

/** This helper's private port range. */
const PORTS = Array.from({ length: 100 }, (_, i) => 18_000 + i);

let proc: ChildProcess | undefined;
let dir: string;
let redis: Redis;
const keys = createKeys({ prefix: 'pmslot', partitions: 16 });

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pm-hot-cluster-'));
  let port = 0;
  for (const p of PORTS.sort(() => Math.random() - 0.5)) {
    if (await portFree(p)) {
      port = p;
      break;
    }
  }
  if (!port) throw new Error('no free port in 18000-18099');
  proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
    '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')], { stdio: 'ignore' });
  redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: (n) => (n > 50 ? null : 100) });
  redis.on('error', () => {});
  await redis.ping();
  await redis.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  for (let i = 0; i < 100 && !String(await redis.call('CLUSTER', 'INFO')).includes('cluster_state:ok'); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  registerScripts(redis);
}, 20_000);

afterAll(async () => {
  redis?.disconnect();
  if (proc && proc.exitCode === null) {
    proc.kill('SIGKILL');
    await once(proc, 'exit');
  }
  rmSync(dir, { recursive: true, force: true });
});

const G = 41;
const U = 7;
const B = 3;

describe('hot goods on Redis Cluster', () => {
  it('runs every hot-goods step as a one-slot command', async () => {
    for (let k = 0; k < B; k++) {
      expect(await redis.pmGoodsSet(keys.bucket(G, k), 10, 2, 0, 0, 1, bucketShare(9, B, k), 0, 0)).toBe(3);
      // a bucket new to Redis counts the total it is given as stocked already (lua/restock-1.lua)
      expect(await redis.pmRestock(keys.bucket(G, k), bucketShare(10, B, k))).toBe(3);
    }
    await redis.pmHydrate(keys.account(U), keys.lotsByExpiry(U), keys.lotRemaining(U), keys.expiryIndexOf(U), U, 100, 100, 0, 0, '', 'lot', 100, T0 + DAY);
    const reserve = (kh: string) =>
      redis.pmHotReserve(keys.bucket(G, 0), keys.bucketReservations(G, 0), keys.bucketDeadlines(G, 0), `op-${kh}`, U, 1, `h-${kh}`, 15_000, T0, `t-${kh}`, kh, 1000, '');
    const charge = (kh: string, countKey = keys.hotBought(U)) =>
      redis.pmHotCharge(
        keys.account(U), keys.lotsByExpiry(U), keys.lotRemaining(U), keys.idem(U, kh), keys.opRef(U, `op-${kh}`), keys.outboxOf(U), countKey,
        `op-${kh}`, U, 10, `h-${kh}`, 3600, T0, `t-${kh}`, JSON.stringify({ goodsId: G, quantity: 1, bizType: 'redemption' }), kh, '', G, 1, 2, 0, 0,
      );

    // the saga
    expect(Number((await reserve('a'))[0])).toBe(1);
    expect(Number((await charge('a'))[0])).toBe(1);
    expect(await redis.pmConfirm(keys.bucketReservations(G, 0), keys.bucketDeadlines(G, 0), `${U}:a`, 't-a')).toBe(1);
    // a hold settled without a charge
    expect(Number((await reserve('b'))[0])).toBe(1);
    expect(Number((await redis.pmAbort(keys.idem(U, 'b'), 't-b', 3600))[0])).toBe(0);
    expect(await redis.pmHotRelease(keys.bucket(G, 0), keys.bucketReservations(G, 0), keys.bucketDeadlines(G, 0), `${U}:b`, 't-b')).toBe(1);
    // a refund
    expect(await redis.pmHotReturn(keys.bucket(G, 1), keys.bucketReturned(G, 1), 'op-a', 1)).toBe(1);
    expect(await redis.pmHotUncount(keys.hotBought(U), G, 'op-a', 1, '')).toBe(1);
    // reconcile's snapshot of a bucket, and its repair
    const snap = await redis.multi().time().hget(keys.bucket(G, 2), 'stock').hvals(keys.bucketReservations(G, 2)).hget(keys.bucket(G, 2), 'stocked').exec();
    expect(snap?.every(([err]) => err === null)).toBe(true);
    expect(await redis.pmRepairStock(keys.bucket(G, 2), Number(snap![1][1]), 1)).toBe(Number(snap![1][1]) + 1);

    // the check bites: the member's count given from another slot is refused
    expect(Number((await reserve('c'))[0])).toBe(1);
    const elsewhere = Array.from({ length: 100 }, (_, i) => U + 1 + i).find((u) => keys.partitionOf(u) !== keys.partitionOf(U))!;
    await expect(charge('c', keys.hotBought(elsewhere))).rejects.toThrow(/CROSSSLOT/);
  });
});
