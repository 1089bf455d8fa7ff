/**
 * A keep-alive HTTP client for the tests that fire hundreds of requests at once at a listening
 * server (a client fleet over up to `maxSockets` sockets, not a SYN flood).
 */
import { Agent, request } from 'node:http';

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
