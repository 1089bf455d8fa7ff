/**
 * Points transfers between members: a saga of two ops in two slots, linked by the transfer id.
 *   debit (lua/transfer-debit-8.lua, sender's slot): the business day's maximum and the balance;
 *     lots consumed earliest expiry first; a spend op (transfer_out, op id = the transfer id) in
 *     the outbox and the sender's idempotency record; the credit still to make on the partition's
 *     pending set, with the expiries of the lots it took;
 *   credit (lua/transfer-credit-6.lua, receiver's slot): one lot per source expiry, an earn op
 *     (transfer_in, op id "<id>-in") recorded under a key derived from the transfer id, so it is
 *     made at most once however many times it is tried; never multiplied, not toward the tier;
 *   done (lua/transfer-done-2.lua): off the pending set.
 * The API credits right after the debit. Whatever interrupts it (the process killed, Redis
 * unreachable), the pending set still names the transfer, and the completer (sweeper role) makes
 * the credit once the entry is older than RESERVATION_TIMEOUT_MS. Every crash point and why it
 * neither loses nor doubles points: docs/architecture.md, "Transfers".
 *
 * On a single-node Redis (TRANSFER_PATH=auto, the default) the three steps run as one script
 * (lua/transfer-14.lua): the debit and the credit together, nothing left pending; a credit it cannot
 * make (the receiver not in Redis yet) stays pending as after a debit alone, and is made here.
 */
import type { Deps } from '../deps.ts';
import { decodeCursor, encodeCursor } from '../db/cursor.ts';
import { offsetMs } from '../engagement/business-day.ts';
import type { EngagementConfig } from '../engagement/config.ts';
import { DomainError } from '../errors/domain-error.ts';
import { keyHash, newOpId, requestHash } from '../points/idempotency.ts';
import type { Op } from '../points/op.ts';
import type { PointsService } from '../points/service.ts';
import { ScriptCode, scriptError } from '../redis/script-codes.ts';
import { isCluster } from '../redis/client.ts';
import { ScriptBatcher, TRANSFER_SCRIPT } from '../redis/script-batch.ts';

/** What a transfer moves, as the debit records it and the credit takes it. */
export interface TransferSpec {
  id: string;
  from: number;
  to: number;
  toUsername: string;
  amount: number;
  /** [expiresAt ms, points]: the sender's consumed lots grouped by expiry, earliest first. */
  parts: Array<[number, number]>;
  /** the debit's time, ms */
  at: number;
  /** the sender's business day the transfer counts on */
  day: number;
  note?: string;
}

/** Both of a transfer's ops carry it. */
export interface TransferOp extends Op {
  transfer?: TransferSpec;
}

export interface TransferInput {
  toUsername: string;
  amount: number;
  note?: string;
}

export interface Transfer {
  transferId: string;
  toUsername: string;
  amount: number;
  available: number;
  createdAt: string;
}

export interface TransferItem {
  transferId: string;
  direction: 'sent' | 'received';
  counterparty: string;
  amount: number;
  note: string | null;
  status: 'pending' | 'completed';
  createdAt: string;
  completedAt: string | null;
}

export interface CompleteCounts {
  /** credits made by this run */
  credited: number;
  /** entries whose credit an earlier attempt had made (found in Redis's record or in the ledger) */
  alreadyCredited: number;
  failed: number;
}

interface Log {
  warn(obj: object, msg: string): void;
}

/** Receivers looked up by username this process keeps (usernames never change, members are never deleted). */
const RECEIVERS_KEPT = 100_000;

export class TransferService {
  /**
   * Test-only clock: when set, scripts take "now" from it instead of Redis TIME (the override
   * every script accepts), and the business day is computed at that instant.
   */
  clock: (() => number) | null = null;
  /** 'atonce': one script per transfer (a single-node Redis); 'saga': debit → credit → done. */
  readonly path: 'atonce' | 'saga';
  /** username → member id of receivers found before (only found ones: a name may be taken later). */
  private readonly receivers = new Map<string, number>();
  /** The at-once transfers of one turn of the event loop, sent as one script call. */
  private readonly batcher?: ScriptBatcher;

  constructor(
    private readonly deps: Deps,
    private readonly points: PointsService,
    private readonly engagement: EngagementConfig,
    private readonly log?: Log,
  ) {
    this.path = deps.env.TRANSFER_PATH === 'saga' || isCluster(deps.redis) ? 'saga' : 'atonce';
    if (this.path === 'atonce') this.batcher = new ScriptBatcher(deps.redis, TRANSFER_SCRIPT, deps.env.SCRIPT_BATCH_MAX);
  }

