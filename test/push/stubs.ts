/**
 * Loopback stand-ins for the push providers: an HTTP/1.1 server (FCM's token endpoint and
 * messages:send, webhook receivers) and an h2c HTTP/2 server (APNs). Each records every request
 * and answers through a replaceable responder. Plus test keys and a JWS checker.
 */
import { generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createH2Server, type IncomingHttpHeaders as H2Headers, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface StubRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders | H2Headers;
  body: string;
  at: number;
}

export interface StubReply {
  status: number;
  body?: unknown;
}

export type Responder = (req: StubRequest) => StubReply;

export interface Stub {
  url: string;
  requests: StubRequest[];
  respond: Responder;
  close(): Promise<void>;
}

const ok: Responder = () => ({ status: 200, body: {} });
const encode = (body: unknown) => (typeof body === 'string' ? body : JSON.stringify(body ?? {}));

export async function startHttpStub(respond: Responder = ok): Promise<Stub> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      stub.requests.push(request);
      const reply = stub.respond(request);
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(encode(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const stub: Stub = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    respond,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return stub;
}

/** Cleartext HTTP/2 (h2c): the APNs transport reaches it through an http:// base URL. */
export async function startH2Stub(respond: Responder = ok): Promise<Stub> {
  const server = createH2Server();
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const request = {
        method: String(headers[':method']),
        path: String(headers[':path']),
        headers,
        body: Buffer.concat(chunks).toString(),
        at: Date.now(),
      };
      stub.requests.push(request);
      const reply = stub.respond(request);
      stream.respond({ ':status': reply.status, 'content-type': 'application/json' });
      stream.end(reply.status === 200 ? '' : encode(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const stub: Stub = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    respond,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
  return stub;
}

export function rsaKeys() {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

export function ecKeys() {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

/** A service-account JSON like the one Google issues, pointing its token_uri at a stub. */
export function serviceAccountJson(privateKey: KeyObject, tokenUri: string): string {
  return JSON.stringify({
    type: 'service_account',
    project_id: 'pm-test',
    private_key_id: 'k1',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: 'push@pm-test.iam.gserviceaccount.com',
    token_uri: tokenUri,
  });
}

/** Checks a compact JWS against a public key; returns its header and claims, or throws. */
export function verifyJws(token: string, publicKey: KeyObject): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, c, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
  const input = Buffer.from(`${h}.${c}`);
  const signature = Buffer.from(s, 'base64url');
  const valid =
    header.alg === 'ES256'
      ? verify('sha256', input, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)
      : header.alg === 'RS256' && verify('sha256', input, publicKey, signature);
  if (!valid) throw new Error(`JWS does not verify (alg ${String(header.alg)})`);
  return { header, claims: JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown> };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
