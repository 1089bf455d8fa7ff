/**
 * The workers' pino logger: JSON lines, or pino-pretty on a developer's terminal
 * (src/logging/format.ts).
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { RECEIVER_REDACT_PATHS } from '../src/crypto/redact.ts';
import { transportFor } from '../src/logging/format.ts';

export type { Logger };

/** `destination`: stdout unless given (tests read the lines). */
export function createLogger(level: string, role: string, destination?: DestinationStream): Logger {
  // receiver info never reaches a log line (src/crypto/redact.ts)
  const options = { level, base: { role, pid: process.pid }, redact: [...RECEIVER_REDACT_PATHS] };
  return destination ? pino(options, destination) : pino({ ...options, ...transportFor(process.env.NODE_ENV) });
}
