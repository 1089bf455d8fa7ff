/**
 * The API in cluster mode (API_PROCESSES=2, src/server.ts as a real process on a free port): the
 * primary forks two API processes that share the port. Both serve — the client's connections are
 * found in both processes (/proc) — a flash sale sent through both never oversells, and one
 * SIGTERM to the primary stops all three processes cleanly. Processes that die before they serve
 * (a database that is not there) are not forked again and again: the primary gives up and exits 1.
 */
import { Agent } from 'node:http';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, childEnv, childPids, NODE_COMM, connectionsHeld, freePort, killAll, sleep, spawnTs, waitUntil, type Child } from '../crash/procs.ts';
import { httpJson } from '../faults/support.ts';
import { createTestContext, type Pipeline, type TestContext } from '../support/context.ts';

const BUYERS = 200;
const STOCK = 50;
const CONNECTIONS = 16;

let ctx: TestContext;
let pipeline: Pipeline;
let port: number;
let api: Child | undefined;
let workers: number[] = [];
const agents: Agent[] = [];

beforeAll(async () => {
  ctx = await createTestContext();
  pipeline = await ctx.startPipeline(2);
  port = await freePort();
});

afterAll(async () => {
  for (const a of agents) a.destroy();
  // the forked API processes are not ours to track in procs.ts: end them by pid if still there
  for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await killAll();
  await ctx?.close();
});

/** Local ports of an agent's open sockets. */
function clientPorts(agent: Agent): Set<number> {
  const sockets = [...Object.values(agent.sockets), ...Object.values(agent.freeSockets)].flat();
  return new Set(sockets.map((s) => s!.localPort!).filter((p) => p !== undefined));
}

describe('API_PROCESSES=2', () => {
  // two API processes each load the TypeScript sources through tsx: slow to start beside other test files
  it('serves from both processes, never oversells a flash sale sent through both, and stops all on one SIGTERM', { timeout: 150_000 }, async () => {
    const { redis, keys, sql } = ctx;
    const buyers = await ctx.createMembers(BUYERS);
    await Promise.all(buyers.map((m) => ctx.grant(m.id, 1000)));
    const goods = await ctx.createGoods({ pointsPrice: 100, stock: STOCK });

    api = spawnTs('api', 'src/server.ts', [], childEnv(ctx.env, { HOST: '127.0.0.1', PORT: port, API_PROCESSES: 2, LOG_LEVEL: 'warn' }));
    const primary = api.proc.pid!;
    workers = await waitUntil(
      'two API processes forked',
      async () => {
        if (api!.exited()) throw new Error(`api exited:\n${api!.output().slice(-4000)}`);
        const forked = childPids(primary, NODE_COMM);
        return forked.length === 2 ? forked : null;
      },
      60_000,
      100,
    );
    // each process starts listening once its app is built: ready when a few fresh connections
    // are served by both
    await waitUntil(
      'both API processes to answer',
      async () => {
        const probe = new Agent({ keepAlive: true, maxSockets: 4 });
        try {
          const live = await Promise.all(Array.from({ length: 4 }, () => httpJson(probe, port, 'GET', '/health/live', {})));
          return live.every((r) => r.status === 200) && workers.every((pid) => connectionsHeld(pid, port, clientPorts(probe)) > 0);
        } finally {
          probe.destroy();
        }
      },
      60_000,
      100,
    );

    // ---- the flash sale: every buyer at once, over a pool of keep-alive connections
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    agents.push(agent);
    const answers = await Promise.all(
      buyers.map((m) =>
        httpJson(agent, port, 'POST', '/v1/redemptions', { authorization: `Bearer ${m.token}`, 'idempotency-key': `flash-${m.id}` }, {
          goodsId: goods.id,
          quantity: 1,
        }),
      ),
    );
    // every connection of the pool carried requests; each is held by the process that served it
    const held = workers.map((pid) => connectionsHeld(pid, port, clientPorts(agent)));
    const statuses: Record<string, number> = {};
    for (const a of answers) {
      const k = a.status === 201 ? '201' : `${a.status ?? a.error} ${a.body?.code ?? ''}`;
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
    console.info(`[cluster] primary ${primary}, API processes ${workers.join(', ')} holding ${held.join(' / ')} connections; answers ${JSON.stringify(statuses)}`);

    expect(held.every((n) => n > 0), `connections held per API process: ${held.join(' / ')}`).toBe(true);
    expect(statuses, 'exactly the stock sold, the rest refused as sold out').toEqual({ '201': STOCK, '409 SOLD_OUT': BUYERS - STOCK });
    expect(Number(await redis.hget(keys.goods(goods.id), 'stock'))).toBe(0);
    await waitUntil('confirms to land', async () => (await redis.hlen(keys.reservations(goods.id))) === 0, 5000);
    await pipeline.drain();
    const sold = answers.filter((a) => a.status === 201).map((a) => String(a.body!.id));
    const rows = await sql<Array<{ id: string }>>`SELECT id FROM redemptions WHERE goods_id = ${goods.id}`;
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(sold));
    expect(rows).toHaveLength(STOCK);

    // ---- one SIGTERM to the primary stops every process, idle keep-alive connections or not
    const t = Date.now();
    api.proc.kill('SIGTERM');
    await waitUntil('the primary to exit', async () => api!.exited(), 15_000, 50);
    expect({ code: api.proc.exitCode, signal: api.proc.signalCode }).toEqual({ code: 0, signal: null });
    await waitUntil('both API processes to be gone', async () => workers.every((pid) => !alive(pid)), 5000, 50);
    console.info(`[cluster] all stopped ${Date.now() - t} ms after SIGTERM`);
    expect(api.output(), 'a forked process restarted while stopping').not.toContain('restarting');
    const after = await httpJson(new Agent(), port, 'GET', '/health/live', {});
    expect(after.error, 'the port is closed').toBe('ECONNREFUSED');
  });
});

