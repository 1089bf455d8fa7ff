/**
 * /metrics with prom-client: the HTTP histogram by route pattern, hot-path outcomes, points by
 * bizType once persisted, queue depths, the bearer token, no member id in any label; the workers'
 * own endpoint and the metrics role; with API_PROCESSES=2 one scrape sums both processes.
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUSH_QUEUE } from '../../src/push/jobs.ts';
import { createRedis } from '../../src/redis/client.ts';
import { readBusiness } from '../../src/metrics/business.ts';
import { alive, childEnv, childPids, NODE_COMM, freePort, killAll, spawnTs, waitUntil } from '../crash/procs.ts';
import { createTestContext, redeemAs, type Pipeline, type TestContext } from '../support/context.ts';

const TOKEN = 'metrics-token-for-tests-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let ctx: TestContext;
let pipeline: Pipeline;
const forked: number[] = [];

beforeAll(async () => {
  ctx = await createTestContext({ METRICS_TOKEN: TOKEN, REDEEM_PATH: 'auto' });
  pipeline = await ctx.startPipeline(2);
});
afterAll(async () => {
  for (const pid of forked) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await killAll();
  await ctx?.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(): Promise<Sample[]> {
  const res = await ctx.app.inject({ url: '/metrics', headers: auth });
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(res.body);
}

/** The value of the one sample with this name whose labels include these (0 when absent). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(hits.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return hits[0]?.value ?? 0;
}

describe('GET /metrics', () => {
  it('wants the bearer token when METRICS_TOKEN is set', async () => {
    const none = await ctx.app.inject({ url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.json().code).toBe('UNAUTHORIZED');
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const wrong = await ctx.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(wrong.statusCode).toBe(401);
    expect((await ctx.app.inject({ url: '/metrics', headers: auth })).statusCode).toBe(200);
  });

  it('exports runtime defaults and request durations by route pattern, never by URL', async () => {
    const goods = await ctx.createGoods({ pointsPrice: 10, stock: 5 });
    const before = await scrape();
    const key = { route: '/v1/goods/:id', method: 'GET', status: '200' };
    const count = value(before, 'pm_http_request_duration_seconds_count', key);
    for (let i = 0; i < 3; i++) expect((await ctx.app.inject({ url: `/v1/goods/${goods.id}` })).statusCode).toBe(200);
    expect((await ctx.app.inject({ url: `/no/such/${goods.id}` })).statusCode).toBe(404);
    const after = await scrape();
    expect(value(after, 'pm_http_request_duration_seconds_count', key)).toBe(count + 3);
    expect(value(after, 'pm_http_request_duration_seconds_bucket', { ...key, le: '+Inf' })).toBe(count + 3);
    expect(value(after, 'pm_http_request_duration_seconds_count', { route: 'unmatched', method: 'GET', status: '404' })).toBeGreaterThanOrEqual(1);
    const routes = new Set(after.filter((s) => s.name.startsWith('pm_http_request_duration_seconds')).map((s) => s.labels.route));
    expect([...routes].filter((r) => r.split('/').includes(String(goods.id)))).toEqual([]);
    expect(after.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    expect(after.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('counts hot-path outcomes by script and result: accepted, SOLD_OUT, INSUFFICIENT_POINTS', async () => {
    const before = await scrape();
    const goods = await ctx.createGoods({ pointsPrice: 100, stock: 1 });
    const [rich, late, poor] = await ctx.createMembers(3);
    await ctx.grant(rich.id, 500);
    await ctx.grant(late.id, 500);
    expect((await redeemAs(ctx, rich.token, goods.id, 'k-rich')).statusCode).toBe(201);
    const soldOut = await redeemAs(ctx, late.token, goods.id, 'k-late');
    expect(soldOut.json().code).toBe('SOLD_OUT');
    const other = await ctx.createGoods({ pointsPrice: 100, stock: 5 });
    const broke = await redeemAs(ctx, poor.token, other.id, 'k-poor');
    expect(broke.json().code).toBe('INSUFFICIENT_POINTS');
    const after = await scrape();
    const delta = (script: string, result: string) =>
      value(after, 'pm_script_outcomes_total', { script, result }) - value(before, 'pm_script_outcomes_total', { script, result });
    // with REDEEM_PATH=auto a single-node Redis runs each redemption as one script ('redeem')
    expect(ctx.app.redemptions.path).toBe('atonce');
    expect(delta('redeem', 'accepted')).toBe(1);
    expect(delta('redeem', 'SOLD_OUT')).toBe(1);
    expect(delta('redeem', 'INSUFFICIENT_POINTS')).toBe(1);
    expect(delta('reserve', 'accepted') + delta('charge', 'accepted')).toBe(0);
    expect(delta('earn', 'accepted')).toBe(2);
  });

  it('counts points issued and spent by bizType once persisted, each op once, and the persist lag', async () => {
    await pipeline.drain();
    const before = await scrape();
    const [m] = await ctx.createMembers(1);
    await ctx.grant(m.id, 700);
    const goods = await ctx.createGoods({ pointsPrice: 150, stock: 5 });
    expect((await redeemAs(ctx, m.token, goods.id, 'k-spend')).statusCode).toBe(201);
    // a replay is an answer, not a second op: nothing more is issued or spent
    expect((await redeemAs(ctx, m.token, goods.id, 'k-spend')).headers['idempotent-replayed']).toBe('true');
    await pipeline.drain();
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(delta('pm_points_issued_total', { biz_type: 'grant' })).toBe(700);
    expect(delta('pm_points_spent_total', { biz_type: 'redemption' })).toBe(150);
    expect(delta('pm_persist_lag_seconds_count')).toBe(2);
  });

  it('exports queue depth and the age of the oldest waiting job per queue', async () => {
    const queue = new Queue(PUSH_QUEUE, { connection: createRedis(ctx.env.REDIS_URL, 'worker'), prefix: ctx.keys.queuePrefix(PUSH_QUEUE) });
    try {
      await queue.add('probe', { n: 1 }, { timestamp: Date.now() - 120_000 });
      await queue.add('probe', { n: 2 });
      const s = await scrape();
      expect(value(s, 'pm_queue_jobs', { queue: 'push', state: 'wait' })).toBe(2);
      const age = value(s, 'pm_queue_oldest_waiting_age_seconds', { queue: 'push' });
      expect(age).toBeGreaterThanOrEqual(119);
      expect(age).toBeLessThan(180);
      expect(value(s, 'pm_queue_jobs', { queue: 'persist', state: 'failed' })).toBe(0);
      expect(value(s, 'pm_queue_oldest_waiting_age_seconds', { queue: 'persist' })).toBe(0);
      expect(s.some((x) => x.name === 'pm_persist_backlog_age_seconds')).toBe(true);
      expect(value(s, 'pm_persist_parked_batches')).toBe(0);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('carries no member id in any label', async () => {
    const members = await ctx.createMembers(3);
    for (const m of members) {
      await ctx.grant(m.id, 50);
      await ctx.app.inject({ url: `/v1/admin/members/${m.id}`, headers: { authorization: `Bearer ${m.token}` } });
      await ctx.app.inject({ url: '/v1/me/points', headers: { authorization: `Bearer ${m.token}` } });
    }
    await pipeline.drain();
    const samples = await scrape();
    const ids = new Set(members.map((m) => String(m.id)));
    const offending = samples.flatMap((s) =>
      Object.entries(s.labels)
        .filter(([k, v]) => k !== 'le' && (ids.has(v) || [...ids].some((id) => new RegExp(`(^|/)${id}(/|$)`).test(v))))
        .map(([k, v]) => `${s.name}{${k}="${v}"}`),
    );
    expect(offending).toEqual([]);
    const labelNames = new Set(samples.flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].filter((n) => /user|member/i.test(n))).toEqual([]);
  });
});

describe('worker processes', () => {
  it('serve their own /metrics on WORKER_METRICS_PORT (token-protected), and the metrics role stores the business snapshot', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const worker = spawnTs(
      'workers',
      'workers/main.ts',
      ['--only', 'metrics'],
      childEnv(ctx.env, { WORKER_METRICS_PORT: port, METRICS_TOKEN: TOKEN, BUSINESS_METRICS_EVERY_MS: 1000, LOG_LEVEL: 'info' }),
    );
    await worker.waitForOutput('serving /metrics', 30_000);
    const url = `http://127.0.0.1:${port}/metrics`;
    expect((await fetch(url)).status).toBe(401);
    const res = await fetch(url, { headers: auth });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^process_cpu_user_seconds_total \S+$/m);
    expect(text).toMatch(/^# TYPE pm_persist_lag_seconds histogram$/m);
    const snapshot = await waitUntil('the business snapshot', () => readBusiness(ctx.redis, ctx.keys), 30_000);
    expect(snapshot.activeMembers24h).toBeGreaterThan(0);
    expect(snapshot.redemptionRate1h).toBeGreaterThan(0);
    expect(snapshot.maxMemberRedemptions300s).toBeGreaterThanOrEqual(1);
    const s = await scrape();
    expect(value(s, 'pm_business_active_members_24h')).toBe(snapshot.activeMembers24h);
    expect(value(s, 'pm_business_snapshot_age_seconds')).toBeLessThan(30);
  });
});

describe('API_PROCESSES=2', () => {
  // two processes each loading the TypeScript sources through tsx: slow to start beside other test files
  it('sums every process’s own metrics in one scrape', { timeout: 150_000 }, async () => {
    const port = await freePort();
    const api = spawnTs('api', 'src/server.ts', [], childEnv(ctx.env, { HOST: '127.0.0.1', PORT: port, API_PROCESSES: 2, LOG_LEVEL: 'warn' }));
    forked.push(
      ...(await waitUntil('two API processes', async () => {
        if (api.exited()) throw new Error(`api exited:\n${api.output().slice(-4000)}`);
        const pids = childPids(api.proc.pid!, NODE_COMM);
        return pids.length === 2 ? pids : null;
      }, 60_000)),
    );
    const base = `http://127.0.0.1:${port}`;
    await waitUntil('the API answers', async () => (await fetch(`${base}/health/live`).then((r) => r.ok, () => false)) || null, 60_000);
    // a fresh connection each: the primary hands connections to the processes in turn (round
    // robin), so a scrape answered by one process alone would count about half of them
    const tag = randomBytes(3).toString('hex');
    const N = 20;
    for (let i = 0; i < N; i++) {
      const r = await fetch(`${base}/v1/goods/999999${i}?t=${tag}`, { headers: { connection: 'close' } });
      expect(r.status).toBe(404);
    }
    const text = await (await fetch(`${base}/metrics`, { headers: auth })).text();
    const samples = parse(text);
    expect(value(samples, 'pm_http_request_duration_seconds_count', { route: '/v1/goods/:id', method: 'GET', status: '404' })).toBe(N);
    // shared state is read once, not once per process
    expect(samples.filter((s) => s.name === 'pm_outbox_entries')).toHaveLength(1);
    api.proc.kill('SIGTERM');
  });
});
