/**
 * Direct callers of the Lua scripts for test/lua/*: one Redis connection and one key prefix per
 * file, typed wrappers that pass every argument explicitly (always with a fake "now"), and
 * snapshot helpers to prove a refused call wrote nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/redis/client.ts';
import { createKeys, type Keys } from '../../src/redis/keys.ts';
import { REDIS_URL } from '../support/urls.ts';
import { deleteKeys } from '../../src/redis/delete-prefix.ts';

export type Reply = Array<string | number | null>;

export const SEC = 1000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
/** The fake clock's origin: 2026-03-10T12:00:00Z (mid-day UTC, so day boundaries are explicit). */
export const T0 = Date.UTC(2026, 2, 10, 12, 0, 0);
export const OP_TTL_S = 30 * 86_400;

export interface LuaEnv {
  redis: Redis;
  keys: Keys;
  prefix: string;
  close(): Promise<void>;
}

export function luaEnv(): LuaEnv {
  const prefix = `pmlua${randomBytes(4).toString('hex')}`;
  const redis = createRedis(REDIS_URL, 'worker');
  const keys = createKeys({ prefix, partitions: 16 });
  return {
    redis,
    keys,
    prefix,
    async close() {
      await deleteKeys(redis, prefix);
      redis.disconnect();
    },
  };
}

export interface EarnArgs {
  uid: number;
  opId: string;
  points: number;
  lifetimeMs: number;
  now: number;
  hash?: string;
  bizType?: string;
  bizId?: string;
  capCount?: number;
  capPoints?: number;
  ttlS?: number;
  extra?: Record<string, unknown>;
  /** Key hash naming the idempotency record; the op id by default. */
  kh?: string;
  /** Business-day offset ms (0 = UTC days). */
  dayOffsetMs?: number;
  /** Multiplier spec (lua/includes/credit.lua); none by default. */
  multipliers?: Record<string, unknown>;
}

/** No tier, no campaign: credits what they are given; counts toward the tier. */
export const PLAIN_MULTIPLIERS = { tiers: [0], earn: [1000], applyTier: 0, campaign: 1000, lifetime: 1 };

export function earn(redis: Redis, keys: Keys, a: EarnArgs): Promise<Reply> {
  const bizType = a.bizType ?? 'grant';
  return redis.pmEarn(
    keys.account(a.uid),
    keys.lotsByExpiry(a.uid),
    keys.lotRemaining(a.uid),
    keys.idem(a.uid, a.kh ?? a.opId),
    keys.dailyCap(a.uid, bizType),
    keys.outboxOf(a.uid),
    keys.expiryIndexOf(a.uid),
    a.opId,
    a.uid,
    a.points,
    bizType,
    a.bizId ?? '7',
    a.capCount ?? 0,
    a.capPoints ?? 0,
    a.lifetimeMs,
    a.hash ?? `h-${a.opId}`,
    a.ttlS ?? OP_TTL_S,
    a.now,
    JSON.stringify(a.extra ?? {}),
    a.kh ?? a.opId,
    a.dayOffsetMs ?? 0,
    JSON.stringify(a.multipliers ?? PLAIN_MULTIPLIERS),
  );
}

export interface ChargeArgs {
  uid: number;
  opId: string;
  amount: number;
  now: number;
  token: string;
  hash?: string;
  ttlS?: number;
  extra?: Record<string, unknown>;
  kh?: string;
}

export function charge(redis: Redis, keys: Keys, a: ChargeArgs): Promise<Reply> {
  return redis.pmCharge(
    keys.account(a.uid),
    keys.lotsByExpiry(a.uid),
    keys.lotRemaining(a.uid),
    keys.idem(a.uid, a.kh ?? a.opId),
    keys.opRef(a.uid, a.opId),
    keys.outboxOf(a.uid),
    a.opId,
    a.uid,
    a.amount,
    a.hash ?? `h-${a.opId}`,
    a.ttlS ?? OP_TTL_S,
    a.now,
    a.token,
    JSON.stringify(a.extra ?? {}),
    a.kh ?? a.opId,
  );
}

export function abort(redis: Redis, keys: Keys, uid: number, opId: string, token: string, ttlS = OP_TTL_S): Promise<Reply> {
  return redis.pmAbort(keys.idem(uid, opId), token, ttlS);
}

