/**
 * Linux /proc readings for the report: resident memory of process trees, CPU time and run-queue
 * wait of processes (by tree or by name, e.g. redis-server, postgres), the machine's busy time.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

export interface Stat {
  pid: number;
  comm: string;
  ppid: number;
  ticks: number;
}

function readStat(pid: number): Stat | null {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = raw.lastIndexOf(')');
    const f = raw.slice(close + 2).split(' ');
    // after "pid (comm) ": state ppid … utime(14th field) stime(15th)
    return { pid, comm: raw.slice(raw.indexOf('(') + 1, close), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null; // exited meanwhile
  }
}

export function allStats(): Stat[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readStat(Number(d)))
    .filter((s): s is Stat => s !== null);
}

/** pid and all its descendants. */
export function tree(root: number, stats: Stat[] = allStats()): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const s of stats) if (s.ppid === out[i]) out.push(s.pid);
  return out;
}

export function pidsNamed(comm: string, stats: Stat[] = allStats()): number[] {
  return stats.filter((s) => s.comm === comm).map((s) => s.pid);
}

export interface CpuTime {
  /** user + system, in clock ticks */
  ticks: number;
  /** Time the main thread was runnable but waiting for a CPU (/proc/<pid>/schedstat), ns. */
  waitNs: number;
}

export function cpuTimes(pids: number[]): Map<number, CpuTime> {
  const out = new Map<number, CpuTime>();
  for (const pid of pids) {
    const s = readStat(pid);
    if (!s) continue;
    let waitNs = 0;
    try {
      waitNs = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      // exited meanwhile, or a kernel without schedstats
    }
    out.set(pid, { ticks: s.ticks, waitNs });
  }
  return out;
}

/** A field of /proc/<pid>/status in MB (VmRSS, VmHWM); 0 when the process is gone. */
export function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Busy ticks summed over all cores, from /proc/stat. */
export function machineBusyTicks(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return user + nice + system + irq + softirq + steal;
}
