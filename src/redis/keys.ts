/**
 * The whole Redis key layout. Every key a script touches is built here and passed in KEYS.
 * Hash tags keep each script inside one slot, so the layout works unchanged on Redis Cluster.
 *
 *   User slot  {u<p>}  p = fnv1a(userId) mod PARTITIONS
 *     <P>:{u<p>}:acct:<uid>          hash  avail (spendable, frozen left out), frozen (points of open holds), earned (lifetime), tier,
 *                                    rs, gd, gp, eb, hf:<bizType> (risk: the freeze flag and in-script counters, lua/includes/risk.lua)
 *     <P>:{u<p>}:lotz:<uid>          zset  lotId -> expiresAt ms                 (spend order)
 *     <P>:{u<p>}:loth:<uid>          hash  lotId -> remaining points
 *     <P>:{u<p>}:idem:<uid>:<kh>     string idempotency record of (member, key): the op JSON that key
 *                                    produced (TTL), a sweeper tombstone {kind:'aborted'}, or for a
 *                                    key an admin used on a grant {kind:'claim', h} in the admin's slot.
 *                                    kh = hash of the key; the op id inside is random
 *     <P>:{u<p>}:opref:<uid>:<opId>  string kh of a redemption's record: lookup by id, owner in the name
 *     <P>:{u<p>}:cap:<uid>:<action>  hash day, n, pts (daily earn caps; day from Redis TIME)
 *     <P>:{u<p>}:outbox              stream of ops awaiting persistence (one per partition)
 *     <P>:{u<p>}:draws:<uid>:<lid>   hash  last (ms of the last draw), day, n (draws that business
 *                                    day) of a member in a lottery: cooldown and daily limit
 *     <P>:{u<p>}:expidx              zset  userId -> earliest lot expiry ms (expire job's index)
 *     <P>:{u<p>}:hold:<uid>:<holdId> string JSON of a points hold (pending payment, integrator hold):
 *                                    amount, the lot portions it froze, state frozen|captured|released
 *     <P>:{u<p>}:riskmark:<uid>:<rule> string a blocking rule's event recorded for this window (EX the window)
 *     <P>:{u<p>}:streak:<uid>        hash  last (business day number), streak, longest, result
 *                                    (JSON of the last check-in): the member's check-in state
 *     <P>:{u<p>}:xfer:<uid>          hash  day (business day number), sent (points transferred that
 *                                    day): the sender's daily transfer limit (src/transfers/)
 *     <P>:{u<p>}:exp:<uid>:<key>     string the variant the member was assigned in experiment <key>: a cache
 *                                    of experiment_exposures (Postgres is the truth; TTL, refilled from it)
 *     <P>:{u<p>}:epoch               string on a Redis Cluster, a copy of <P>:epoch per partition: a master
 *                                    flushed without a restart loses its copies (src/recovery/redis-epoch.ts)
 *     <P>:{u<p>}:xferpend            zset  transferId -> debit ms: transfers of senders of this
 *                                    partition debited and not yet credited (the completer's index)
 *     <P>:{u<p>}:xferpend:data       hash  transferId -> the credit to make (JSON: receiver, amount,
 *                                    the source lots' expiries): what the completer needs
 *     <P>:{u<p>}:hotbought:<uid>     hash  goodsId -> units charged, d:<goodsId> -> "<business day>:<units>":
 *                                    the member's counts for hot (bucketed) goods, checked and raised by
 *                                    the charge itself (lua/hot-charge-7.lua), so the limit is exact;
 *                                    r:<opId> -> units, a refunded redemption already taken off (once)
 *   Goods slot {g<id>}
 *     <P>:{g<id>}:goods              hash  stock, price, limit, daily (units per member per business
 *                                    day, 0 none), dyn (dynamic pricing 1|0), startsAt, endsAt,
 *                                    active, stocked (Postgres total_stock the live stock counts;
 *                                    lua/restock-1.lua)
 *     <P>:{g<id>}:bought             hash  userId -> units bought or reserved
 *     <P>:{g<id>}:daily              hash  userId -> "<business day>:<units>" bought or reserved that
 *                                    day (goods with a daily limit; another day's count reads as 0)
 *     <P>:{g<id>}:res                hash  "<userId>:<keyHash>" -> reservation JSON
 *     <P>:{g<id>}:resdl              zset  "<userId>:<keyHash>" -> reservation deadline ms
 *     <P>:{g<id>}:taken              hash  orderId -> JSON {u, q, p, dy}: units an order took
 *                                    (lua/take-4.lua) until it gives them back; counted as sold
 *     <P>:{g<id>}:returned           hash  redemption op id -> units returned by its refund (once)
 *     <P>:{g<id>}:pulse:<sec>        hash  a, r: redemptions accepted / refused in that Unix second, as
 *                                    counted by the API processes (src/ops/sale-pulse.ts; EX 120)
 *     (hot goods, goods.hot_buckets = B > 0: the goods hash also has hot = B and its stock stays 0;
 *     the units live in the buckets below, and bought/daily counts in the member's slot)
 *   Goods bucket slot {g<id>:b<k>}  k = 0..B-1 (src/goods/bucket-stock.ts, src/redemptions/hot-stock.ts)
 *     <P>:{g<id>:b<k>}:goods         hash  the bucket's stock and stocked (its share of the stocked total:
 *                                    floor(total / B) plus 1 for k < total mod B), and a copy of the
 *                                    sale settings (price, limit, daily, dyn, startsAt, endsAt, active)
 *     <P>:{g<id>:b<k>}:res           hash  "<userId>:<keyHash>" -> reservation JSON (as {g<id>}:res)
 *     <P>:{g<id>:b<k>}:resdl         zset  "<userId>:<keyHash>" -> reservation deadline ms (sweeper)
 *     <P>:{g<id>:b<k>}:returned      hash  redemption op id -> units its refund returned here (once; the
 *                                    bucket of an op id is fnv1a(opId) mod B, lua/hot-return-2.lua)
 *   Lottery slot {l<id>}  (src/lottery/)
 *     <P>:{l<id>}:lottery            hash  version, active, startsAt, endsAt, cost, cooldownMs, daily,
 *                                    prizes (JSON: the prizes in the draw, with weights)
 *     <P>:{l<id>}:stock              hash  <prizeId> -> units left, stocked:<prizeId> -> units
 *                                    allocated that count (limited prizes only)
 *     <P>:{l<id>}:holds              hash  "<userId>:<keyHash>" -> prize hold JSON (a draw between
 *                                    its reserve and its charge)
 *     <P>:{l<id>}:holddl             zset  "<userId>:<keyHash>" -> hold deadline ms (sweeper)
 *   Hot goods {hot}  (src/goods/hot.ts; replaced whole by the catalog role, derived from Postgres)
 *     <P>:{hot}:goods                zset  goodsId -> redemptions in the last 7 days (the top items)
 *     <P>:{hot}:items                hash  goodsId -> JSON of the item as listed; `at` -> ms of the run
 *   Recommendations {reco}  (src/recommendations/model.ts; derived data, built whole by the recommend
 *   role from Postgres; <b> = a build id. Readers follow `current`; a build's keys are deleted once
 *   two newer builds exist, so a read that began on the previous build still finds it)
 *     <P>:{reco}:current             string the build id requests read
 *     <P>:{reco}:fresh               string catalog redemptions persisted since the last build began
 *                                    (INCRBY by the persist worker; the recommend role rebuilds past
 *                                    RECOMMEND_AFTER_REDEMPTIONS)
 *     <P>:{reco}:<b>:meta            hash  builtAt, prev (the build before), bands (JSON), members, goods, redemptions
 *     <P>:{reco}:<b>:items           hash  goodsId -> JSON of the item as listed (live stock and price left out)
 *     <P>:{reco}:<b>:prices          zset  goodsId -> list price (the points-window candidates)
 *     <P>:{reco}:<b>:vectors         hash  goodsId -> JSON {c: categoryId, v: TF-IDF vector [[term, weight], …]}
 *     <P>:{reco}:<b>:band:<n>        hash  goodsId -> JSON [[goodsId, co-occurrence], …] and n:<goodsId> -> members,
 *                                    among members whose balance is in band n (src/recommendations/scoring.ts)
 *     <P>:{reco}:<b>:members         hash  userId -> JSON {h: distinct goods redeemed, most recent first, bal: balance}
 *     <P>:{reco}:<b>:popular         zset  goodsId -> catalog redemptions in the last 7 days (src/goods/popularity.ts)
 *   Leaderboards {lb}
 *     <P>:{lb}:<period>:<bucket>     zset  userId -> points
 *     <P>:{lb}:applied:<p>           zset  outbox stream id -> its ms: earn entries of partition p
 *                                    already on the boards and still pending in the relay group
 *                                    (trimmed below the oldest pending entry, so in-flight only)
 *   Global (single-key commands only)
 *     <P>:auth:login:ip:<ip>         zset  attempt id -> ms: failed logins from an IP in the window
 *                                    (plus attempts still being checked); src/auth/attempts.ts
 *     <P>:auth:login:acct:<h>        zset  the same per account, h = sha256(lower-cased email) 32 hex
 *                                    (no addresses in key names)
 *     <P>:auth:register:ip:<ip>      zset  attempt id -> ms: registrations from an IP in the window
 *     <P>:auth:login:burst:<who>:<w> string failed logins of one account (who = acct:<h>) or IP (ip:<ip>)
 *                                    in the fixed window w (EX two windows); the one that reaches the
 *                                    burst threshold writes the window's audit row (src/audit/security.ts)
 *     <P>:goods:index                set   goods ids with Redis state (sweeper walks it)
 *     <P>:lottery:index              set   lottery ids with Redis state (sweeper, rebuild)
 *     <P>:lock:<task>                string holder token: one run of a scheduled task at a time
 *     <P>:reconcile:last             string JSON summary of the last reconcile run
 *     <P>:reconcile:totals           hash  runs, drifting, stockDrift, negative since the start
 *     <P>:metrics:business           string JSON business snapshot of the metrics role (src/metrics/business.ts)
 *     <P>:maintenance                string set while an admin rebuild runs: API refuses writes
 *     <P>:epoch                      string the Redis lifetime verified against Postgres (redis_epochs):
 *                                    writers serve only while it and Redis's run_id match the record
 *     <P>:q                           BullMQ prefix (on a Redis Cluster <P>:{q:<queue>}, one hash tag per queue)
 */
