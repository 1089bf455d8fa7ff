/**
 * Each real transport against a loopback stub: the credentials the provider would check (FCM's
 * signed assertion and bearer token, APNs's ES256 provider token, the webhook's HMAC), the
 * request it would receive, and how provider answers become retryable / dead-token errors.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EnvError, loadEnv } from '../../src/config/env.ts';
import { ApnsTransport } from '../../src/push/transports/apns.ts';
import { FcmTransport, loadServiceAccount } from '../../src/push/transports/fcm.ts';
import { RoutingTransport } from '../../src/push/transports/router.ts';
import { PushDeliveryError, type PushMessage, type PushTransport } from '../../src/push/transports/types.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookTransport } from '../../src/push/transports/webhook.ts';
import { ecKeys, rsaKeys, serviceAccountJson, startH2Stub, startHttpStub, verifyJws, type Stub } from './stubs.ts';

const message = (platform: PushMessage['device']['platform'], token: string): PushMessage => ({
  device: { platform, token },
  title: 'Points expiring',
  body: '120 points expire in 3 days',
  data: { kind: 'expiry', days: '3' },
});

async function failure(p: Promise<void>): Promise<PushDeliveryError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PushDeliveryError);
  return err as PushDeliveryError;
}

describe('FCM HTTP v1 transport', () => {
  const keys = rsaKeys();
  let stub: Stub;
  let tokensIssued = 0;
  let fcm: FcmTransport;

  beforeAll(async () => {
    stub = await startHttpStub();
  });
  afterAll(async () => stub.close());
  afterEach(() => {
    stub.requests.length = 0;
    tokensIssued = 0;
  });

  /** Token endpoint hands out numbered tokens; messages:send answers with `send`. */
  function serve(send: (token: string) => { status: number; body?: unknown }, expiresIn = 3600) {
    stub.respond = (req) => {
      if (req.path === '/token') return { status: 200, body: { access_token: `at-${++tokensIssued}`, expires_in: expiresIn, token_type: 'Bearer' } };
      return send((JSON.parse(req.body) as { message: { token: string } }).message.token);
    };
    fcm = new FcmTransport({
      account: loadServiceAccount(serviceAccountJson(keys.privateKey, `${stub.url}/token`)),
      baseUrl: stub.url,
      timeoutMs: 2000,
    });
  }

  const sends = () => stub.requests.filter((r) => r.path.endsWith('/messages:send'));
  const tokenRequests = () => stub.requests.filter((r) => r.path === '/token');

  it('exchanges a service-account assertion signed with its key for a token and sends with it', async () => {
    serve(() => ({ status: 200, body: { name: 'projects/pm-test/messages/1' } }));
    await fcm.send(message('android', 'fcm-token-1'));

    const [tokenReq] = tokenRequests();
    expect(tokenReq.method).toBe('POST');
    expect(tokenReq.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const form = new URLSearchParams(tokenReq.body);
    expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const { header, claims } = verifyJws(form.get('assertion') ?? '', keys.publicKey);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    expect(claims).toMatchObject({
      iss: 'push@pm-test.iam.gserviceaccount.com',
      aud: `${stub.url}/token`,
      scope: 'https://www.googleapis.com/auth/firebase.messaging',
    });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(3600);

    const [send] = sends();
    expect(send.path).toBe('/v1/projects/pm-test/messages:send');
    expect(send.headers.authorization).toBe('Bearer at-1');
    expect(JSON.parse(send.body)).toEqual({
      message: {
        token: 'fcm-token-1',
        notification: { title: 'Points expiring', body: '120 points expire in 3 days' },
        data: { kind: 'expiry', days: '3' },
      },
    });
  });

  it('caches the access token until shortly before it expires', async () => {
    serve(() => ({ status: 200 }));
    await fcm.send(message('android', 'a'));
    await Promise.all([fcm.send(message('android', 'b')), fcm.send(message('web', 'c'))]);
    expect(tokenRequests()).toHaveLength(1);
    expect(sends().map((r) => r.headers.authorization)).toEqual(['Bearer at-1', 'Bearer at-1', 'Bearer at-1']);

    // a token living less than the refresh margin is fetched again on every send
    serve(() => ({ status: 200 }), 30);
    await fcm.send(message('android', 'a'));
    await fcm.send(message('android', 'b'));
    expect(tokenRequests()).toHaveLength(3);
  });

  it('reads the service account from a file path as well', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pm-fcm-'));
    const path = join(dir, 'sa.json');
    writeFileSync(path, serviceAccountJson(keys.privateKey, 'http://127.0.0.1:1/token'));
    expect(loadServiceAccount(path)).toMatchObject({ projectId: 'pm-test', tokenUri: 'http://127.0.0.1:1/token' });
  });

  it('treats UNREGISTERED as a dead token, 5xx as retryable and INVALID_ARGUMENT as final', async () => {
    const fcmError = (status: number, code: string) => ({
      status,
      body: { error: { code: status, status: code, details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: code }] } },
    });
    serve((token) =>
      token === 'gone' ? fcmError(404, 'UNREGISTERED') : token === 'bad' ? fcmError(400, 'INVALID_ARGUMENT') : fcmError(503, 'UNAVAILABLE'),
    );
    expect(await failure(fcm.send(message('android', 'gone')))).toMatchObject({ deadToken: true, retryable: false, status: 404 });
    expect(await failure(fcm.send(message('android', 'bad')))).toMatchObject({ deadToken: false, retryable: false, status: 400 });
    expect(await failure(fcm.send(message('android', 'busy')))).toMatchObject({ deadToken: false, retryable: true, status: 503 });
  });

  it('drops a rejected access token and fetches a new one on the next send', async () => {
    let rejectOnce = true;
    serve(() => {
      if (!rejectOnce) return { status: 200 };
      rejectOnce = false;
      return { status: 401, body: { error: { code: 401, status: 'UNAUTHENTICATED' } } };
    });
    expect(await failure(fcm.send(message('android', 'a')))).toMatchObject({ retryable: true, status: 401 });
    await fcm.send(message('android', 'a'));
    expect(sends().map((r) => r.headers.authorization)).toEqual(['Bearer at-1', 'Bearer at-2']);
  });

  it('fails without retry when the token endpoint refuses the assertion', async () => {
    serve(() => ({ status: 200 }));
    stub.respond = () => ({ status: 400, body: { error: 'invalid_grant' } });
    expect(await failure(fcm.send(message('android', 'a')))).toMatchObject({ retryable: false, status: 400 });
  });
});

