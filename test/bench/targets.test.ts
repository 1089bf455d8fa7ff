/**
 * The bench's Targets section judges the measured ratios, not their rounded display: a ratio just
 * past a goal (Redis 1.54× against ≤ 1.5×, flash 9.996× against ≥ 10×) is a miss even though it
 * prints as the goal.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bareRoute, cpuPerOp, markdown, ratios, targets, type BenchResults } from '../../bench/report.ts';

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
        const helloApi = bareRoute(latest.scenarios)!.apiUs;
        s('redeem').cpuUntilPersisted.usedUs.redis = ratio * helloApi * s('redeem').stats.accepted;
      });
    expect(verdict(at(1.54), 'Redis CPU per accepted redemption').ok).toBe(false);
    expect(verdict(at(1.49), 'Redis CPU per accepted redemption').ok).toBe(true);
    expect(verdict(at(1.54), 'Redis CPU per accepted redemption').detail).toMatch(/^1\.54×/);
  });

  it('judges total CPU per redemption the same way: 8.04× misses ≤ 8×', () => {
    const r = run((s) => {
      const helloApi = bareRoute(latest.scenarios)!.apiUs;
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

  it('takes the bare-route reference as the mean of hello and hello-after, and reports the drift between them', () => {
    const r = structuredClone(latest);
    r.scenarios = r.scenarios.filter((s) => s.name !== 'hello-after');
    const hello = r.scenarios.find((s) => s.name === 'hello')!;
    const helloApi = hello.cpuUntilPersisted.usedUs.api / hello.stats.responses;
    const redeem = cpuPerOp(r.scenarios).find((c) => c.name === 'redeem')!;
    // the host slowed down: the second run costs 1.5× the API CPU per request at 2/3 of the rate
    const after = structuredClone(hello);
    after.name = 'hello-after';
    after.stats.reqPerSec = (hello.stats.reqPerSec * 2) / 3;
    after.cpuUntilPersisted.usedUs.api = 1.5 * helloApi * after.stats.responses;
    r.scenarios.splice(5, 0, after);
    r.ratios = ratios(r.scenarios);

    const bare = bareRoute(r.scenarios)!;
    expect(bare.apiUs).toBeCloseTo(1.25 * helloApi, 6);
    expect(bare.reqPerSec).toBeCloseTo((hello.stats.reqPerSec * 5) / 6, 6);
    expect(bare.drift!.apiUs).toBeCloseTo(1 / 1.5 - 1, 6);
    const judged = cpuPerOp(r.scenarios).find((c) => c.name === 'redeem')!;
    expect(judged.totalVsHello!).toBeCloseTo(redeem.totalVsHello! / 1.25, 6);
    expect(r.ratios['redeem/hello']).toBeCloseTo(r.scenarios.find((s) => s.name === 'redeem')!.stats.reqPerSec / bare.reqPerSec, 2);
    expect(verdict(r, 'CPU per accepted redemption').detail).toMatch(new RegExp(`^${judged.totalVsHello!.toFixed(2)}×`));
    expect(markdown(r)).toMatch(/host speed −33% by API CPU per request, −33% by req\/s between them/);

    // one bare-route run: it is the reference as measured, no drift
    const single = r.scenarios.filter((s) => s.name !== 'hello-after');
    expect(bareRoute(single)).toMatchObject({ apiUs: helloApi, measured: [{ name: 'hello' }], drift: undefined });
  });
});
