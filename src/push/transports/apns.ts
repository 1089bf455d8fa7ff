/**
 * Apple Push Notification service over HTTP/2 with token-based auth: an ES256 provider token
 * (header kid = key id, claims iss = team id, iat) signed with the .p8 key, reused for 50 minutes
 * (Apple refuses tokens older than an hour and throttles ones refreshed more often than every 20
 * minutes). One HTTP/2 session is kept open and reopened after the server closes it.
 *
 * Errors: 410 Unregistered, BadDeviceToken and DeviceTokenNotForTopic mean the token is gone;
 * ExpiredProviderToken/InvalidProviderToken drop the cached provider token and retry; 429 and
 * 5xx retry; other 4xx do not.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { signJwt } from './jwt.ts';
import { errorForStatus, networkError, PushDeliveryError, type PushMessage, type PushTransport } from './types.ts';

const TOKEN_REUSE_MS = 50 * 60_000;
const DEAD_TOKEN_REASONS = new Set(['Unregistered', 'BadDeviceToken', 'DeviceTokenNotForTopic']);
const STALE_PROVIDER_TOKEN = new Set(['ExpiredProviderToken', 'InvalidProviderToken']);

/** APNS_KEY_PEM holds either the PEM itself or the path of the .p8 file. */
export function loadApnsKey(value: string): KeyObject {
  return createPrivateKey(value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8'));
}

export interface ApnsOptions {
  key: KeyObject;
  keyId: string;
  teamId: string;
  topic: string;
  /** https://api.push.apple.com in production; an http:// (h2c) URL is accepted for local stubs. */
  baseUrl: string;
  timeoutMs: number;
}

export class ApnsTransport implements PushTransport {
  readonly name = 'apns';
  private session: ClientHttp2Session | null = null;
  private providerToken: { value: string; issuedAt: number } | null = null;

  constructor(private readonly o: ApnsOptions) {}

  async send(m: PushMessage): Promise<void> {
    if (m.device.platform !== 'ios') {
      throw new PushDeliveryError(`apns cannot deliver to ${m.device.platform} devices`, { retryable: false });
    }
    const payload = JSON.stringify({ ...m.data, aps: { alert: { title: m.title, body: m.body } } });
    const { status, body } = await this.request(m.device.token, payload);
    if (status === 200) return;
    const reason = apnsReason(body);
    if (status === 410 || DEAD_TOKEN_REASONS.has(reason)) {
      throw new PushDeliveryError(`apns ${status}: ${reason}`, { retryable: false, deadToken: true, status });
    }
    if (STALE_PROVIDER_TOKEN.has(reason)) {
      this.providerToken = null;
      throw new PushDeliveryError(`apns ${status}: ${reason}`, { retryable: true, status });
    }
    throw errorForStatus(this.name, status, reason);
  }

  async close(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (session && !session.closed) await new Promise<void>((resolve) => session.close(() => resolve()));
  }

  private jwt(): string {
    const now = Date.now();
    if (!this.providerToken || now - this.providerToken.issuedAt > TOKEN_REUSE_MS) {
      const value = signJwt(
        { alg: 'ES256', kid: this.o.keyId },
        { iss: this.o.teamId, iat: Math.floor(now / 1000) },
        this.o.key,
      );
      this.providerToken = { value, issuedAt: now };
    }
    return this.providerToken.value;
  }

  private connection(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connect(this.o.baseUrl);
    const forget = () => {
      if (this.session === session) this.session = null;
    };
    // a failed or closed session is replaced on the next send; the error itself surfaces on the stream
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', forget);
    this.session = session;
    return session;
  }

  private request(deviceToken: string, payload: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        stream = this.connection().request({
          ':method': 'POST',
          ':path': `/3/device/${encodeURIComponent(deviceToken)}`,
          authorization: `bearer ${this.jwt()}`,
          'apns-topic': this.o.topic,
          'apns-push-type': 'alert',
          'content-type': 'application/json',
        });
      } catch (err) {
        reject(networkError(this.name, err));
        return;
      }
      let status = 0;
      const chunks: Buffer[] = [];
      stream.setTimeout(this.o.timeoutMs, () => stream.close(constants.NGHTTP2_CANCEL));
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
      stream.on('close', () => {
        if (status === 0) reject(networkError(this.name, new Error('stream closed without a response')));
      });
      stream.on('error', (err) => reject(networkError(this.name, err)));
      stream.end(payload);
    });
  }
}

function apnsReason(body: string): string {
  try {
    return (JSON.parse(body) as { reason?: string }).reason ?? 'unknown';
  } catch {
    return body.slice(0, 200) || 'unknown';
  }
}
