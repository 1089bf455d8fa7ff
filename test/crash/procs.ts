/**
 * Real child processes for crash tests: the API (src/server.ts) and the workers (workers/main.ts)
 * run under `node --import tsx`, configured by env exactly like the file's test context, and are
 * killed with SIGKILL. Every child is tracked; killAll() (afterAll) and a process 'exit' hook make
 * sure none outlives the test file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../../src/config/env.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

export interface Child {
  name: string;
  proc: ChildProcess;
  /** stdout + stderr so far (the last 256 KB), for failure messages. */
  output(): string;
  /** Resolves once a line containing `text` has been printed. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  /** SIGKILL, and wait for the process to be gone. */
  kill9(): Promise<void>;
  exited(): boolean;
}

/** The env a child needs to behave like the test context: every Env field as a string. */
export function childEnv(env: Env, overrides: Record<string, string | number> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = String(v);
  for (const [k, v] of Object.entries(overrides)) out[k] = String(v);
  return out;
}

export function spawnTs(name: string, script: string, args: string[], env: NodeJS.ProcessEnv): Child {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of live) p.kill('SIGKILL');
    });
  }
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let buf = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const onData = (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    if (buf.length > 256 * 1024) buf = buf.slice(-256 * 1024);
    for (const w of [...waiters]) {
      if (buf.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const gone = once(proc, 'exit').then(() => {
    live.delete(proc);
  });
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  return {
    name,
    proc,
    output: () => buf,
    exited,
    waitForOutput(text, timeoutMs = 20_000) {
      if (buf.includes(text)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`${name}: no "${text}" within ${timeoutMs} ms; output:\n${buf.slice(-4000)}`));
        }, timeoutMs);
        const fail = () => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before "${text}"; output:\n${buf.slice(-4000)}`));
        };
        proc.once('exit', fail);
        waiters.push({
          text,
          resolve: () => {
            clearTimeout(timer);
            proc.off('exit', fail);
            resolve();
          },
        });
      });
    },
    async kill9() {
      if (!exited()) proc.kill('SIGKILL');
      await gone;
    },
  };
}

/** SIGKILLs every child still running and waits for each to exit. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...live].map(async (p) => {
      if (p.exitCode === null && p.signalCode === null) {
        const gone = once(p, 'exit');
        p.kill('SIGKILL');
        await Promise.race([gone, sleep(5000)]);
      }
      live.delete(p);
    }),
  );
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a truthy value; throws with `what` after timeoutMs. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | null | undefined | false>,
  timeoutMs: number,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The program name (/proc comm, at most 15 characters) of processes running this Node binary. */
export const NODE_COMM = basename(process.execPath).slice(0, 15);

/**
 * Live processes whose parent is `pid` (from /proc: Linux only); with `comm`, only those running
 * that program. A process started through tsx may also have tsx's `esbuild` service as a child
 * (when a source is not in tsx's cache yet): count forked Node processes with comm NODE_COMM.
 */
export function childPids(pid: number, comm?: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (Number(ppid) === pid && state !== 'Z' && (comm === undefined || name === comm)) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** true while a process with this pid exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * How many established TCP connections to local `port` process `pid` holds (from /proc/net/tcp
 * and the process's file descriptors), counting only those from the client ports in `from` when
 * given: which process serves a client's connections.
 */
export function connectionsHeld(pid: number, port: number, from?: Set<number>): number {
  const established = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = parseInt(f[1].split(':').pop()!, 16);
      const remotePort = parseInt(f[2].split(':').pop()!, 16);
      if (localPort === port && f[3] === '01' && (!from || from.has(remotePort))) established.add(f[9]);
    }
  }
  let held = 0;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return 0;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m && established.has(m[1])) held++;
    } catch {
      // the descriptor closed while we looked
    }
  }
  return held;
}

/** One member's redemption request in a crash test, and what came back: an answer or a transport error. */
export interface RedeemAttempt {
  userId: number;
  token: string;
  key: string;
  status?: number;
  body?: { id?: string; code?: string };
  replayed?: boolean;
  error?: string;
}

/** `perMember` attempts (keys `<keyPrefix><i>`) for each member, in random order. */
export function shuffledAttempts(members: Array<{ id: number; token: string }>, perMember: number, keyPrefix: string): RedeemAttempt[] {
  const attempts: RedeemAttempt[] = members.flatMap((m) =>
    Array.from({ length: perMember }, (_, i) => ({ userId: m.id, token: m.token, key: `${keyPrefix}${i}` })),
  );
  for (let i = attempts.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [attempts[i], attempts[j]] = [attempts[j], attempts[i]];
  }
  return attempts;
}

/** POSTs the attempt's redemption of one unit to the API at `base` and records the answer (or the transport error) on it. */
export async function postRedemption(base: string, goodsId: number, a: RedeemAttempt): Promise<void> {
  try {
    const res = await fetch(`${base}/v1/redemptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.token}`, 'idempotency-key': a.key, 'content-type': 'application/json' },
      body: JSON.stringify({ goodsId, quantity: 1 }),
      signal: AbortSignal.timeout(20_000),
    });
    a.body = (await res.json()) as RedeemAttempt['body'];
    a.status = res.status;
    a.replayed = res.headers.get('idempotent-replayed') === 'true';
    a.error = undefined;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    a.error = e.cause?.code ?? e.message;
  }
}