import { createHash } from 'node:crypto';

import { dayNumber } from '../engagement/business-day.ts';

export interface KeysOptions {
  prefix: string;
  partitions: number;
  /** On a Redis Cluster each BullMQ queue's prefix carries its own hash tag (see queuePrefix). */
  cluster?: boolean;
}

/** FNV-1a 32-bit: stable across processes and languages, cheap. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export type Period = 'daily' | 'weekly' | 'monthly' | 'all';
export const PERIODS: readonly Period[] = ['daily', 'weekly', 'monthly', 'all'];

export function createKeys({ prefix, partitions, cluster = false }: KeysOptions) {
  const partitionOf = (userId: number | string) => fnv1a(String(userId)) % partitions;
  const u = (userId: number | string) => `${prefix}:{u${partitionOf(userId)}}`;
  const g = (goodsId: number | string) => `${prefix}:{g${goodsId}}`;
  const l = (lotteryId: number | string) => `${prefix}:{l${lotteryId}}`;
  return {
    prefix,
    partitions,
    partitionOf,
    account: (uid: number | string) => `${u(uid)}:acct:${uid}`,
    lotsByExpiry: (uid: number | string) => `${u(uid)}:lotz:${uid}`,
    lotRemaining: (uid: number | string) => `${u(uid)}:loth:${uid}`,
    idem: (uid: number | string, keyHash: string) => `${u(uid)}:idem:${uid}:${keyHash}`,
    opRef: (uid: number | string, opId: string) => `${u(uid)}:opref:${uid}:${opId}`,
    dailyCap: (uid: number | string, action: string) => `${u(uid)}:cap:${uid}:${action}`,
    streak: (uid: number | string) => `${u(uid)}:streak:${uid}`,
    hold: (uid: number | string, holdId: string) => `${u(uid)}:hold:${uid}:${holdId}`,
    riskMark: (uid: number | string, rule: string) => `${u(uid)}:riskmark:${uid}:${rule}`,
    experimentAssignment: (uid: number | string, experimentKey: string) => `${u(uid)}:exp:${uid}:${experimentKey}`,
    transferDay: (uid: number | string) => `${u(uid)}:xfer:${uid}`,
    transfersPending: (partition: number) => `${prefix}:{u${partition}}:xferpend`,
    transfersPendingOf: (uid: number | string) => `${u(uid)}:xferpend`,
    transfersPendingData: (partition: number) => `${prefix}:{u${partition}}:xferpend:data`,
    transfersPendingDataOf: (uid: number | string) => `${u(uid)}:xferpend:data`,
    outbox: (partition: number) => `${prefix}:{u${partition}}:outbox`,
    outboxOf: (uid: number | string) => `${u(uid)}:outbox`,
    expiryIndex: (partition: number) => `${prefix}:{u${partition}}:expidx`,
    expiryIndexOf: (uid: number | string) => `${u(uid)}:expidx`,
    goods: (gid: number | string) => `${g(gid)}:goods`,
    bought: (gid: number | string) => `${g(gid)}:bought`,
    reservations: (gid: number | string) => `${g(gid)}:res`,
    reservationDeadlines: (gid: number | string) => `${g(gid)}:resdl`,
    ordersTaken: (gid: number | string) => `${g(gid)}:taken`,
    returnedRedemptions: (gid: number | string) => `${g(gid)}:returned`,
    dailyBought: (gid: number | string) => `${g(gid)}:daily`,
    salePulse: (gid: number | string, second: number) => `${g(gid)}:pulse:${second}`,
    bucket: (gid: number | string, k: number) => `${prefix}:{g${gid}:b${k}}:goods`,
    bucketReservations: (gid: number | string, k: number) => `${prefix}:{g${gid}:b${k}}:res`,
    bucketDeadlines: (gid: number | string, k: number) => `${prefix}:{g${gid}:b${k}}:resdl`,
    bucketReturned: (gid: number | string, k: number) => `${prefix}:{g${gid}:b${k}}:returned`,
    hotBought: (uid: number | string) => `${u(uid)}:hotbought:${uid}`,
    hotGoods: () => `${prefix}:{hot}:goods`,
    hotItems: () => `${prefix}:{hot}:items`,
    drawState: (uid: number | string, lid: number | string) => `${u(uid)}:draws:${uid}:${lid}`,
    lottery: (lid: number | string) => `${l(lid)}:lottery`,
    lotteryStock: (lid: number | string) => `${l(lid)}:stock`,
    lotteryHolds: (lid: number | string) => `${l(lid)}:holds`,
    lotteryHoldDeadlines: (lid: number | string) => `${l(lid)}:holddl`,
    lotteryIndex: () => `${prefix}:lottery:index`,
    recoCurrent: () => `${prefix}:{reco}:current`,
    recoFresh: () => `${prefix}:{reco}:fresh`,
    recoMeta: (build: string) => `${prefix}:{reco}:${build}:meta`,
    recoItems: (build: string) => `${prefix}:{reco}:${build}:items`,
    recoPrices: (build: string) => `${prefix}:{reco}:${build}:prices`,
    recoVectors: (build: string) => `${prefix}:{reco}:${build}:vectors`,
    recoBand: (build: string, band: number) => `${prefix}:{reco}:${build}:band:${band}`,
    recoMembers: (build: string) => `${prefix}:{reco}:${build}:members`,
    recoPopular: (build: string) => `${prefix}:{reco}:${build}:popular`,
    board: (period: Period, bucket: string) => `${prefix}:{lb}:${period}:${bucket}`,
    boardApplied: (partition: number) => `${prefix}:{lb}:applied:${partition}`,
    loginFailsByIp: (ip: string) => `${prefix}:auth:login:ip:${ip}`,
    loginFailsByAccount: (email: string) =>
      `${prefix}:auth:login:acct:${createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 32)}`,
    registrationsByIp: (ip: string) => `${prefix}:auth:register:ip:${ip}`,
    loginBurst: (who: { ip: string } | { email: string }, window: number) =>
      'ip' in who
        ? `${prefix}:auth:login:burst:ip:${who.ip}:${window}`
        : `${prefix}:auth:login:burst:acct:${createHash('sha256').update(who.email.toLowerCase()).digest('hex').slice(0, 32)}:${window}`,
    goodsIndex: () => `${prefix}:goods:index`,
    taskLock: (task: string) => `${prefix}:lock:${task}`,
    reconcileReport: () => `${prefix}:reconcile:last`,
    reconcileTotals: () => `${prefix}:reconcile:totals`,
    businessSnapshot: () => `${prefix}:metrics:business`,
    maintenance: () => `${prefix}:maintenance`,
    epoch: () => `${prefix}:epoch`,
    /** the epoch's copy in partition p's slot (a cluster keeps one per partition: redis-epoch.ts) */
    epochOf: (partition: number) => `${prefix}:{u${partition}}:epoch`,
    /**
     * BullMQ's prefix for `queue`. BullMQ's scripts touch many keys of one queue, so on a cluster
     * the prefix is a hash tag, one per queue so queues spread over the masters; a single Redis
     * keeps the untagged prefix it always had (jobs queued before an upgrade stay where they are).
     */
    queuePrefix: (queue: string) => (cluster ? `${prefix}:{q:${queue}}` : `${prefix}:q`),
  };
}

