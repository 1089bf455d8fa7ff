/**
 * Generic webhook transport: POSTs each message as JSON to one URL, signed so the receiver can
 * check it came from us and is fresh. The signature covers `<timestamp>.<raw body>`, and the
 * timestamp travels in its own header, so a captured request replayed later (or with another
 * timestamp) no longer verifies once the receiver's tolerance window has passed.
 *
 * Receiver contract: 2xx = delivered; 410 = the device token is unknown (the device is dropped);
 * 408/429/5xx = try again; any other status = do not retry.
 */
import { createHmac } from 'node:crypto';
import { errorForStatus, networkError, PushDeliveryError, type PushMessage, type PushTransport } from './types.ts';

export const SIGNATURE_HEADER = 'x-points-mall-signature';
export const TIMESTAMP_HEADER = 'x-points-mall-timestamp';

export function signWebhook(secret: string, timestamp: string, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
}

export class WebhookTransport implements PushTransport {
  readonly name = 'webhook';
  constructor(private readonly o: { url: string; secret: string; timeoutMs: number }) {}

  async send(m: PushMessage): Promise<void> {
    const body = JSON.stringify({
      platform: m.device.platform,
      token: m.device.token,
      title: m.title,
      body: m.body,
      data: m.data,
    });
    const timestamp = String(Math.floor(Date.now() / 1000));
    let res: Response;
    try {
      res = await fetch(this.o.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWebhook(this.o.secret, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (err) {
      throw networkError(this.name, err);
    }
    const text = await res.text().catch(() => '');
    if (res.ok) return;
    if (res.status === 410) {
      throw new PushDeliveryError(`webhook 410: token unknown to receiver`, { retryable: false, deadToken: true, status: 410 });
    }
    throw errorForStatus(this.name, res.status, text);
  }
}