  async transfer(from: number, input: TransferInput, idempotencyKey: string): Promise<{ transfer: Transfer; replayed: boolean }> {
    const kh = keyHash(idempotencyKey);
    const hash = requestHash('points-transfer', { toUsername: input.toUsername, amount: input.amount, note: input.note ?? null });
    const prior = await this.points.findByKey(from, kh);
    if (prior) {
      if (prior.h !== hash) throw scriptError(ScriptCode.KeyReused);
      return { transfer: await this.replay(prior as TransferOp), replayed: true };
    }
    const to = await this.receiverId(input.toUsername);
    if (to === from) throw new DomainError('TRANSFER_TO_SELF', 'Points cannot be transferred to yourself');
    const { op, replayed, credited } = this.path === 'atonce' ? await this.atOnce(from, to, input, kh, hash) : await this.debit(from, to, input, kh, hash);
    if (replayed) return { transfer: await this.replay(op), replayed };
    if (!credited) {
      try {
        await this.complete(op.transfer!);
      } catch (err) {
        // the debit stands and the transfer is accepted: the completer makes the credit
        this.log?.warn({ err, transferId: op.opId }, 'transfer credit deferred to the completer');
      }
    }
    return { transfer: answerOf(op), replayed: false };
  }

  /** A member who can receive points (has an account), by username; 404 otherwise. */
  private async receiverId(username: string): Promise<number> {
    const known = this.receivers.get(username);
    if (known !== undefined) return known;
    const [row] = await this.deps.sql<Array<{ id: number }>>`
      SELECT u.id FROM users u JOIN point_accounts a ON a.user_id = u.id WHERE u.username = ${username}`;
    if (!row) throw new DomainError('USER_NOT_FOUND', 'No member with that username');
    if (this.receivers.size >= RECEIVERS_KEPT) this.receivers.delete(this.receivers.keys().next().value!);
    this.receivers.set(username, row.id);
    return row.id;
  }

  /**
   * The whole transfer in one script (a single-node Redis): the debit, and the credit when the
   * receiver is in Redis (`credited`); otherwise the credit is pending, as after a debit alone.
   * Gathered with the other transfers of this turn into one call (src/redis/script-batch.ts).
   */
  private async atOnce(from: number, to: number, input: TransferInput, kh: string, hash: string): Promise<{ op: TransferOp; replayed: boolean; credited: boolean }> {
    const { keys, env } = this.deps;
    const now = this.nowArg();
    const id = newOpId();
    const creditKh = creditKeyHash(id);
    const transferKeys = [
      ...this.senderKeys(from, kh),
      keys.account(to),
      keys.lotsByExpiry(to),
      keys.lotRemaining(to),
      keys.idem(to, creditKh),
      keys.outboxOf(to),
      keys.expiryIndexOf(to),
    ];
    const args = [
      ...this.debitArgs(id, from, to, input, kh, hash, now),
      '', // the guard: the sender acts (refused while frozen)
      creditHash(id),
      env.IDEMPOTENCY_TTL_SECONDS,
      now,
      creditKh,
      this.creditMultipliers(),
      to,
    ];
    const reply = await this.points.withHydration(from, () => this.batcher!.run(transferKeys, args));
    const { op, replayed } = this.debited(reply);
    return { op, replayed, credited: Number(reply[3]) === 1 };
  }

  /**
   * The sender's step alone (what an API that died right after it leaves behind): the spend op,
   * and the credit on the pending set.
   */
  async debit(from: number, to: number, input: TransferInput, kh: string, hash: string): Promise<{ op: TransferOp; replayed: boolean; credited: false }> {
    const now = this.nowArg();
    const reply = await this.points.withHydration(from, () =>
      this.deps.redis.pmTransferDebit(...this.senderKeys(from, kh), ...this.debitArgs(newOpId(), from, to, input, kh, hash, now)),
    );
    return { ...this.debited(reply), credited: false };
  }

  /** The debit's keys, in the sender's slot (lua/transfer-debit-8.lua's KEYS). */
  private senderKeys(from: number, kh: string): string[] {
    const { keys } = this.deps;
    return [
      keys.account(from),
      keys.lotsByExpiry(from),
      keys.lotRemaining(from),
      keys.idem(from, kh),
      keys.transferDay(from),
      keys.outboxOf(from),
      keys.transfersPendingOf(from),
      keys.transfersPendingDataOf(from),
    ];
  }

