/**
 * `npm start` exactly as the README runs it, stopped the way a supervisor, `timeout` or a
 * terminal stops it: a signal to the process npm is. The whole tree (the start command, the API,
 * the workers and their helpers) stops gracefully — the workers drain and say so, npm exits 0 —
 * and nothing is left answering on the port. Killing npm outright, or the start command itself,
 * stops the rest too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, childEnv, freePort, sleep, waitUntil } from '../crash/procs.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
/** Every process seen in a tree, so none outlives the file whatever an assertion did. */
const seen = new Map<number, string>();

beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => {
  for (const [pid, start] of seen) if (startTime(pid) === start) process.kill(pid, 'SIGKILL');
  await ctx?.close();
});

/** Field 22 of /proc/<pid>/stat: tells a process from a later one that reuses its pid. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? null : fields[19];
  } catch {
    return null;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** pid → (start time, command line) of every descendant of `root`. */
function descendants(root: number): Map<number, { start: string; cmd: string }> {
  const out = new Map<number, { start: string; cmd: string }>();
  const walk = (pid: number) => {
    for (const c of childrenOf(pid)) {
      const start = startTime(c);
      if (start === null) continue;
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${c}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      } catch {
        continue;
      }
      out.set(c, { start, cmd });
      seen.set(c, start);
      walk(c);
    }
  };
  walk(root);
  return out;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function live(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health/live`)).ok;
  } catch {
    return false;
  }
}

interface Started {
  npm: ChildProcess;
  port: number;
  output(): string;
  tree: Map<number, { start: string; cmd: string }>;
}

/** `ownGroup`: npm leads its own process group, as a shell's foreground job in a terminal does. */
async function npmStart(o: { ownGroup?: boolean } = {}): Promise<Started> {
  const port = await freePort();
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: childEnv(ctx.env, { PORT: port, LOG_LEVEL: 'info' }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: o.ownGroup ?? false,
  });
  seen.set(npm.pid!, startTime(npm.pid!) ?? '');
  let out = '';
  npm.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  npm.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  await waitUntil(`npm start answering on ${port}; output:\n${out.slice(-2000)}`, () => live(port), 60_000, 200);
  // the workers are up too before anything is signalled
  await waitUntil('the workers started', async () => out.includes('"workers started"'), 30_000);
  const tree = descendants(npm.pid!);
  const commands = [...tree.values()].map((p) => p.cmd);
  expect(commands.some((c) => c.includes('src/cli/start.ts'))).toBe(true);
  expect(commands.some((c) => c.includes('dist/api/server.mjs'))).toBe(true); // the API's bundle (src/cli/bundle.ts)
  expect(commands.some((c) => c.includes('workers/main.ts'))).toBe(true);
  return { npm, port, output: () => out, tree };
}

async function expectTreeGone(s: Started, deadlineMs: number): Promise<void> {
  const left = () => [...s.tree].filter(([pid, p]) => startTime(pid) === p.start);
  try {
    await waitUntil('every process of the tree to exit', async () => left().length === 0, deadlineMs, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}; still running:\n${left().map(([pid, p]) => `${pid} ${p.cmd}`).join('\n')}`);
  }
  expect(await answers(s.port)).toBe(false);
}

async function exitOf(p: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.exitCode === null && p.signalCode === null) await Promise.race([once(p, 'exit'), sleep(timeoutMs)]);
  return { code: p.exitCode, signal: p.signalCode };
}

describe('stopping npm start', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s to npm stops the whole tree gracefully', { timeout: 120_000 }, async (signal) => {
    const s = await npmStart();
    s.npm.kill(signal);
    await expectTreeGone(s, 20_000);
    expect(await exitOf(s.npm, 5_000), s.output().slice(-3000)).toEqual({ code: 0, signal: null });
    // both stopped by their own graceful shutdown (the workers drained), none was cut off
    expect(s.output()).toContain('points-mall: stopped (api 0, workers 0)');
    expect(s.output()).toContain('"msg":"stopped"');
  });

  it('Ctrl-C in a terminal (SIGINT to the whole foreground group) stops the tree gracefully', { timeout: 120_000 }, async () => {
    const s = await npmStart({ ownGroup: true });
    // npm and the start command both get it, and npm forwards its copy: still one graceful stop
    process.kill(-s.npm.pid!, 'SIGINT');
    await expectTreeGone(s, 20_000);
    expect(await exitOf(s.npm, 5_000), s.output().slice(-3000)).toEqual({ code: 0, signal: null });
    expect(s.output()).toContain('points-mall: stopped (api 0, workers 0)');
  });

  it('npm killed outright: the start command notices and stops the rest', { timeout: 120_000 }, async () => {
    const s = await npmStart();
    s.npm.kill('SIGKILL');
    await expectTreeGone(s, 20_000);
    expect(s.output()).toContain('parent process exited; stopping');
    expect(s.output()).toContain('points-mall: stopped (api 0, workers 0)');
  });

  it('the start command killed outright: the API and the workers stop on their own', { timeout: 120_000 }, async () => {
    const s = await npmStart();
    const [startPid] = [...s.tree].find(([, p]) => p.cmd.includes('src/cli/start.ts'))!;
    process.kill(startPid, 'SIGKILL');
    await expectTreeGone(s, 20_000);
    expect(s.output()).toContain('"msg":"stopped"');
    await exitOf(s.npm, 5_000);
  });
});
