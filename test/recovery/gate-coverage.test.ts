/**
 * The write gate (src/recovery/redis-gate.ts) and replicated acknowledgements
 * (src/redis/replica-wait.ts) wrap the commands in WRITE_COMMANDS: a script missing from that
 * list would write to a Redis not yet verified after a restart. Every script command must be in
 * it, except the ones that move no points or stock (reads and scheduled-task locks), named here.
 * (The single-script redemption, pmRedeem, was once missing: this test fails on that commit.)
 */
import { describe, expect, it } from 'vitest';
import { COMMANDS, WRITE_COMMANDS, loadScripts } from '../../src/redis/scripts.ts';

const NOT_GATED = ['pmBalance', 'pmQuote', 'pmLockExtend', 'pmLockRelease'];

describe('write gate coverage', () => {
  it('gates every script that moves points or stock', () => {
    const commands = loadScripts().map((s) => COMMANDS[s.name]);
    const gated = new Set<string>(WRITE_COMMANDS);
    expect(commands.filter((c) => !gated.has(c) && !NOT_GATED.includes(c)), 'script commands the gate does not wrap').toEqual([]);
    expect(commands).toContain('pmRedeem');
    expect(gated.has('pmRedeem')).toBe(true);
  });

  it('names no command in the gate list that no script defines', () => {
    const defined = new Set(loadScripts().map((s) => COMMANDS[s.name]));
    expect(WRITE_COMMANDS.filter((c) => !defined.has(c))).toEqual([]);
  });
});