  /** The debit's arguments (lua/transfer-debit-8.lua's ARGV[1..12]; the guard is left out: the sender acts). */
  private debitArgs(id: string, from: number, to: number, input: TransferInput, kh: string, hash: string, now: number | ''): Array<string | number> {
    const { env } = this.deps;
    return [
      id,
      from,
      to,
      input.amount,
      hash,
      env.IDEMPOTENCY_TTL_SECONDS,
      now,
      kh,
      offsetMs(env.BUSINESS_TIMEZONE, now === '' ? Date.now() : now),
      env.TRANSFER_DAILY_MAX,
      input.toUsername,
      input.note ?? '',
    ];
  }

  /** The debit's op from its reply; its refusals thrown. */
  private debited(reply: Array<string | number | null>): { op: TransferOp; replayed: boolean } {
    const { env } = this.deps;
    const code = Number(reply[0]);
    if (code === ScriptCode.TransferLimit) {
      const remainingToday = Number(reply[1]);
      throw new DomainError(
        'TRANSFER_LIMIT_REACHED',
        `Transfers are limited to ${env.TRANSFER_DAILY_MAX} points per day; ${remainingToday} left today`,
        { remainingToday, dailyMax: env.TRANSFER_DAILY_MAX },
      );
    }
    if (code !== 1) throw scriptError(code);
    return { op: JSON.parse(String(reply[1])) as TransferOp, replayed: Number(reply[2]) === 1 };
  }

  /**
   * The receiver's step: the credit, made at most once (a second try replays the first). Returns
   * whether this call made it.
   */
  async credit(t: TransferSpec): Promise<boolean> {
    const { redis, keys, env } = this.deps;
    const kh = creditKeyHash(t.id);
    const reply = await this.points.withHydration(t.to, () =>
      redis.pmTransferCredit(
        keys.account(t.to),
        keys.lotsByExpiry(t.to),
        keys.lotRemaining(t.to),
        keys.idem(t.to, kh),
        keys.outboxOf(t.to),
        keys.expiryIndexOf(t.to),
        JSON.stringify(t),
        creditHash(t.id),
        env.IDEMPOTENCY_TTL_SECONDS,
        this.nowArg(),
        kh,
        this.creditMultipliers(),
        t.to,
      ),
    );
    const code = Number(reply[0]);
    if (code !== 1) throw scriptError(code);
    return Number(reply[2]) === 0;
  }

  /** Credit, then off the pending set: safe to repeat at any point. Returns whether this call credited. */
  async complete(t: TransferSpec): Promise<boolean> {
    const credited = await this.credit(t);
    await this.done(t.from, t.id);
    return credited;
  }

  private done(from: number, id: string): Promise<number> {
    const { redis, keys } = this.deps;
    return redis.pmTransferDone(keys.transfersPendingOf(from), keys.transfersPendingDataOf(from), id);
  }

  /**
   * The completer (sweeper role): credits every transfer debited more than `graceMs` ago and still
   * pending, partition by partition. A credit the ledger already holds was made by an earlier
   * attempt whose idempotency record may be gone: it only leaves the pending set.
   */
  async completePending(graceMs: number, batch = 500): Promise<CompleteCounts> {
    const { redis, keys, sql } = this.deps;
    const now = await this.now();
    const counts: CompleteCounts = { credited: 0, alreadyCredited: 0, failed: 0 };
    for (let p = 0; p < keys.partitions; p++) {
      // entries done leave the set; the ones that failed stay at the front, so the next page skips them
      let skip = 0;
      for (;;) {
        const ids = await redis.zrangebyscore(keys.transfersPending(p), '-inf', now - graceMs, 'LIMIT', skip, batch);
        if (ids.length === 0) break;
        const raws = await redis.hmget(keys.transfersPendingData(p), ...ids);
        const persisted = new Set(
          (await sql<Array<{ bizId: string }>>`
            SELECT biz_id AS "bizId" FROM ledger_entries WHERE op_id = ANY(${ids.map((id) => `${id}-in`)}::text[])`).map((r) => r.bizId),
        );
        for (const [i, id] of ids.entries()) {
          const raw = raws[i];
          try {
            if (raw === null) {
              await redis.pmTransferDone(keys.transfersPending(p), keys.transfersPendingData(p), id);
              continue;
            }
            const t = JSON.parse(raw) as TransferSpec;
            if (persisted.has(id)) {
              await this.done(t.from, id);
              counts.alreadyCredited++;
            } else if (await this.complete(t)) {
              counts.credited++;
            } else {
              counts.alreadyCredited++;
            }
          } catch (err) {
            counts.failed++;
            skip++;
            this.log?.warn({ err, transferId: id }, 'transfer credit failed; retried next run');
          }
        }
        if (ids.length < batch) break;
      }
    }
    return counts;
  }

