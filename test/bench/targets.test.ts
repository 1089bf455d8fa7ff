/**
 * The bench's Targets section judges the measured ratios, not their rounded display: a ratio just
 * past a goal (Redis 1.54× against ≤ 1.5×, flash 9.996× against ≥ 10×) is a miss even though it
 * prints as the goal.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ratios, targets, type BenchResults } from '../../bench/report.ts';

const latest = JSON.parse(readFileSync(new URL('../../bench/results/latest.json', import.meta.url), 'utf8')) as BenchResults;

/** The committed run with one scenario's numbers changed; the ratios recomputed as the bench does. */
function run(change: (byName: (n: string) => BenchResults['scenarios'][number]) => void): BenchResults {
  const r = structuredClone(latest);
  change((n) => r.scenarios.find((s) => s.name === n)!);
  r.ratios = ratios(r.scenarios);
  return r;
}

const verdict = (r: BenchResults, name: string) => targets(r).find((t) => t.name.startsWith(name))!;

describe('bench targets', () => {
  it('judges Redis CPU per redemption by the measured ratio: 1.54× the bare route misses ≤ 1.5×, 1.49× meets it', () => {
    const at = (ratio: number) =>
      run((s) => {
        const hello = s('hello');
        const helloApi = hello.cpuUntilPersisted.usedUs.api / hello.stats.responses;
        s('redeem').cpuUntilPersisted.usedUs.redis = ratio * helloApi * s('redeem').stats.accepted;
      });
    expect(verdict(at(1.54), 'Redis CPU per accepted redemption').ok).toBe(false);
    expect(verdict(at(1.49), 'Redis CPU per accepted redemption').ok).toBe(true);
    expect(verdict(at(1.54), 'Redis CPU per accepted redemption').detail).toMatch(/^1\.54×/);
  });

  it('judges total CPU per redemption the same way: 8.04× misses ≤ 8×', () => {
    const r = run((s) => {
      const hello = s('hello');
      const helloApi = hello.cpuUntilPersisted.usedUs.api / hello.stats.responses;
      const redeem = s('redeem');
      const u = redeem.cpuUntilPersisted.usedUs;
      const others = (u.api + u.workers + u.redis) / redeem.stats.accepted;
      u.postgres = (8.04 * helloApi - others) * redeem.stats.accepted;
    });
    expect(verdict(r, 'CPU per accepted redemption').ok).toBe(false);
  });

  it('judges the baseline ratios unrounded: flash at 9.996× its baseline misses ≥ 10×', () => {
    const r = run((s) => {
      s('flash').stats.reqPerSec = 9.996 * s('baseline-flash').stats.reqPerSec;
    });
    expect(verdict(r, 'flash/baseline-flash').ok).toBe(false);
    const met = run((s) => {
      s('flash').stats.reqPerSec = 10 * s('baseline-flash').stats.reqPerSec;
    });
    expect(verdict(met, 'flash/baseline-flash').ok).toBe(true);
  });
});
