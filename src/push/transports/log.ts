/**
 * Log transport (the default): writes each message to the logger instead of delivering it, so a
 * development setup exercises the whole pipeline without provider credentials.
 */
import type { Logger } from 'pino';
import type { PushMessage, PushTransport } from './types.ts';

export class LogTransport implements PushTransport {
  readonly name = 'log';
  constructor(private readonly log: Logger) {}

  async send(m: PushMessage): Promise<void> {
    // the tail is enough to tell devices apart; a whole token in logs could be replayed
    const token = `…${m.device.token.slice(-8)}`;
    this.log.info({ platform: m.device.platform, token, title: m.title, body: m.body, data: m.data }, 'push (log transport)');
  }
}
