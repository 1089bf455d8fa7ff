/**
 * The per-request logger (src/logging/lazy-child.ts): nothing is built for a request that logs
 * nothing, and a request that does log writes exactly what pino's own child would have written
 * (the request id and the parent's bindings, redaction applied, its own level if one was set).
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { LazyChildLogger, lazyChildLoggerFactory } from '../../src/logging/lazy-child.ts';

class Capture extends Writable {
  lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const l of chunk.toString().trim().split('\n')) if (l) this.lines.push(JSON.parse(l));
    done();
  }
}

function setup(level = 'warn') {
  const out = new Capture();
  const parent = pino({ level, base: { svc: 'api' }, redact: ['*.secret'] }, out);
  let made = 0;
  // counts children made from the parent (pino children inherit from their parent: `this` stays theirs)
  const child = parent.child;
  parent.child = function (this: typeof parent, ...a: Parameters<typeof child>) {
    if (this === parent) made++;
    return child.apply(this, a);
  } as typeof parent.child;
  const flush = () => new Promise((r) => setImmediate(r));
  return { out, parent, made: () => made, flush };
}

describe('lazy per-request logger', () => {
  it('builds no child for a request that logs only below the level', async () => {
    const { out, parent, made, flush } = setup('warn');
    const log = new LazyChildLogger(parent, { reqId: 'r1' }, {});
    log.info('request completed');
    log.debug({ x: 1 }, 'detail');
    log.trace('t');
    expect(log.level).toBe('warn');
    expect(log.isLevelEnabled('info')).toBe(false);
    await flush();
    expect(made()).toBe(0);
    expect(out.lines).toEqual([]);
  });

  it('writes what pino would at an enabled level: message, request id, parent bindings, redaction', async () => {
    const { out, parent, made, flush } = setup('warn');
    const log = new LazyChildLogger(parent, { reqId: 'r2' }, {});
    log.warn({ body: { secret: 's3cr3t', n: 2 } }, 'slow');
    log.error(new Error('boom'));
    await flush();
    expect(made()).toBe(1);
    expect(out.lines).toHaveLength(2);
    expect(out.lines[0]).toMatchObject({ level: 40, svc: 'api', reqId: 'r2', msg: 'slow', body: { secret: '[Redacted]', n: 2 } });
    expect(out.lines[1]).toMatchObject({ level: 50, reqId: 'r2', err: { message: 'boom' } });
  });

  it('honours a level set on the request logger and a level given in the child options', async () => {
    const { out, parent, flush } = setup('warn');
    const a = new LazyChildLogger(parent, { reqId: 'r3' }, {});
    a.level = 'debug';
    a.debug('now visible');
    const b = new LazyChildLogger(parent, { reqId: 'r4' }, { level: 'error' });
    expect(b.level).toBe('error');
    b.warn('hidden');
    b.error('shown');
    await flush();
    expect(out.lines.map((l) => [l.reqId, l.msg])).toEqual([
      ['r3', 'now visible'],
      ['r4', 'shown'],
    ]);
  });

  it('passes its bindings to grandchildren', async () => {
    const { out, parent, flush } = setup('info');
    const log = new LazyChildLogger(parent, { reqId: 'r5' }, {});
    expect(log.bindings()).toEqual({ svc: 'api', reqId: 'r5' });
    log.child({ orderId: 'PM1' }).info('paid');
    await flush();
    expect(out.lines[0]).toMatchObject({ svc: 'api', reqId: 'r5', orderId: 'PM1', msg: 'paid' });
  });

  it("leaves a logger that is not pino to itself (Fastify's no-op logger when logging is off)", () => {
    // what Fastify builds with `logger: false`: every method a no-op, child() returning itself
    const noop = { info() {}, error() {}, debug() {}, fatal() {}, warn() {}, trace() {}, child: () => noop } as unknown as FastifyBaseLogger;
    const log = lazyChildLoggerFactory(noop, { reqId: 'r6' }, {});
    expect(log).toBe(noop);
    expect(() => log.error({ err: new Error('boom') }, 'request failed')).not.toThrow();
  });
});