export type Keys = ReturnType<typeof createKeys>;

/**
 * Period bucket names of an instant, by the business calendar (BUSINESS_TIMEZONE): daily 20261122,
 * weekly 2026W47 (ISO week: Monday to Sunday), monthly 202611.
 */
export function periodBuckets(ms: number, timeZone = 'UTC'): Record<Period, string> {
  // the business date, as a UTC midnight: calendar arithmetic below is then plain UTC
  const d = new Date(dayNumber(timeZone, ms) * 86_400_000);
  const y = d.getUTCFullYear();
  const m = String(d.getUTCMonth() + 1).padStart(2, '0');
  const day = String(d.getUTCDate()).padStart(2, '0');
  const t = new Date(d.getTime());
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow);
  const isoYear = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(isoYear, 0, 1)) / 86_400_000 + 1) / 7);
  return {
    daily: `${y}${m}${day}`,
    weekly: `${isoYear}W${String(week).padStart(2, '0')}`,
    monthly: `${y}${m}`,
    all: 'all',
  };
}

/**
 * How long a period board is kept after its last write: long enough for the history endpoint
 * (GET /v1/leaderboards/:period/me/history looks back up to 31 days) to find every bucket.
 */
export const BOARD_TTL_S: Record<Exclude<Period, 'all'>, number> = {
  daily: 33 * 86_400,
  weekly: 40 * 86_400,
  monthly: 64 * 86_400,
};
