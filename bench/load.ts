/**
 * One load run with autocannon: 100 connections, no HTTP pipelining, fixed duration. Each
 * request takes its member's token, path and body from the scenario's plan and, for writes, a
 * fresh Idempotency-Key; each response is tallied by status and error code and handed to the
 * scenario's onResult exactly once. Writes still in flight when autocannon stops are re-sent with
 * their key afterwards (the API replays what it did, or does it now), so the scenario's books
 * match what the server did.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { CONNECTIONS } from './config.ts';
import type { Member } from './seed.ts';

export interface Planned {
  /** Index into the members; -1 sends no token. */
  member: number;
  path: string;
  body?: Record<string, unknown>;
}

export interface Sent extends Planned {
  key: string;
}

export interface LoadSpec {
  method: 'GET' | 'POST';
  plan(seq: number): Planned;
  /** Writes carry an Idempotency-Key and are re-sent when the end of the run cuts them off. */
  write: boolean;
  onResult?(sent: Sent, status: number, body: string): void;
  /** Resolves once the server has finished what it was doing (before cut-off writes are re-sent). */
  settle?(): Promise<void>;
}

export interface LoadStats {
  reqPerSec: number;
  latencyMs: { p50: number; p97_5: number; p99: number };
  /** Responses received during the run. */
  responses: number;
  /** '200', '409 SOLD_OUT', …: responses plus writes resolved after the stop. */
  statuses: Record<string, number>;
  accepted: number;
  rejected: number;
  resolvedAfterStop: number;
  /** Connection errors and timeouts seen by autocannon. */
  errors: number;
}

const CODE = /"code":"([A-Z_]+)"/;

/** onStop runs as soon as autocannon stops, before writes cut off by the stop are resolved. */
export async function runLoad(
  baseUrl: string,
  members: Member[],
  spec: LoadSpec,
  seconds: number,
  onStop?: () => void,
): Promise<LoadStats> {
  const tag = randomBytes(4).toString('hex');
  const inflight = new Map<string, Sent>();
  const statuses: Record<string, number> = {};
  let seq = 0;

  const headersFor = (sent: Sent) => {
    const h: Record<string, string> = {};
    if (sent.member >= 0) h.authorization = members[sent.member].auth;
    if (spec.write) h['idempotency-key'] = sent.key;
    if (sent.body) h['content-type'] = 'application/json';
    return h;
  };
  const finish = (sent: Sent, status: number, body: string) => {
    const k = status < 300 ? String(status) : `${status} ${CODE.exec(body)?.[1] ?? ''}`.trim();
    statuses[k] = (statuses[k] ?? 0) + 1;
    spec.onResult?.(sent, status, body);
  };

  const result = await autocannon({
    url: baseUrl,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
    requests: [
      {
        method: spec.method,
        setupRequest: (req, context) => {
          const sent: Sent = { ...spec.plan(seq), key: `${tag}-${seq++}` };
          inflight.set(sent.key, sent);
          (context as { sent?: Sent }).sent = sent;
          return { ...req, path: sent.path, headers: headersFor(sent), body: sent.body && JSON.stringify(sent.body) };
        },
        onResponse: (status, body, context) => {
          const sent = (context as { sent?: Sent }).sent!;
          inflight.delete(sent.key);
          finish(sent, status, body);
        },
      },
    ],
  });
  onStop?.();

  let resolvedAfterStop = 0;
  if (spec.write && inflight.size > 0) {
    await (spec.settle?.() ?? sleep(500));
    await Promise.all(
      [...inflight.values()].map(async (sent) => {
        const res = await fetch(baseUrl + sent.path, {
          method: spec.method,
          headers: headersFor(sent),
          body: sent.body && JSON.stringify(sent.body),
        });
        finish(sent, res.status, await res.text());
        resolvedAfterStop++;
      }),
    );
  }

  const count = (pred: (status: number) => boolean) =>
    Object.entries(statuses).reduce((n, [k, v]) => n + (pred(Number.parseInt(k, 10)) ? v : 0), 0);
  return {
    reqPerSec: result.requests.average,
    latencyMs: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99 },
    responses: result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'],
    statuses,
    accepted: count((s) => s >= 200 && s < 300),
    rejected: count((s) => s >= 300),
    resolvedAfterStop,
    errors: result.errors,
  };
}

/**
 * Every member presents its token once (GET /v1/me/points), so that every scenario starts with the
 * same verified-token cache in the API. Without it the first authenticated scenario alone pays
 * each token's first verification (an HMAC, ~10 µs) and the scenarios after it none — flash, run
 * first, paid for 20,000 tokens that baseline-flash, run after it, found verified.
 */
export async function presentTokens(baseUrl: string, members: Member[]): Promise<{ ok: number; failed: number }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  await autocannon({
    url: baseUrl,
    connections: CONNECTIONS,
    pipelining: 1,
    amount: members.length,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: '/v1/me/points', headers: { authorization: members[next++ % members.length].auth } }),
        onResponse: (status) => {
          if (status === 200) ok++;
          else failed++;
        },
      },
    ],
  });
  return { ok, failed };
}

/** Load without per-request setup or response bodies: the framework's ceiling. */
export async function runPlain(baseUrl: string, path: string, seconds: number, onStop?: () => void): Promise<LoadStats> {
  const result = await autocannon({ url: baseUrl + path, connections: CONNECTIONS, pipelining: 1, duration: seconds });
  onStop?.();
  const statuses: Record<string, number> = {};
  for (const [k, v] of Object.entries(result.statusCodeStats ?? {})) statuses[k] = v.count ?? 0;
  return {
    reqPerSec: result.requests.average,
    latencyMs: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99 },
    responses: result['2xx'] + result.non2xx,
    statuses,
    accepted: result['2xx'],
    rejected: result.non2xx,
    resolvedAfterStop: 0,
    errors: result.errors,
  };
}