  /**
   * The answer for an acknowledged transfer; a transfer the client retries while it is still
   * pending is credited now rather than at the completer's next run. A record rebuilt from the
   * ledger (npm run rebuild) carries no transfer: the persisted row has it.
   */
  private async replay(op: TransferOp): Promise<Transfer> {
    if (op.transfer) {
      const { redis, keys } = this.deps;
      if ((await redis.zscore(keys.transfersPendingOf(op.userId), op.opId)) !== null) {
        await this.complete(op.transfer).catch((err) => this.log?.warn({ err, transferId: op.opId }, 'transfer credit deferred to the completer'));
      }
      return answerOf(op);
    }
    const [row] = await this.deps.sql<Array<{ toUsername: string; amount: number; createdAt: Date }>>`
      SELECT u.username AS "toUsername", t.amount, t.created_at AS "createdAt"
      FROM transfers t JOIN users u ON u.id = t.to_user_id WHERE t.id = ${op.opId}`;
    if (!row) throw new Error(`transfer ${op.opId} has a record but no persisted row`);
    return { transferId: op.opId, toUsername: row.toUsername, amount: row.amount, available: op.available, createdAt: row.createdAt.toISOString() };
  }

  /** The member's persisted transfers, sent and received (once credited), newest first. */
  async listOwn(userId: number, limit: number, cursor?: string): Promise<{ items: TransferItem[]; nextCursor: string | null }> {
    const { sql } = this.deps;
    const after = cursor ? decodeCursor(cursor) : null;
    const before = after ? sql`AND (t.created_at, t.id) < (to_timestamp(${after.ms} / 1000.0), ${after.id})` : sql``;
    const rows = await sql<Array<{ id: string; direction: 'sent' | 'received'; counterparty: string; amount: number; note: string | null;
                                   createdAt: Date; completedAt: Date | null }>>`
      SELECT x.id, x.direction, u.username AS counterparty, x.amount, x.note, x.created_at AS "createdAt",
             x.completed_at AS "completedAt"
      FROM (
        (SELECT t.id, 'sent' AS direction, t.to_user_id AS other, t.amount, t.note, t.created_at, t.completed_at
         FROM transfers t WHERE t.from_user_id = ${userId} ${before}
         ORDER BY t.created_at DESC NULLS LAST, t.id DESC NULLS LAST LIMIT ${limit + 1})
        UNION ALL
        (SELECT t.id, 'received', t.from_user_id, t.amount, t.note, t.created_at, t.completed_at
         FROM transfers t WHERE t.to_user_id = ${userId} AND t.completed_at IS NOT NULL ${before}
         ORDER BY t.created_at DESC NULLS LAST, t.id DESC NULLS LAST LIMIT ${limit + 1})
      ) x JOIN users u ON u.id = x.other
      ORDER BY x.created_at DESC, x.id DESC LIMIT ${limit + 1}`;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({
        transferId: r.id,
        direction: r.direction,
        counterparty: r.counterparty,
        amount: r.amount,
        note: r.note,
        status: r.completedAt ? 'completed' : 'pending',
        createdAt: r.createdAt.toISOString(),
        completedAt: r.completedAt?.toISOString() ?? null,
      })),
      nextCursor: rows.length > limit ? encodeCursor(last.createdAt.getTime(), last.id) : null,
    };
  }

  /** A transfer's credit is never multiplied and does not count toward the tier. */
  private creditMultipliers(): string {
    return this.engagement.multipliers('transfer_in', { rule: false, lifetime: false });
  }

  private nowArg(): number | '' {
    return this.clock ? this.clock() : '';
  }

  private async now(): Promise<number> {
    if (this.clock) return this.clock();
    const [sec, usec] = await this.deps.redis.time();
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }
}

/** The receiver's record of a transfer's credit: named by the transfer id, so one credit per transfer. */
export function creditKeyHash(transferId: string): string {
  return keyHash(`transfer-in:${transferId}`, 'sys');
}

function creditHash(transferId: string): string {
  return requestHash('transfer-in', { id: transferId });
}

function answerOf(op: TransferOp): Transfer {
  const t = op.transfer!;
  return { transferId: op.opId, toUsername: t.toUsername, amount: t.amount, available: op.available, createdAt: new Date(op.at).toISOString() };
}
