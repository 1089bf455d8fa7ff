/**
 * Log format: pino-pretty only on a developer's terminal (NODE_ENV development or unset, stdout a
 * TTY); JSON lines everywhere else. The pretty transport's options render a readable line.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { describe, expect, it } from 'vitest';
import { logFormat, prettyTransport, transportFor } from '../../src/logging/format.ts';

describe('log format', () => {
  it.each([
    ['development', true, 'pretty'],
    [undefined, true, 'pretty'],
    ['', true, 'pretty'],
    ['development', false, 'json'],
    ['development', undefined, 'json'],
    [undefined, false, 'json'],
    ['production', true, 'json'],
    ['test', true, 'json'],
    ['production', false, 'json'],
  ] as const)('NODE_ENV=%s with stdout a TTY: %s → %s', (nodeEnv, tty, expected) => {
    expect(logFormat(nodeEnv, tty)).toBe(expected);
  });

  it('adds the pino-pretty transport only for the pretty format', () => {
    expect(transportFor('development', { isTTY: true })).toEqual({ transport: prettyTransport() });
    expect(transportFor('development', { isTTY: false })).toEqual({});
    expect(transportFor('production', { isTTY: true })).toEqual({});
    expect(prettyTransport().target).toBe('pino-pretty');
  });

  it('renders a readable line with the transport\'s options, and redaction still applies', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        out += String(chunk);
        done();
      },
    });
    const stream = PinoPretty({ ...(prettyTransport().options as object), colorize: false, destination: sink, sync: true });
    const log = pino({ level: 'info', redact: ['secret'] }, stream);
    log.info({ role: 'relay', secret: 'hunter2' }, 'batch moved');
    await new Promise((r) => setImmediate(r));
    expect(out).toMatch(/INFO.*batch moved/);
    expect(out).toMatch(/role: "relay"/);
    expect(out).not.toMatch(/hunter2/);
    expect(out.trimStart().startsWith('{')).toBe(false);
  });
});
