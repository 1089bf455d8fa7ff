/**
 * `npm run bench`: resets the bench database and Redis prefix, starts the API and the workers as
 * child processes, seeds the members, goods and baseline tables, runs the scenarios, reconciles
 * Postgres with what was accepted, and writes bench/results/latest.{json,md}. The children are
 * stopped and the bench keys deleted on every exit path (success, error, a child crashing, ^C).
 * Exit code 0 only when every invariant held.
 */
import { bundleApi } from '../src/cli/bundle.ts';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { createDb } from '../src/db/client.ts';
import { createRedis } from '../src/redis/client.ts';
import { createKeys } from '../src/redis/keys.ts';
import {
  BENCH_PREFIX,
  CONNECTIONS,
  DURATION_S,
  MEMBERS,
  PROFILE_DIR,
  SEED_POINTS,
  WARMUP_S,
  benchEnv,
  childEnv,
} from './config.ts';
import { Books } from './books.ts';
import { presentTokens } from './load.ts';
import { memoryReport, usedMemory } from './memory.ts';
import { RssPeaks } from './monitor.ts';
import { Pipeline } from './pipeline.ts';
import { Child, freePort, waitForHttp } from './processes.ts';
import { bareRoute, bareRouteLine, memoryLine, ratios, scenarioLine, targets, writeResults, type BenchResults } from './report.ts';
import * as scenarios from './scenarios.ts';
import { deleteKeys } from '../src/redis/delete-prefix.ts';
import { progressBar } from '../src/cli/progress.ts';
import { createCatalog, grantAll, insertMembers, prepareDatabase, resetDatabase, seedBaselineAccounts } from './seed.ts';
import { verifyPersisted } from './verify.ts';
import { clusterBench } from './cluster.ts';
import { API_NODE_FLAGS } from '../src/api-flags.ts';

const log = (msg: string) => console.log(`[bench] ${msg}`);

/** In order; BENCH_SCENARIOS=name,name runs only those (by function name, e.g. recommend). */
const SCENARIOS = [
  scenarios.hello,
  scenarios.flash,
  scenarios.baselineFlash,
  scenarios.redeem,
  scenarios.baselineRedeem,
  scenarios.helloAfter,
  scenarios.earn,
  scenarios.checkin,
  scenarios.draw,
  scenarios.transfer,
  scenarios.order,
  scenarios.balance,
  scenarios.recommend,
];
const ONLY = process.env.BENCH_SCENARIOS ? process.env.BENCH_SCENARIOS.split(',').map((s) => s.trim()) : undefined;
const unknownScenarios = ONLY?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
if (unknownScenarios.length > 0) {
  throw new Error(`BENCH_SCENARIOS: unknown ${unknownScenarios.join(', ')}; scenarios are ${SCENARIOS.map((s) => s.name).join(', ')}`);
}
/** The scenarios the targets compare with the bare route: hello runs again after them. */
const BRACKETED = ['flash', 'baselineFlash', 'redeem', 'baselineRedeem'];
if (ONLY?.includes('hello') && !ONLY.includes('helloAfter') && ONLY.some((n) => BRACKETED.includes(n))) ONLY.push('helloAfter');

const cleanups: Array<() => Promise<unknown>> = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of cleanups.reverse()) await c().catch((err) => console.error('[bench] cleanup:', err));
  })();
  return cleaning;
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  log(`${what}: ${seconds.toFixed(1)} s`);
  return { value, seconds };
}

