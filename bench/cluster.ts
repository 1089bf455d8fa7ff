/**
 * `npm run bench -- --cluster`: the bench against a Redis Cluster of 1 master and then of 3
 * masters, each started here on loopback ports (redis-server --cluster-enabled yes, joined with
 * redis-cli --cluster create) and removed afterwards. Each size runs `npm run bench` as a child
 * process with REDIS_CLUSTER_NODES set (the API and the workers then use ioredis's Cluster client
 * and the saga), by default the hello, flash, redeem and earn scenarios, with PARTITIONS=64. The comparison, with each
 * master's share of Redis CPU and the per-shard figures docs/scaling.md's capacity model uses, is
 * written to bench/results/cluster.{json,md}.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { redisCluster } from '../test/support/redis-cluster.ts';
import { ROOT } from './processes.ts';
import { cpuPerOp, type BenchResults } from './report.ts';

const SIZES = [1, 3];
const BASE_PORT = Number(process.env.BENCH_CLUSTER_PORT ?? 17400);
const SCENARIOS = process.env.BENCH_SCENARIOS ?? 'hello,flash,redeem,earn';
const log = (msg: string) => console.log(`[bench:cluster] ${msg}`);

interface SizeResult {
  masters: number;
  results: BenchResults;
}

async function runBench(masters: number): Promise<SizeResult> {
  const cluster = await redisCluster({ basePort: BASE_PORT + masters * 10, masters, replicas: 0 });
  try {
    const file = join(os.tmpdir(), `pm-bench-cluster-${masters}-${process.pid}.json`);
    log(`${masters} master(s) on ${cluster.spec}: npm run bench (${SCENARIOS})`);
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn('npx', ['tsx', 'bench/run.ts'], {
        cwd: ROOT,
        stdio: 'inherit',
        // 64 user partitions spread members 22/21/21 over 3 masters (the default 16: 8/4/4)
        env: { ...process.env, PARTITIONS: process.env.PARTITIONS ?? '64', REDIS_CLUSTER_NODES: cluster.spec, BENCH_SCENARIOS: SCENARIOS, BENCH_RESULTS: file },
      });
      child.on('error', reject);
      child.on('exit', (c) => resolve(c ?? 1));
    });
    if (code !== 0) throw new Error(`the bench on ${masters} master(s) exited with ${code}`);
    return { masters, results: JSON.parse(await readFile(file, 'utf8')) as BenchResults };
  } finally {
    await cluster.destroy();
  }
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');

function markdown(sizes: SizeResult[]): string {
  const lines: string[] = [];
  const row = (cells: Array<string | number>) => lines.push(`| ${cells.join(' | ')} |`);
  lines.push(`# Redis Cluster bench — ${new Date().toISOString()}`, '');
  lines.push(
    `${os.cpus().length} cores · ${sizes[0]?.results.settings.apiProcesses} API process(es) · workers relay,persist,sweeper · ` +
      `${sizes[0]?.results.settings.durationS} s per scenario · every master on this machine`,
    '',
  );
  lines.push(`Overall: **${sizes.every((s) => s.results.ok) ? 'all invariants hold' : 'INVARIANT FAILURES'}**`, '');
  row(['masters', 'scenario', 'req/s', 'p99 ms', 'accepted', 'API µs/op', 'workers µs/op', 'Redis µs/op', 'Postgres µs/op', 'Redis CPU by master (% of a core)']);
  row(Array(10).fill('---'));
  for (const s of sizes) {
    const per = new Map(cpuPerOp(s.results.scenarios).map((c) => [c.name, c]));
    for (const sc of s.results.scenarios) {
      const c = per.get(sc.name)!;
      const byMaster = Object.values(sc.cpu.redisByPid ?? {}).map((pct) => pct.toFixed(0)).join(' / ');
      row([
        s.masters,
        sc.name,
        int(sc.stats.reqPerSec),
        sc.stats.latencyMs.p99,
        int(sc.stats.accepted),
        int(c.us.api),
        int(c.us.workers),
        int(c.us.redis),
        int(c.us.postgres),
        byMaster || '—',
      ]);
    }
  }
  lines.push('');
  for (const s of sizes) lines.push(`- ${s.masters} master(s): peak RSS API ${s.results.rssPeakMb.api.toFixed(0)} MB, workers ${s.results.rssPeakMb.workers.toFixed(0)} MB`);
  lines.push('', 'docs/scaling.md turns these into the capacity model.', '');
  return lines.join('\n');
}

export async function clusterBench(): Promise<boolean> {
  const sizes: SizeResult[] = [];
  for (const n of SIZES) sizes.push(await runBench(n));
  const dir = join(ROOT, 'bench', 'results');
  await writeFile(join(dir, 'cluster.json'), `${JSON.stringify(sizes.map((s) => ({ masters: s.masters, ...s.results })), null, 2)}\n`);
  const md = markdown(sizes);
  await writeFile(join(dir, 'cluster.md'), md);
  console.log(`\n${md}`);
  log('wrote bench/results/cluster.json and cluster.md');
  return sizes.every((s) => s.results.ok);
}