describe('APNs transport (HTTP/2, token auth)', () => {
  const keys = ecKeys();
  let stub: Stub;
  let apns: ApnsTransport;

  beforeAll(async () => {
    stub = await startH2Stub();
    apns = new ApnsTransport({
      key: keys.privateKey,
      keyId: 'KEY123ABCD',
      teamId: 'TEAM456XYZ',
      topic: 'com.example.pointsmall',
      baseUrl: stub.url,
      timeoutMs: 2000,
    });
  });
  afterAll(async () => {
    await apns.close();
    await stub.close();
  });
  afterEach(() => {
    stub.requests.length = 0;
    stub.respond = () => ({ status: 200 });
  });

  it('POSTs /3/device/<token> over HTTP/2 with an ES256 provider token and the topic', async () => {
    await apns.send(message('ios', 'a1b2c3d4'));
    const [req] = stub.requests;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/3/device/a1b2c3d4');
    expect(req.headers['apns-topic']).toBe('com.example.pointsmall');
    expect(req.headers['apns-push-type']).toBe('alert');
    const auth = String(req.headers.authorization);
    expect(auth.startsWith('bearer ')).toBe(true);
    const { header, claims } = verifyJws(auth.slice('bearer '.length), keys.publicKey);
    expect(header).toEqual({ alg: 'ES256', kid: 'KEY123ABCD' });
    expect(claims.iss).toBe('TEAM456XYZ');
    expect(Math.abs(Number(claims.iat) - Date.now() / 1000)).toBeLessThan(5);
    expect(JSON.parse(req.body)).toEqual({
      kind: 'expiry',
      days: '3',
      aps: { alert: { title: 'Points expiring', body: '120 points expire in 3 days' } },
    });
  });

  it('reuses the provider token and the connection across sends', async () => {
    await apns.send(message('ios', 'aa'));
    await apns.send(message('ios', 'bb'));
    expect(stub.requests[0].headers.authorization).toBe(stub.requests[1].headers.authorization);
  });

  it('treats 410 Unregistered and BadDeviceToken as dead tokens, 429 as retryable', async () => {
    stub.respond = (req) =>
      req.path.endsWith('/gone')
        ? { status: 410, body: { reason: 'Unregistered', timestamp: Date.now() } }
        : req.path.endsWith('/bad')
          ? { status: 400, body: { reason: 'BadDeviceToken' } }
          : req.path.endsWith('/payload')
            ? { status: 400, body: { reason: 'PayloadTooLarge' } }
            : { status: 429, body: { reason: 'TooManyRequests' } };
    expect(await failure(apns.send(message('ios', 'gone')))).toMatchObject({ deadToken: true, retryable: false, status: 410 });
    expect(await failure(apns.send(message('ios', 'bad')))).toMatchObject({ deadToken: true, retryable: false });
    expect(await failure(apns.send(message('ios', 'payload')))).toMatchObject({ deadToken: false, retryable: false });
    expect(await failure(apns.send(message('ios', 'busy')))).toMatchObject({ deadToken: false, retryable: true, status: 429 });
  });

  it('refuses non-iOS devices without retry', async () => {
    expect(await failure(apns.send(message('android', 'x')))).toMatchObject({ retryable: false });
    expect(stub.requests).toHaveLength(0);
  });

  it('reports an unreachable server as retryable', async () => {
    const down = new ApnsTransport({
      key: keys.privateKey, keyId: 'K', teamId: 'T', topic: 't', baseUrl: 'http://127.0.0.1:1', timeoutMs: 1000,
    });
    expect(await failure(down.send(message('ios', 'x')))).toMatchObject({ retryable: true });
    await down.close();
  });
});

