/**
 * Idempotency for admin writes, with the semantics of member writes: the Idempotency-Key header
 * is required; the same key with the same request replays the first answer (same status and
 * body, `Idempotent-Replayed: true`); the same key with another request (body or route) is 422
 * IDEMPOTENCY_KEY_REUSED; a refused request stores nothing; after IDEMPOTENCY_TTL_SECONDS the key
 * starts a new request. Keys belong to the admin who sent them.
 *
 * Exactly once through a crash: the key is claimed, the write done and its answer stored in ONE
 * Postgres transaction (admin_idempotency_keys). A duplicate arriving meanwhile waits on the
 * key's primary key until that transaction ends, then replays its answer (or, if it rolled
 * back, runs as the first). Steps that must follow the commit (Redis, queues) are `after`: they
 * run after the first attempt and again on each replay until one run is seen to complete
 * (`settled`), so they must be safe to repeat; their result is the answer then stored.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type postgres from 'postgres';
import type { Sql, Tx } from '../db/client.ts';
import { DomainError } from '../errors/domain-error.ts';
import { requestHash, requireIdempotencyKey } from '../points/idempotency.ts';
import { auditContextOf, withAuditContext } from '../audit/context.ts';

export const AdminIdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      maxLength: 256,
      description: 'Required. 1-128 characters of A-Z a-z 0-9 _ - : . ; a retry with the same key replays the first answer.',
    }),
  ),
});

export interface AdminWrite<W, A> {
  /** The write, inside the transaction that holds the key; what it returns is stored with the key. */
  write(tx: Tx): Promise<W>;
  /** Steps after the commit; safe to repeat. Returns the answer (stored once one run completes). */
  after?(written: W): Promise<A>;
}

export interface AdminClaim {
  actorId: number;
  key: string;
  requestHash: string;
  /** The status of a successful answer. */
  status: number;
}

export interface AdminAnswer<A> {
  status: number;
  body: A;
  replayed: boolean;
}

interface Stored {
  status: number;
  body: unknown;
  settled: boolean;
  replayed: boolean;
}

export async function runAdminWrite<W, A = W>(
  sql: Sql,
  ttlSeconds: number,
  claim: AdminClaim,
  op: AdminWrite<W, A>,
): Promise<AdminAnswer<A>> {
  const { actorId, key } = claim;
  const stored = await sql.begin(async (tx): Promise<Stored> => {
    // an expired row is taken over as if absent; a live one (committed, or waited for) is replayed
    const claimed = await tx`
      INSERT INTO admin_idempotency_keys (actor_id, idem_key, request_hash, status, expires_at)
      VALUES (${actorId}, ${key}, ${claim.requestHash}, ${claim.status}, now() + make_interval(secs => ${ttlSeconds}))
      ON CONFLICT (actor_id, idem_key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, body = '{}'::jsonb,
            settled = false, created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE admin_idempotency_keys.expires_at <= now()
      RETURNING 1`;
    if (claimed.length === 0) {
      const [prior] = await tx<Array<{ requestHash: string; status: number; body: unknown; settled: boolean }>>`
        SELECT request_hash AS "requestHash", status, body, settled FROM admin_idempotency_keys
        WHERE actor_id = ${actorId} AND idem_key = ${key}`;
      if (prior.requestHash !== claim.requestHash) {
        throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request');
      }
      return { status: prior.status, body: prior.body, settled: prior.settled, replayed: true };
    }
    const written = await op.write(tx);
    const settled = op.after === undefined;
    await tx`
      UPDATE admin_idempotency_keys SET body = ${tx.json(written as postgres.JSONValue)}, settled = ${settled}
      WHERE actor_id = ${actorId} AND idem_key = ${key}`;
    // the admin's dead keys go with the next write; SKIP LOCKED: a key being taken over is not waited for
    await tx`
      DELETE FROM admin_idempotency_keys WHERE (actor_id, idem_key) IN (
        SELECT actor_id, idem_key FROM admin_idempotency_keys
        WHERE actor_id = ${actorId} AND expires_at <= now() FOR UPDATE SKIP LOCKED)`;
    return { status: claim.status, body: written, settled, replayed: false };
  });
  if (stored.settled || !op.after) return { status: stored.status, body: stored.body as A, replayed: stored.replayed };

  const answer = await op.after(stored.body as W);
  // a concurrent replay may have settled first: every attempt answers what was stored
  const [won] = await sql`
    UPDATE admin_idempotency_keys SET body = ${sql.json(answer as postgres.JSONValue)}, settled = true
    WHERE actor_id = ${actorId} AND idem_key = ${key} AND NOT settled
    RETURNING 1`;
  const body = won
    ? answer
    : (await sql<Array<{ body: A }>>`
        SELECT body FROM admin_idempotency_keys WHERE actor_id = ${actorId} AND idem_key = ${key}`)[0].body;
  return { status: stored.status, body, replayed: stored.replayed };
}

/**
 * An admin route's handler body: requires the key, hashes the request (method, path, body), runs
 * the write once in the request's audit context (src/audit/context.ts), and answers with the stored status (and the replay header on a replay).
 */
export async function adminWrite<W, A = W>(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  op: AdminWrite<W, A>,
): Promise<A> {
  const key = requireIdempotencyKey(request.headers['idempotency-key']);
  const hash = requestHash(`${request.method} ${request.url}`, (request.body ?? {}) as Record<string, unknown>);
  const { sql, config } = request.server;
  // every audit row the write records carries this request's actor, IP, user agent and id
  const answer = await withAuditContext(auditContextOf(request), () =>
    runAdminWrite(sql, config.IDEMPOTENCY_TTL_SECONDS, { actorId: request.userId, key, requestHash: hash, status }, op),
  );
  if (answer.replayed) reply.header('idempotent-replayed', 'true');
  reply.code(answer.status);
  return answer.body;
}
