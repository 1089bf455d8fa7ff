/**
 * How log lines look: JSON (one object per line, for collectors) everywhere except a developer's
 * terminal, where pino-pretty renders them readable. Pretty only when NODE_ENV is development
 * (or unset, which the env schema reads as development) and stdout is a TTY: a piped or
 * redirected stdout, a container or CI always gets JSON.
 */
import type { TransportSingleOptions } from 'pino';

export type LogFormat = 'pretty' | 'json';

export function logFormat(nodeEnv: string | undefined, stdoutIsTty: boolean | undefined): LogFormat {
  const development = nodeEnv === undefined || nodeEnv === '' || nodeEnv === 'development';
  return development && stdoutIsTty === true ? 'pretty' : 'json';
}

/** The pino transport for the pretty format (pino-pretty runs in pino's worker thread). */
export function prettyTransport(): TransportSingleOptions {
  return {
    target: 'pino-pretty',
    options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'hostname', singleLine: false },
  };
}

/** `{ transport }` to spread into pino's options when stdout is a developer's terminal, else `{}`. */
export function transportFor(nodeEnv: string | undefined, stdout: { isTTY?: boolean } = process.stdout): { transport?: TransportSingleOptions } {
  return logFormat(nodeEnv, stdout.isTTY) === 'pretty' ? { transport: prettyTransport() } : {};
}