describe('webhook transport', () => {
  const secret = 'webhook-secret-0123456789';
  let stub: Stub;
  let webhook: WebhookTransport;

  beforeAll(async () => {
    stub = await startHttpStub();
    webhook = new WebhookTransport({ url: `${stub.url}/push`, secret, timeoutMs: 2000 });
  });
  afterAll(async () => stub.close());

  it('signs timestamp and raw body with HMAC-SHA256 of the shared secret', async () => {
    await webhook.send(message('web', 'w-1'));
    const [req] = stub.requests;
    const timestamp = String(req.headers[TIMESTAMP_HEADER]);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(5);
    const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${req.body}`).digest('hex')}`;
    expect(req.headers[SIGNATURE_HEADER]).toBe(expected);
    // the same body under another timestamp does not verify: a replay cannot move the clock
    const replayed = `sha256=${createHmac('sha256', secret).update(`${Number(timestamp) + 600}.${req.body}`).digest('hex')}`;
    expect(replayed).not.toBe(expected);
    expect(JSON.parse(req.body)).toEqual({
      platform: 'web',
      token: 'w-1',
      title: 'Points expiring',
      body: '120 points expire in 3 days',
      data: { kind: 'expiry', days: '3' },
    });
  });

  it('maps 410 to a dead token, 5xx to retryable, other 4xx to final', async () => {
    stub.respond = () => ({ status: 410 });
    expect(await failure(webhook.send(message('web', 'x')))).toMatchObject({ deadToken: true, retryable: false });
    stub.respond = () => ({ status: 502 });
    expect(await failure(webhook.send(message('web', 'x')))).toMatchObject({ deadToken: false, retryable: true });
    stub.respond = () => ({ status: 422 });
    expect(await failure(webhook.send(message('web', 'x')))).toMatchObject({ deadToken: false, retryable: false });
  });
});

describe('transport selection', () => {
  const recorder = (name: string, seen: string[]): PushTransport => ({
    name,
    send: async (m) => {
      seen.push(`${name}:${m.device.platform}`);
    },
  });

  it('routes each platform to the first transport that serves it', async () => {
    const seen: string[] = [];
    const router = new RoutingTransport([
      { platforms: ['ios'], transport: recorder('apns', seen) },
      { platforms: ['ios', 'android', 'web'], transport: recorder('fcm', seen) },
    ]);
    await router.send(message('ios', 'a'));
    await router.send(message('android', 'b'));
    await router.send(message('web', 'c'));
    expect(seen).toEqual(['apns:ios', 'fcm:android', 'fcm:web']);
    const apnsOnly = new RoutingTransport([{ platforms: ['ios'], transport: recorder('apns', seen) }]);
    expect(await failure(apnsOnly.send(message('android', 'b')))).toMatchObject({ retryable: false });
  });

  it('refuses to start with a transport whose settings are missing', () => {
    expect(loadEnv({}).PUSH_TRANSPORT).toBe('log');
    expect(() => loadEnv({ PUSH_TRANSPORT: 'fcm' })).toThrow(/FCM_SERVICE_ACCOUNT_JSON/);
    expect(() => loadEnv({ PUSH_TRANSPORT: 'apns,webhook', WEBHOOK_URL: 'http://127.0.0.1:9/x' })).toThrow(
      /APNS_KEY_PEM, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, WEBHOOK_SECRET/,
    );
    expect(() => loadEnv({ PUSH_TRANSPORT: 'sms' })).toThrow(EnvError);
  });
});
