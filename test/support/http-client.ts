/**
 * A keep-alive HTTP client for the tests that fire hundreds of requests at once at a listening
 * server (a client fleet over up to `maxSockets` sockets, not a SYN flood).
 */
import { Agent, request } from 'node:http';
import { afterAll, beforeAll } from 'vitest';
import { createTestContext, type TestContext } from './context.ts';

export interface HttpClient {
  post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }>;
  close(): void;
}

export function httpClient(maxSockets = 256): HttpClient {
  const agent = new Agent({ keepAlive: true, maxSockets });
  return {
    post(url, headers, body) {
      return new Promise((resolve, reject) => {
        const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (data += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

/**
 * The file's test context with its app listening on a loopback port (`ready` gets both once they
 * are up), and a keep-alive client for it; both closed after the file's tests.
 */
export function listeningContext(ready: (ctx: TestContext, baseUrl: string) => void): HttpClient {
  const http = httpClient();
  let ctx: TestContext | undefined;
  beforeAll(async () => {
    ctx = await createTestContext();
    ready(ctx, await ctx.app.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }));
  });
  afterAll(async () => {
    http.close();
    await ctx?.close();
  });
  return http;
}
