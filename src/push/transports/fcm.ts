/**
 * Firebase Cloud Messaging, HTTP v1 API. Authenticates as a service account: an RS256 JWT
 * assertion signed with the account's private key is exchanged at its token_uri for an OAuth2
 * access token (cached until a minute before it expires, one refresh in flight at a time), which
 * authorises POST /v1/projects/<project>/messages:send.
 *
 * Errors: UNREGISTERED (404) and SENDER_ID_MISMATCH mean the token is gone for good; 401 drops
 * the cached access token and retries; 429 and 5xx retry; other 4xx do not.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { signJwt } from './jwt.ts';
import { errorForStatus, networkError, PushDeliveryError, type PushMessage, type PushTransport } from './types.ts';

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const REFRESH_MARGIN_MS = 60_000;
const DEAD_TOKEN_CODES = new Set(['UNREGISTERED', 'SENDER_ID_MISMATCH']);

export interface ServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKey: KeyObject;
  tokenUri: string;
}

/** FCM_SERVICE_ACCOUNT_JSON holds either the JSON itself or the path of the key file. */
export function loadServiceAccount(value: string): ServiceAccount {
  const text = value.trim().startsWith('{') ? value : readFileSync(value, 'utf8');
  const json = JSON.parse(text) as Record<string, unknown>;
  for (const field of ['project_id', 'client_email', 'private_key'] as const) {
    if (typeof json[field] !== 'string' || json[field] === '') {
      throw new Error(`FCM service account: ${field} is missing`);
    }
  }
  return {
    projectId: json.project_id as string,
    clientEmail: json.client_email as string,
    privateKey: createPrivateKey(json.private_key as string),
    tokenUri: typeof json.token_uri === 'string' ? json.token_uri : GOOGLE_TOKEN_URL,
  };
}

export class FcmTransport implements PushTransport {
  readonly name = 'fcm';
  private accessToken: { value: string; refreshAt: number } | null = null;
  private refreshing: Promise<string> | null = null;
  private readonly tokenUrl: string;

  constructor(
    private readonly o: { account: ServiceAccount; baseUrl: string; tokenUrl?: string; timeoutMs: number },
  ) {
    this.tokenUrl = o.tokenUrl ?? o.account.tokenUri;
  }

  async send(m: PushMessage): Promise<void> {
    const token = await this.token();
    const url = `${this.o.baseUrl.replace(/\/$/, '')}/v1/projects/${encodeURIComponent(this.o.account.projectId)}/messages:send`;
    const body = { message: { token: m.device.token, notification: { title: m.title, body: m.body }, data: m.data } };
    const res = await this.post(url, {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.ok) return;
    const text = await res.text().catch(() => '');
    if (res.status === 401) this.accessToken = null;
    const code = fcmErrorCode(text);
    if (res.status === 404 || (code !== null && DEAD_TOKEN_CODES.has(code))) {
      throw new PushDeliveryError(`fcm ${res.status}: ${code ?? 'not found'}`, { retryable: false, deadToken: true, status: res.status });
    }
    if (res.status === 401) {
      throw new PushDeliveryError('fcm 401: access token rejected', { retryable: true, status: 401 });
    }
    throw errorForStatus(this.name, res.status, code ?? text);
  }

  private async token(): Promise<string> {
    if (this.accessToken && Date.now() < this.accessToken.refreshAt) return this.accessToken.value;
    this.refreshing ??= this.fetchToken().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async fetchToken(): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const assertion = signJwt(
      { alg: 'RS256', typ: 'JWT' },
      { iss: this.o.account.clientEmail, scope: SCOPE, aud: this.tokenUrl, iat: now, exp: now + 3600 },
      this.o.account.privateKey,
    );
    const res = await this.post(this.tokenUrl, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
    });
    const text = await res.text().catch(() => '');
    // a refused assertion (bad key, revoked account) fails every send alike: dead-letter, don't spin
    if (!res.ok) throw errorForStatus('fcm token endpoint', res.status, text);
    const json = JSON.parse(text) as { access_token?: string; expires_in?: number };
    if (!json.access_token) throw new PushDeliveryError('fcm token endpoint: no access_token', { retryable: true });
    const lifetimeMs = (json.expires_in ?? 3600) * 1000;
    this.accessToken = { value: json.access_token, refreshAt: Date.now() + Math.max(0, lifetimeMs - REFRESH_MARGIN_MS) };
    return json.access_token;
  }

  private async post(url: string, init: { headers: Record<string, string>; body: string }): Promise<Response> {
    try {
      return await fetch(url, { method: 'POST', ...init, signal: AbortSignal.timeout(this.o.timeoutMs) });
    } catch (err) {
      throw networkError(this.name, err);
    }
  }
}

/** The FcmError code in an error body's details, when there is one. */
function fcmErrorCode(text: string): string | null {
  try {
    const json = JSON.parse(text) as { error?: { status?: string; details?: Array<{ errorCode?: string }> } };
    return json.error?.details?.find((d) => d.errorCode)?.errorCode ?? json.error?.status ?? null;
  } catch {
    return null;
  }
}