describe('API_PROCESSES=2, processes that cannot start', () => {
  it('gives up after a few processes in a row die before serving: the primary exits 1, saying so, and leaves none behind', { timeout: 150_000 }, async () => {
    const bad = new URL(ctx.env.DATABASE_URL);
    bad.pathname = '/points_mall_no_such_database';
    const failing = spawnTs('api-failing', 'src/server.ts', [], childEnv(ctx.env, { HOST: '127.0.0.1', PORT: await freePort(), API_PROCESSES: 2, DATABASE_URL: bad.toString(), LOG_LEVEL: 'warn' }));
    const primary = failing.proc.pid!;
    const seen = new Set<number>();
    await waitUntil(
      'the primary to give up',
      async () => {
        for (const pid of childPids(primary, NODE_COMM)) seen.add(pid);
        return failing.exited();
      },
      120_000,
      50,
    );
    expect(failing.proc.exitCode, failing.output().slice(-2000)).toBe(1);
    expect(failing.output()).toContain('3 processes in a row exited before serving');
    expect(failing.output()).toContain('giving up');
    // a few starts, not a loop: before, the primary forked a new process for every one that died
    expect(seen.size, `processes forked: ${seen.size}`).toBeLessThanOrEqual(6);
    // the primary exits only once its processes are gone
    expect([...seen].filter((pid) => alive(pid)), 'API processes alive after the primary exited').toEqual([]);
  });

  it('keeps serving while one process serves and its replacement cannot start, and replaces it once it can', { timeout: 150_000 }, async () => {
    const db = new URL(ctx.env.DATABASE_URL).pathname.slice(1);
    const port2 = await freePort();
    const api2 = spawnTs('api-degraded', 'src/server.ts', [], childEnv(ctx.env, { HOST: '127.0.0.1', PORT: port2, API_PROCESSES: 2, LOG_LEVEL: 'warn' }));
    const primary = api2.proc.pid!;
    const live = async () => (await httpJson(new Agent(), port2, 'GET', '/health/live', {})).status === 200;
    const pair = await waitUntil('two API processes forked', async () => {
      const forked = childPids(primary, NODE_COMM);
      return forked.length === 2 ? forked : null;
    }, 60_000, 100);
    workers.push(...pair);
    await waitUntil('the API to answer', live, 60_000, 100);
    await sleep(1000); // both listening
    // the database refuses new connections (a restart, max_connections): a new process cannot start
    // (said from another database: one cannot close the one it is connected to)
    const other = new URL(ctx.env.DATABASE_URL);
    other.pathname = '/postgres';
    const admin = postgres(other.toString(), { max: 1, onnotice: () => {} });
    await admin.unsafe(`ALTER DATABASE "${db}" ALLOW_CONNECTIONS false`);
    try {
      process.kill(pair[0], 'SIGKILL');
      await waitUntil('replacements to fail at start', async () => (api2.output().match(/before serving; restarting/g) ?? []).length >= 3, 30_000, 100);
      expect(api2.exited(), api2.output().slice(-2000)).toBe(false);
      expect(alive(pair[1])).toBe(true);
      expect(await live()).toBe(true);
    } finally {
      await admin.unsafe(`ALTER DATABASE "${db}" ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    // once it can, a replacement starts and stays
    const replaced = await waitUntil('a replacement that stays', async () => {
      const now = childPids(primary, NODE_COMM);
      if (now.length !== 2 || now.includes(pair[0])) return null;
      await sleep(1500);
      const later = childPids(primary, NODE_COMM);
      return later.length === 2 && later.every((pid) => now.includes(pid)) ? later : null;
    }, 60_000, 200);
    workers.push(...replaced);
    expect(api2.exited()).toBe(false);
    api2.proc.kill('SIGTERM');
    await waitUntil('the primary to exit', async () => api2.exited(), 15_000, 50);
    expect(api2.proc.exitCode).toBe(0);
  });
});
