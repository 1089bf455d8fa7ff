/**
 * Resource meters: peak resident memory of the API and workers process trees (sampled every
 * 250 ms), and the CPU split of a measured run between the API, the workers, Redis, Postgres,
 * the bench process itself (autocannon) and the rest of the machine, in % of one core — with
 * each group's run-queue wait, which shows when the machine, not the code, was the limit.
 */
import { performance } from 'node:perf_hooks';
import type { Sql } from '../src/db/client.ts';
import { CLK_TCK, allStats, cpuTimes, machineBusyTicks, pidsNamed, statusMb, tree, type CpuTime } from './procfs.ts';

export interface Roots {
  api: number;
  workers: number;
}

export class RssPeaks {
  readonly peakMb = { api: 0, workers: 0 };
  private timer?: NodeJS.Timeout;

  constructor(private readonly roots: Roots) {}

  start(everyMs = 250): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  private sample(): void {
    const stats = allStats();
    for (const name of ['api', 'workers'] as const) {
      const mb = tree(this.roots[name], stats).reduce((sum, pid) => sum + statusMb(pid, 'VmRSS'), 0);
      this.peakMb[name] = Math.max(this.peakMb[name], mb);
    }
  }
}

export const GROUPS = ['api', 'workers', 'redis', 'postgres', 'bench'] as const;
export type Group = (typeof GROUPS)[number];
/** % of one core per group, plus the machine's total and what no group accounts for. */
export type CpuSplit = Record<Group | 'other' | 'machine', number>;
export interface CpuReport {
  cpu: CpuSplit;
  /** CPU time each group used over the window, µs (what the per-op table divides). */
  usedUs: Record<Group, number>;
  wallS: number;
  /** % of one core each Redis server used (by pid, in the order found: the masters of a cluster). */
  redisByPid?: Record<string, number>;
  /** % of wall time each group's main threads were runnable but waiting for a CPU (summed). */
  runQueueWait: Record<Group, number>;
}

/**
 * The processes serving the bench, when known: the Redis server(s) it talks to (INFO process_id)
 * and the Postgres backends of its database plus the server's background processes. Without
 * them every redis-server and postgres process on the machine counts (other work included).
 */
export interface ServicePids {
  redis?: number[];
  postgres?: number[];
}

/** The pids of the Redis server behind a client, and of the Postgres processes serving a database. */
export async function servicePids(
  redisInfos: Array<() => Promise<string>>,
  sql: Sql,
): Promise<ServicePids> {
  const redis = (await Promise.all(redisInfos.map((info) => info()))).map((i) => Number(/^process_id:(\d+)/m.exec(i)?.[1])).filter((p) => p > 0);
  const rows = await sql<Array<{ pid: number }>>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR backend_type <> 'client backend'`;
  return { redis, postgres: rows.map((r) => Number(r.pid)) };
}

function groupTimes(roots: Roots, services: ServicePids): Record<Group, Map<number, CpuTime>> {
  const stats = allStats();
  const pids: Record<Group, number[]> = {
    api: tree(roots.api, stats),
    workers: tree(roots.workers, stats),
    redis: services.redis ?? pidsNamed('redis-server', stats),
    postgres: services.postgres ?? pidsNamed('postgres', stats),
    bench: [process.pid],
  };
  return Object.fromEntries(GROUPS.map((g) => [g, cpuTimes(pids[g])])) as Record<Group, Map<number, CpuTime>>;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Starts a CPU measurement; the returned function ends it and gives the split. */
export function measureCpu(roots: Roots, services: ServicePids = {}): () => CpuReport {
  const t0 = performance.now();
  const before = groupTimes(roots, services);
  const machine0 = machineBusyTicks();
  return () => {
    const after = groupTimes(roots, services);
    const wallS = (performance.now() - t0) / 1000;
    const pct = (ticks: number) => round1((ticks / CLK_TCK / wallS) * 100);
    const cpu = { machine: pct(machineBusyTicks() - machine0) } as CpuSplit;
    const runQueueWait = {} as Record<Group, number>;
    const usedUs = {} as Record<Group, number>;
    let known = 0;
    for (const g of GROUPS) {
      let ticks = 0;
      let waitNs = 0;
      for (const [pid, t] of after[g]) {
        const b = before[g].get(pid);
        ticks += t.ticks - (b?.ticks ?? 0);
        waitNs += t.waitNs - (b?.waitNs ?? 0);
      }
      cpu[g] = pct(ticks);
      usedUs[g] = Math.round((ticks / CLK_TCK) * 1e6);
      runQueueWait[g] = round1((waitNs / 1e9 / wallS) * 100);
      known += cpu[g];
    }
    cpu.other = Math.max(0, round1(cpu.machine - known));
    const redisByPid: Record<string, number> = {};
    for (const [pid, t] of after.redis) redisByPid[String(pid)] = pct(t.ticks - (before.redis.get(pid)?.ticks ?? 0));
    return { cpu, runQueueWait, usedUs, wallS: round1(wallS), redisByPid };
  };
}