async function main(): Promise<boolean> {
  const startedAt = new Date().toISOString();
  const port = await freePort();
  const env = benchEnv(port);
  const url = `http://127.0.0.1:${port}`;

  await timed('reset database', () => resetDatabase(env));
  const db = createDb(env.DATABASE_URL, 8);
  const redis = createRedis(env, 'api');
  const queueConnection = createRedis(env, 'worker');
  const keys = createKeys({ prefix: BENCH_PREFIX, partitions: env.PARTITIONS, cluster: Boolean(env.REDIS_CLUSTER_NODES) });
  cleanups.push(db.close, () => redis.quit(), () => queueConnection.quit());
  await deleteKeys(redis, BENCH_PREFIX);
  cleanups.push(() => deleteKeys(redis, BENCH_PREFIX));
  await prepareDatabase(db.sql);
  const pipeline = new Pipeline(redis, queueConnection, keys, db.sql);
  cleanups.push(() => pipeline.close());

  const deps = { redis, keys, sql: db.sql, env };
  const members = await timed(`insert ${MEMBERS} members + sign tokens`, () => insertMembers(db.sql, env, MEMBERS));
  const grants = await timed(`grant ${SEED_POINTS} points to each (PointsService.grant)`, () => {
    // a bar on stderr when it is a terminal; the timing line above stays on stdout either way
    const bar = progressBar('seed');
    return grantAll(deps, members.value, SEED_POINTS, { onProgress: (done, total) => bar.update(done, total, 'grants') }).finally(() =>
      bar.stop(),
    );
  });
  const catalog = await timed('goods + baseline tables', async () => {
    await seedBaselineAccounts(db.sql, members.value, SEED_POINTS);
    return createCatalog(deps);
  });

  const nodeArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const api = new Child('api', [await bundleApi()], childEnv(env), [...API_NODE_FLAGS, ...nodeArgs]);
  const workers = new Child('workers', ['workers/main.ts', '--only', 'relay,persist,sweeper'], childEnv(env), nodeArgs);
  cleanups.push(() => Promise.all([api.stop(), workers.stop()]));
  const rss = new RssPeaks({ api: api.pid, workers: workers.pid });
  rss.start();

  const run = async (): Promise<BenchResults> => {
    await timed('api and workers up', async () => {
      await waitForHttp(api, `${url}/health/live`);
      await pipeline.waitForWorkers();
    });
    // the grants' ops waited in the outbox: the workers now persist a full backlog
    await timed('grants persisted by the workers', () => pipeline.drain());
    const seeded = await pipeline.persistedSince(0);
    const signIn = await timed(`${MEMBERS} members present their tokens once`, () => presentTokens(url, members.value));
    if (signIn.value.failed > 0 || signIn.value.ok !== MEMBERS) throw new Error(`token presentation: ${JSON.stringify(signIn.value)}`);
    const usedBefore = await usedMemory(redis);

    const world: scenarios.World = {
      url,
      members: members.value,
      catalog: catalog.value,
      books: new Books(MEMBERS * SEED_POINTS),
      redis,
      keys,
      sql: db.sql,
      pipeline,
      roots: { api: api.pid, workers: workers.pid },
      paymentSecret: env.PAYMENT_WEBHOOK_SECRET!,
      env,
    };
    const results: scenarios.ScenarioResult[] = [];
    for (const scenario of SCENARIOS.filter((s) => !ONLY || ONLY.includes(s.name))) {
      const result = await scenario(world);
      results.push(result);
      log(scenarioLine(result));
    }
    const bare = bareRoute(results);
    if (bare) log(bareRouteLine(bare, results));
    const final = (await timed('final reconciliation', () => verifyPersisted(world))).value;
    for (const c of final) log(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
    const memory = await memoryReport(redis, keys, usedBefore, results);
    log(memoryLine(memory));
    rss.stop();
    return {
      startedAt,
      finishedAt: new Date().toISOString(),
      ok: results.every((r) => r.ok) && final.every((c) => c.ok),
      settings: {
        durationS: DURATION_S,
        warmupS: WARMUP_S,
        connections: CONNECTIONS,
        pipelining: 1,
        members: MEMBERS,
        cores: os.cpus().length,
        node: process.version,
        apiProcesses: env.API_PROCESSES,
        workerConcurrency: env.WORKER_CONCURRENCY,
        databasePool: env.DATABASE_POOL,
      },
      seed: {
        members: MEMBERS,
        insertSeconds: members.seconds,
        grantSeconds: grants.seconds,
        grantsPerSec: MEMBERS / grants.seconds,
        persist: seeded,
      },
      scenarios: results,
      ratios: ratios(results),
      rssPeakMb: rss.peakMb,
      memory,
      final,
    };
  };

  const results = await Promise.race([run(), api.crashed, workers.crashed]);
  console.log(`\n${await writeResults(results)}`);
  for (const t of targets(results)) log(`${t.ok ? '✓' : '✗'} target ${t.name}: ${t.detail}`);
  log(process.env.BENCH_RESULTS ? `wrote ${process.env.BENCH_RESULTS}` : 'wrote bench/results/latest.json, latest.md and latest.svg');
  if (PROFILE_DIR) log(`CPU profiles of the API and the workers in ${PROFILE_DIR}`);
  return results.ok;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}

let code = 1;
try {
  // `npm run bench -- --cluster`: the bench on a 1-master and a 3-master Redis Cluster (bench/cluster.ts)
  code = (await (process.argv.includes('--cluster') ? clusterBench() : main())) ? 0 : 1;
} catch (err) {
  if (!cleaning) console.error('[bench] failed:', err); // else: interrupted, children already gone
} finally {
  await cleanup();
}
process.exit(code);