export interface ReserveArgs {
  gid: number | string;
  opId: string;
  uid: number;
  qty: number;
  now: number;
  token: string;
  hash?: string;
  timeoutMs?: number;
  kh?: string;
  /** Tier price factor per mille (1000 = list price). */
  priceFactor?: number;
  /** Goods campaign discount per mille (1000 = none). */
  campaignDiscount?: number;
  /** Business-day offset ms (the daily limit's calendar). */
  dayOffsetMs?: number;
  /** The unit price the caller expects (undefined: no check). */
  expectedPrice?: number;
}

export function reserve(redis: Redis, keys: Keys, a: ReserveArgs): Promise<Reply> {
  return redis.pmReserve(
    keys.goods(a.gid),
    keys.bought(a.gid),
    keys.reservations(a.gid),
    keys.reservationDeadlines(a.gid),
    keys.dailyBought(a.gid),
    a.opId,
    a.uid,
    a.qty,
    a.hash ?? `h-${a.opId}`,
    a.timeoutMs ?? 30_000,
    a.now,
    a.token,
    a.kh ?? a.opId,
    a.priceFactor ?? 1000,
    a.campaignDiscount ?? 1000,
    a.dayOffsetMs ?? 0,
    a.expectedPrice ?? '',
  );
}

export interface RedeemArgs extends ReserveArgs {
  extra?: Record<string, unknown>;
  ttlS?: number;
  /** The tier table (lua/redeem-9.lua): minPoints and price per mille, ascending. */
  tiers?: { min: number[]; pm: number[] };
}

/** A whole redemption in one script (lua/redeem-9.lua, a single-node Redis). */
export function redeemAtOnce(redis: Redis, keys: Keys, a: RedeemArgs): Promise<Reply> {
  return redis.pmRedeem(
    keys.goods(a.gid),
    keys.bought(a.gid),
    keys.dailyBought(a.gid),
    keys.account(a.uid),
    keys.lotsByExpiry(a.uid),
    keys.lotRemaining(a.uid),
    keys.idem(a.uid, a.kh ?? a.opId),
    keys.opRef(a.uid, a.opId),
    keys.outboxOf(a.uid),
    a.opId,
    a.uid,
    a.qty,
    a.hash ?? `h-${a.opId}`,
    a.ttlS ?? OP_TTL_S,
    a.now,
    a.token,
    a.kh ?? a.opId,
    JSON.stringify(a.tiers ?? { min: [0], pm: [a.priceFactor ?? 1000] }),
    a.campaignDiscount ?? 1000,
    a.dayOffsetMs ?? 0,
    a.expectedPrice ?? '',
    JSON.stringify(a.extra ?? {}),
  );
}

/** The hold (reservations hash field, "<userId>:<keyHash>") whose op id is opId, or a name no hold has. */
export async function holdOf(redis: Redis, keys: Keys, gid: number | string, opId: string): Promise<string> {
  const holds = await redis.hgetall(keys.reservations(gid));
  const found = Object.entries(holds).find(([, raw]) => (JSON.parse(raw) as { o: string }).o === opId);
  return found ? found[0] : `none:${opId}`;
}

export async function confirm(redis: Redis, keys: Keys, gid: number | string, opId: string, token: string): Promise<number> {
  return redis.pmConfirm(keys.reservations(gid), keys.reservationDeadlines(gid), await holdOf(redis, keys, gid, opId), token);
}

export async function release(redis: Redis, keys: Keys, gid: number | string, opId: string, token: string): Promise<number> {
  const hold = await holdOf(redis, keys, gid, opId);
  return redis.pmRelease(keys.goods(gid), keys.bought(gid), keys.reservations(gid), keys.reservationDeadlines(gid), keys.dailyBought(gid), hold, token);
}

export interface GoodsArgs {
  price: number;
  limit?: number;
  startsAt?: number;
  endsAt?: number;
  active?: boolean;
  stock: number;
  dailyLimit?: number;
  dynamic?: boolean;
}

