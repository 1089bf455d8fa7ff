/**
 * The workers' pino logger.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, role: string): Logger {
  return pino({ level, base: { role, pid: process.pid } });
}
