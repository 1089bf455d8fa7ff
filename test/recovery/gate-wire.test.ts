/**
 * The write gate's second check, at the wire (gateWrites in src/recovery/redis-gate.ts). A write
 * script that passed the gate at its call can reach ioredis's sendCommand later: auto-pipelining
 * sends on the next turn of the event loop. If the socket died in between, ioredis would park the
 * script in its offline queue and send it the moment the reconnected Redis is ready, before the
 * gate has checked that Redis (with a Redis restored from an older snapshot: a double spend, as
 * test/durability/snapshot-rollback.test.ts showed with REDEEM_PATH=auto). These tests fail if the
 * script is queued and sent, or if refusing one command of a pipeline stalls the rest of it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';
import { redisServer, type RedisServer } from '../support/redis-server.ts';

let server: RedisServer;
let ctx: TestContext;
let monitor: ChildProcess;
/** Every script call (EVAL or EVALSHA) the server executed on the test's account key. */
let sent = 0;

beforeAll(async () => {
  server = await redisServer(['--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction']);
  ctx = await createTestContext({ REDIS_URL: server.url, LAG_CHECK_MS: 100 });
  // redis-cli, not ioredis's monitor(): its replies can race its MONITOR acknowledgement
  monitor = spawn('redis-cli', ['-p', String(server.port), 'monitor']);
  const lines = createInterface({ input: monitor.stdout! });
  await new Promise<void>((resolve) => {
    lines.on('line', (line) => {
      if (line === 'OK') resolve();
      if (/"eval(sha)?" .*gate-wire:acct/i.test(line)) sent++;
    });
  });
});
afterAll(async () => {
  monitor?.kill();
  await ctx?.close().catch(() => {});
  await server?.destroy();
});

const sentRiskSet = () => sent;

async function until(what: string, check: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('write gate at the wire', () => {
  it('refuses a write script whose socket died after its call, and never sends it after the reconnect', async () => {
    const redis = ctx.app.redis as Redis;
    await until('the gate to open', () => ctx.app.redisGate.writable);
    // the script runs when the connection is healthy: the monitor sees it
    await redis.pmRiskSet(`${ctx.keys.prefix}:gate-wire:acct`, 'freeze');
    await until('the monitor to see the script', () => sentRiskSet() === 1);

    // called while open; the socket dies before the auto-pipeline sends it
    const call = redis.pmRiskSet(`${ctx.keys.prefix}:gate-wire:acct`, 'freeze').then(
      () => 'sent',
      (err: { code?: string; message: string }) => err.code ?? err.message,
    );
    redis.stream.destroy();
    expect(await call).toBe('SERVICE_UNAVAILABLE');
    expect((redis as unknown as { offlineQueue: unknown[] }).offlineQueue.length, 'nothing parked in the offline queue').toBe(0);

    // the connection comes back and the gate re-verifies the (unchanged) Redis
    await until('the reconnect and the gate to reopen', () => redis.status === 'ready' && ctx.app.redisGate.writable);
    await redis.ping(); // the monitor has seen everything sent before this round trip
    await new Promise((r) => setTimeout(r, 50));
    expect(sentRiskSet(), 'the refused script never reached Redis').toBe(1);
  });

  it('refuses a write script in a pipeline sent after the gate closed, and still sends the rest of the pipeline', async () => {
    const redis = ctx.app.redis as Redis;
    await until('the gate to open', () => ctx.app.redisGate.writable);
    await redis.set(`${ctx.keys.prefix}:gate-wire:plain`, 'v');
    const before = sentRiskSet();
    // built while open (the method check passes), sent after the gate closed
    const pipeline = redis
      .pipeline()
      .get(`${ctx.keys.prefix}:gate-wire:plain`)
      .pmRiskSet(`${ctx.keys.prefix}:gate-wire:acct`, 'freeze')
      .incr(`${ctx.keys.prefix}:gate-wire:n`);
    ctx.app.redisGate.invalidate('test: closed between the call and the send');
    const results = (await pipeline.exec()) as Array<[Error | null, unknown]>;
    expect(results[0]).toEqual([null, 'v']);
    expect((results[1][0] as { code?: string } | null)?.code).toBe('SERVICE_UNAVAILABLE');
    expect(results[2]).toEqual([null, 1]);
    await redis.ping();
    await new Promise((r) => setTimeout(r, 50));
    expect(sentRiskSet()).toBe(before);
    await until('the gate to reopen', () => ctx.app.redisGate.writable);
  });

  it('refuses a write script that travels as EVAL (a command sent again after it met a socket), and never sends it', async () => {
    const redis = ctx.app.redis as Redis;
    await until('the gate to open', () => ctx.app.redisGate.writable);
    await redis.ping();
    const before = sentRiskSet();
    // ioredis writes a script as EVAL, with its text, on a socket that has not loaded it yet, and
    // renames the command so (Script's toWritable); a command sent again after that write (a
    // cluster's MOVED or ASK redirection, a retry) reaches sendCommand as EVAL, not EVALSHA
    const script = (redis as unknown as { scriptsSet: Record<string, ScriptInternals> }).scriptsSet.pmRiskSet;
    const command = new script.Command('evalsha', [script.sha, 1, `${ctx.keys.prefix}:gate-wire:acct`, 'freeze'], {});
    command.toWritable({});
    expect(command.name).toBe('eval');
    ctx.app.redisGate.invalidate('test: closed before the command is sent again');
    const outcome = (redis.sendCommand(command as never) as Promise<unknown>).then(
      () => 'sent',
      (err: { code?: string; message: string }) => err.code ?? err.message,
    );
    expect(await outcome).toBe('SERVICE_UNAVAILABLE');
    await redis.ping();
    await new Promise((r) => setTimeout(r, 50));
    expect(sentRiskSet(), 'the refused EVAL never reached Redis').toBe(before);
    await until('the gate to reopen', () => ctx.app.redisGate.writable);
  });
});

interface ScriptInternals {
  sha: string;
  Command: new (name: string, args: unknown[], options: object) => { name: string; toWritable(socket: object): unknown };
}
