/**
 * The API and the workers as child processes (`node --import tsx <script>`, the API from its bundle): output prefixed and
 * passed through, an exit before stop() surfaced as a rejected `crashed`, readiness by polling
 * an HTTP route, and stop() = SIGTERM (graceful drain) with SIGKILL after a grace period.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export class Child {
  readonly pid: number;
  /** Rejects when the process exits before stop() was called. */
  readonly crashed: Promise<never>;
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;
  private stopping = false;

  constructor(
    readonly name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    nodeArgs: string[] = [],
  ) {
    // TypeScript sources run through tsx; the API's bundle (src/cli/bundle.ts) runs as it is
    const loader = args[0]?.endsWith('.ts') ? ['--import', 'tsx'] : [];
    this.proc = spawn(process.execPath, [...nodeArgs, ...loader, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // own process group: a terminal ^C reaches only the bench, which then stops us gracefully
      detached: true,
    });
    if (this.proc.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.pid = this.proc.pid;
    for (const stream of [this.proc.stdout!, this.proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => process.stderr.write(`[${name}] ${line}\n`));
    }
    this.exited = new Promise((resolve) => this.proc.once('exit', () => resolve()));
    this.crashed = new Promise<never>((_, reject) => {
      this.proc.once('exit', (code, signal) => {
        if (!this.stopping) reject(new Error(`${name} exited unexpectedly (code ${code}, signal ${signal})`));
      });
    });
    this.crashed.catch(() => {}); // observed by whoever races it
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Polls url until it answers 200 (or the child dies, or timeoutMs passes). */
export async function waitForHttp(child: Child, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.running) throw new Error(`${child.name} exited during startup`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${child.name} not ready at ${url} after ${timeoutMs} ms`);
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
