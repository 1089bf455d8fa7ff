/**
 * Fastify's per-request logger, built only when a request logs. Fastify makes a pino child with
 * the request id for every request; pino serializes the bindings (through the redaction paths)
 * as it builds one, which at flash-sale rates costs more than most requests ever log: request
 * logging is off below debug, and a request logs only on a warning or an error. This child
 * answers disabled levels with nothing and creates the real child (same bindings, same options)
 * the first time it is asked for anything else, then forwards to it.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export class LazyChildLogger {
  private made?: Logger;

  constructor(
    private readonly parent: Logger,
    private readonly childBindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  /** The real child, made once. */
  private real(): Logger {
    this.made ??= this.parent.child(this.childBindings, this.options);
    return this.made;
  }

  get level(): string {
    return this.made ? this.made.level : (this.options.level ?? this.parent.level);
  }

  set level(level: string) {
    this.real().level = level;
  }

  isLevelEnabled(level: string): boolean {
    if (this.made) return this.made.isLevelEnabled(level);
    // a child with its own level decides for itself: make it
    return this.options.level === undefined ? this.parent.isLevelEnabled(level) : this.real().isLevelEnabled(level);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, options) as FastifyBaseLogger;
  }

  bindings(): Bindings {
    return this.made ? this.made.bindings() : { ...this.parent.bindings(), ...this.childBindings };
  }

  silent(): void {}

  declare fatal: FastifyBaseLogger['fatal'];
  declare error: FastifyBaseLogger['error'];
  declare warn: FastifyBaseLogger['warn'];
  declare info: FastifyBaseLogger['info'];
  declare debug: FastifyBaseLogger['debug'];
  declare trace: FastifyBaseLogger['trace'];
}

for (const level of LEVELS) {
  Object.defineProperty(LazyChildLogger.prototype, level, {
    value(this: LazyChildLogger, ...args: unknown[]) {
      if (!this.isLevelEnabled(level as Level)) return;
      const real = (this as unknown as { real(): Logger }).real();
      (real[level] as (...a: unknown[]) => void).apply(real, args);
    },
    writable: true,
    configurable: true,
  });
}

/**
 * Fastify's `childLoggerFactory`: a LazyChildLogger per request. A logger that is not pino (Fastify's
 * no-op logger when logging is off, as in tests) gets its own child: it has no levels to ask.
 */
export function lazyChildLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (typeof (logger as Partial<Logger>).isLevelEnabled !== 'function') return logger.child(bindings, options);
  return new LazyChildLogger(logger as unknown as Logger, bindings, options) as unknown as FastifyBaseLogger;
}