export function goodsSet(redis: Redis, keys: Keys, gid: number | string, g: GoodsArgs): Promise<number> {
  return redis.pmGoodsSet(
    keys.goods(gid),
    g.price,
    g.limit ?? 0,
    g.startsAt ?? 0,
    g.endsAt ?? 0,
    g.active === false ? 0 : 1,
    g.stock,
    g.dailyLimit ?? 0,
    g.dynamic ? 1 : 0,
  );
}

export interface LotSpec {
  id: string;
  remaining: number;
  expiresAt: number;
}

export function hydrate(redis: Redis, keys: Keys, uid: number, avail: number, earned: number, lots: LotSpec[] = []): Promise<number> {
  const args: Array<string | number> = [uid, avail, earned, 0, 0, ''];
  for (const l of lots) args.push(l.id, l.remaining, l.expiresAt);
  return redis.pmHydrate(keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), keys.expiryIndexOf(uid), ...args);
}

/** Hydrates an account whose avail and earned are the sum of its lots. */
export function hydrateLots(redis: Redis, keys: Keys, uid: number, lots: LotSpec[]): Promise<number> {
  const sum = lots.reduce((s, l) => s + l.remaining, 0);
  return hydrate(redis, keys, uid, sum, sum, lots);
}

export function balance(redis: Redis, keys: Keys, uid: number, horizonMs: number, now: number): Promise<Reply> {
  return redis.pmBalance(keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), horizonMs, now);
}

export interface UserState {
  acct: Record<string, string>;
  /** lotId -> [remaining, expiresAt], from loth and lotz together */
  lots: Record<string, [number | null, number | null]>;
  outboxLen: number;
}

export async function userState(redis: Redis, keys: Keys, uid: number): Promise<UserState> {
  const [acct, loth, lotz, outboxLen] = await Promise.all([
    redis.hgetall(keys.account(uid)),
    redis.hgetall(keys.lotRemaining(uid)),
    redis.zrange(keys.lotsByExpiry(uid), 0, -1, 'WITHSCORES'),
    redis.xlen(keys.outboxOf(uid)),
  ]);
  const lots: UserState['lots'] = {};
  for (const [id, rem] of Object.entries(loth)) lots[id] = [Number(rem), null];
  for (let i = 0; i < lotz.length; i += 2) {
    const id = lotz[i];
    lots[id] = [lots[id]?.[0] ?? null, Number(lotz[i + 1])];
  }
  return { acct, lots, outboxLen };
}

export interface GoodsState {
  goods: Record<string, string>;
  bought: Record<string, string>;
  reservations: Record<string, string>;
  deadlines: string[];
}

export async function goodsState(redis: Redis, keys: Keys, gid: number | string): Promise<GoodsState> {
  const [goods, bought, reservations, deadlines] = await Promise.all([
    redis.hgetall(keys.goods(gid)),
    redis.hgetall(keys.bought(gid)),
    redis.hgetall(keys.reservations(gid)),
    redis.zrange(keys.reservationDeadlines(gid), 0, -1, 'WITHSCORES'),
  ]);
  return { goods, bought, reservations, deadlines };
}

/** Every key under this file's prefix (sorted), to prove a refused call created nothing. */
export async function allKeys(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    out.push(...found);
  } while (cursor !== '0');
  return out.sort();
}

/** A DUMP of each key (values and, via PTTL, expiries), to prove a refused call changed nothing. */
export async function dumpKeys(redis: Redis, keyList: string[]): Promise<Record<string, [string | null, number]>> {
  const out: Record<string, [string | null, number]> = {};
  for (const k of keyList) {
    const [dump, pttl] = await Promise.all([redis.dumpBuffer(k), redis.pttl(k)]);
    out[k] = [dump ? dump.toString('base64') : null, pttl > 0 ? 1 : pttl];
  }
  return out;
}

export function parse(json: unknown): Record<string, unknown> {
  return JSON.parse(String(json)) as Record<string, unknown>;
}

let seq = 0;
/** Unique small ids within a file (members, goods, ops). */
export function nextId(): number {
  return ++seq;
}

/** Every key under the prefix with its DUMP and whether it has a TTL: equal before and after = nothing written. */
export async function snapshot(redis: Redis, prefix: string) {
  return dumpKeys(redis, await allKeys(redis, prefix));
}
