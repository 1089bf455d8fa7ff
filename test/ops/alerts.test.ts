/**
 * The Prometheus alert rules (deploy/prometheus/): promtool accepts them and their unit tests
 * pass, and every alert has a unit test where it fires and one where it does not.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../crash/procs.ts';

const DIR = join(ROOT, 'deploy', 'prometheus');
const PROMTOOL = '/usr/bin/promtool';
const run = promisify(execFile);

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { cwd: DIR });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

const alerts = [...readFileSync(join(DIR, 'alerts.yml'), 'utf8').matchAll(/^\s*- alert: (\S+)\s*$/gm)].map((m) => m[1]);
const cases = [...readFileSync(join(DIR, 'alerts.test.yml'), 'utf8').matchAll(/alertname: (\S+)\s*\n\s*exp_alerts:( \[\])?/g)].map((m) => ({
  alert: m[1],
  fires: m[2] === undefined,
}));

describe('alert rules', () => {
  it('pass promtool check rules and promtool check config', async () => {
    expect(await promtool('check', 'rules', 'alerts.yml')).toMatch(new RegExp(`SUCCESS: ${alerts.length} rules found`));
    expect(await promtool('check', 'config', 'prometheus.yml')).toMatch(/SUCCESS/);
  });

  it('pass their unit tests (promtool test rules)', async () => {
    expect(await promtool('test', 'rules', 'alerts.test.yml')).toMatch(/SUCCESS/);
  });

  it('cover the issue’s thresholds', () => {
    expect(alerts.sort()).toEqual(
      [
        'ActiveMembersLow', 'BalanceDrift', 'BusinessMetricsStale', 'ExpiryRateHigh', 'MemberRedemptionBurst', 'NegativeBalance',
        'NoTransactions', 'ParkedBatches', 'PersistLagHigh', 'PointsExpiringSoonHigh', 'RedemptionLatencyHigh', 'RedemptionRateLow',
      ].sort(),
    );
  });

  it('each have a unit test where they fire and one where they do not', () => {
    const untested = alerts.flatMap((a) => [
      ...(cases.some((c) => c.alert === a && c.fires) ? [] : [`${a}: no firing case`]),
      ...(cases.some((c) => c.alert === a && !c.fires) ? [] : [`${a}: no silent case`]),
    ]);
    expect(untested).toEqual([]);
    expect(cases.filter((c) => !alerts.includes(c.alert)).map((c) => c.alert)).toEqual([]);
  });
});
