/**
 * Postgres: the durable record. Redis holds the live balances and stock; these tables are written
 * by the persist workers (ledger, lots, accounts, redemptions, audit) idempotently on op_id, and
 * directly by the API for users, goods and rules.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  customType,
  date,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const num = (name: string) => bigint(name, { mode: 'number' });
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const users = pgTable(
  'users',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    username: text('username').notNull(),
    email: text('email').notNull(),
    passwordHash: text('password_hash').notNull(),
    role: text('role', { enum: ['member', 'admin'] }).notNull().default('member'),
    // risk control (src/risk/): the record of the freeze the scripts enforce from the member's slot
    riskStatus: text('risk_status', { enum: ['normal', 'flagged', 'frozen'] }).notNull().default('normal'),
    // where the account was registered from (IP_MULTI_ACCOUNT)
    signupIp: text('signup_ip'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('users_email_key').on(t.email),
    uniqueIndex('users_username_key').on(t.username),
    // admin member search: case-insensitive prefix of username or email (src/members/)
    index('users_username_search').using('btree', sql`lower(${t.username}) text_pattern_ops`),
    index('users_email_search').using('btree', sql`lower(${t.email}) text_pattern_ops`),
    index('users_signup_ip').on(t.signupIp, t.createdAt).where(sql`signup_ip IS NOT NULL`),
    index('users_risk').on(t.riskStatus).where(sql`risk_status <> 'normal'`),
    // analytics: sign-ups per day
    index('users_created_brin').using('brin', t.createdAt),
  ],
);

export const pointAccounts = pgTable('point_accounts', {
  userId: num('user_id').primaryKey().references(() => users.id),
  available: num('available').notNull().default(0),
  // lifetime earned that sets the tier (refunds and transfers received do not count)
  totalEarned: num('total_earned').notNull().default(0),
  // index into tiers (by position); only goes up
  tier: integer('tier').notNull().default(0),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const pointLots = pgTable(
  'point_lots',
  {
    id: text('id').primaryKey(),
    userId: num('user_id').notNull(),
    amount: num('amount').notNull(),
    remaining: num('remaining').notNull(),
    expiresAt: ts('expires_at').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('point_lots_user_expiry').on(t.userId, t.expiresAt)],
);

export const ledgerEntries = pgTable(
  'ledger_entries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    opId: text('op_id').notNull(),
    userId: num('user_id').notNull(),
    delta: num('delta').notNull(),
    balanceAfter: num('balance_after').notNull(),
    kind: text('kind', { enum: ['earn', 'spend', 'expire', 'refund', 'adjust', 'freeze', 'unfreeze'] }).notNull(),
    bizType: text('biz_type').notNull(),
    bizId: text('biz_id'),
    // the request hash of the op, so a rebuilt Redis can answer retries of acknowledged ops
    requestHash: text('request_hash'),
    // hash of the Idempotency-Key that produced the op, so a rebuilt Redis restores its record
    idemKey: text('idem_key'),
    createdAt: ts('created_at').notNull(),
    persistedAt: ts('persisted_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('ledger_entries_op_id_key').on(t.opId),
    index('ledger_entries_user_time').on(t.userId, t.createdAt.desc(), t.id.desc()),
    // analytics rollups and exports read the ledger by time range. Rows arrive roughly in time
    // order, so a BRIN index finds a day's pages at a fraction of a btree's size and insert cost.
    index('ledger_entries_created_brin').using('brin', t.createdAt),
  ],
);

/** A full-text search document (Postgres tsvector). */
const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

/** Catalog categories (admin CRUD); goods point at one or none. */
export const categories = pgTable(
  'categories',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    slug: text('slug').notNull(),
    position: integer('position').notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('categories_slug_key').on(t.slug), index('categories_position').on(t.position, t.id)],
);

/**
 * The catalog. `search_text` is the lower-cased name, description and tags, written with them by
 * the goods service; `search` is its full-text document (generated). Partial words are found
 * through a trigram index on `search_text` (pg_trgm), which the migration creates by hand after
 * the extension: drizzle-kit knows neither.
 */
export const goods = pgTable(
  'goods',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    categoryId: integer('category_id').references(() => categories.id),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    imageUrl: text('image_url'),
    type: text('type', { enum: ['physical', 'virtual', 'coupon', 'vip'] }).notNull(),
    pointsPrice: num('points_price').notNull(),
    // minor units of the currency; null: not sold for cash
    cashPrice: num('cash_price'),
    totalStock: num('total_stock').notNull(),
    perUserLimit: integer('per_user_limit'),
    // units per member per business day (BUSINESS_TIMEZONE); null: no daily limit
    dailyLimit: integer('daily_limit'),
    // price moves with tier, goods campaigns and stock (lua/includes/sale.lua)
    dynamicPricing: boolean('dynamic_pricing').notNull().default(false),
    // hot item: its live stock is split over this many bucket slots (0 = off, else 2..64; src/goods/bucket-stock.ts)
    hotBuckets: integer('hot_buckets').notNull().default(0),
    // type settings: coupon goods only / vip goods only
    couponValidDays: integer('coupon_valid_days'),
    vipDays: integer('vip_days'),
    startsAt: ts('starts_at'),
    endsAt: ts('ends_at'),
    active: boolean('active').notNull().default(true),
    searchText: text('search_text').notNull().default(''),
    search: tsvector('search').generatedAlwaysAs(sql`to_tsvector('simple'::regconfig, search_text)`),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('goods_category_id').on(t.categoryId, t.id),
    index('goods_price_id').on(t.pointsPrice, t.id),
    index('goods_search').using('gin', t.search),
    index('goods_tags').using('gin', t.tags),
    check('goods_hot_buckets_range', sql`${t.hotBuckets} = 0 OR ${t.hotBuckets} BETWEEN 2 AND 64`),
  ],
);

export const redemptions = pgTable(
  'redemptions',
  {
    id: text('id').primaryKey(),
    opId: text('op_id').notNull(),
    exchangeNo: text('exchange_no').notNull(),
    userId: num('user_id').notNull(),
    goodsId: num('goods_id').notNull(),
    quantity: integer('quantity').notNull(),
    pointsSpent: num('points_spent').notNull(),
    status: text('status', { enum: ['confirmed', 'fulfilled', 'cancelled'] }).notNull().default('confirmed'),
    // 'order': bought from the catalog (counts against goods stock and the per-member limit);
    // 'lottery': a goods prize won in a draw, out of the prize's own stock (src/lottery/)
    source: text('source', { enum: ['order', 'lottery'] }).notNull().default('order'),
    // the lot portions the charge spent ([lotId, points, expiresAt]): what a refund gives back
    lots: jsonb('lots'),
    createdAt: ts('created_at').notNull(),
  },
  (t) => [
    // a redemption's id is its op id: the primary key is the idempotency index (a unique index
    // on op_id as well cost each persisted redemption an index insert), and rows are found by id
    check('redemptions_op_id_is_id', sql`${t.opId} = ${t.id}`),
    uniqueIndex('redemptions_exchange_no_key').on(t.exchangeNo),
    index('redemptions_user_time').on(t.userId, t.createdAt.desc(), t.id.desc()),
    // popularity: redemptions of an item in the last 7 days (src/goods/popularity.ts); its leading
    // column also serves every lookup by goods_id alone (a separate goods_id index cost each insert)
    index('redemptions_goods_time').on(t.goodsId, t.createdAt),
    // analytics rollups and exports by time range (see ledger_entries_created_brin)
    index('redemptions_created_brin').using('brin', t.createdAt),
  ],
);

export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    opId: text('op_id'),
    actorId: num('actor_id'),
    action: text('action').notNull(),
    targetType: text('target_type').notNull(),
    targetId: text('target_id').notNull(),
    data: jsonb('data').notNull().default(sql`'{}'::jsonb`),
    // where an admin's or a visitor's request came from (null for workers and the CLI)
    ip: text('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('audit_log_op_id_key').on(t.opId),
    // GET /v1/admin/audit pages by id descending, filtered by actor or action; retention by time
    index('audit_log_actor').on(t.actorId, t.id),
    index('audit_log_action').on(t.action, t.id),
    index('audit_log_created').on(t.createdAt),
  ],
);

export const earnRules = pgTable('earn_rules', {
  id: serial('id').primaryKey(),
  action: text('action').notNull().unique(),
  points: integer('points').notNull(),
  dailyCapCount: integer('daily_cap_count').notNull().default(0),
  dailyCapPoints: integer('daily_cap_points').notNull().default(0),
  expiryDays: integer('expiry_days').notNull().default(365),
  trigger: text('trigger', { enum: ['signup', 'action', 'system'] }).notNull().default('action'),
  enabled: boolean('enabled').notNull().default(true),
});

export const devices = pgTable(
  'devices',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: num('user_id').notNull(),
    platform: text('platform', { enum: ['ios', 'android', 'web'] }).notNull(),
    token: text('token').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('devices_platform_token_key').on(t.platform, t.token), index('devices_user').on(t.userId)],
);

export const pushRecords = pgTable(
  'push_records',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: num('user_id').notNull(),
    deviceId: num('device_id'),
    type: text('type').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    data: jsonb('data').notNull().default(sql`'{}'::jsonb`),
    status: text('status', { enum: ['pending', 'sent', 'failed', 'dead'] }).notNull().default('pending'),
    error: text('error'),
    attempts: integer('attempts').notNull().default(0),
    dedupeKey: text('dedupe_key'),
    // one push to N devices is N records: the first (the anchor) has push_id null, the others the
    // anchor's id. A member's notifications are the anchors; opened_at is set on the anchor only.
    pushId: num('push_id'),
    openedAt: ts('opened_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
    sentAt: ts('sent_at'),
  },
  (t) => [
    // a record is reached by its id, its dedupe key (a push recorded again), its anchor (push_id) or,
    // as an anchor, by member: nothing indexes every record by member or by status, since every
    // redemption adds one (its in-app exchange confirmation)
    uniqueIndex('push_records_dedupe_key').on(t.dedupeKey),
    // a member's notifications (anchors), newest first
    index('push_records_member_pushes').on(t.userId, t.createdAt.desc(), t.id.desc()).where(sql`push_id IS NULL`),
    // the records still being delivered or given up on, by status, newest first (admin lists): a
    // record sent at once (an in-app notice) never enters it
    index('push_records_undelivered').on(t.status, t.createdAt.desc(), t.id.desc()).where(sql`status <> 'sent'`),
    index('push_records_push').on(t.pushId).where(sql`push_id IS NOT NULL`),
    // analytics: pushes (anchors) by the day they were made
    index('push_records_anchor_time').on(t.createdAt).where(sql`push_id IS NULL`),
  ],
);

export const reminderRules = pgTable('reminder_rules', {
  kind: text('kind', { enum: ['expiry', 'checkin'] }).primaryKey(),
  enabled: boolean('enabled').notNull().default(true),
  params: jsonb('params').notNull().default(sql`'{}'::jsonb`),
});

/**
 * Highest outbox stream id persisted per partition. Redis's own last-generated id below this
 * means Redis came back older than Postgres (snapshot restore, failover): writes wait until
 * Redis is rolled forward.
 */
export const outboxWatermarks = pgTable('outbox_watermarks', {
  partition: integer('partition').primaryKey(),
  ms: num('ms').notNull(),
  seq: num('seq').notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * Ops whose id reached Postgres a second time with other content: an op Redis applied that the
 * ledger's dedupe on op_id would otherwise drop without a trace. Never expected (op ids are
 * random); each row is an alarm (logged, counted on /metrics as pm_persist_op_conflicts_total).
 */
export const opConflicts = pgTable('op_conflicts', {
  opId: text('op_id').primaryKey(),
  incoming: jsonb('incoming').notNull(),
  existing: jsonb('existing').notNull(),
  detectedAt: ts('detected_at').notNull().defaultNow(),
});

/**
 * Outbox stream ids persisted, appended by each persist batch (one row per partition it carried).
 * Append-only, so concurrent batches never wait on a shared row; the reconcile role folds them
 * into outbox_watermarks. The persisted watermark of a partition is the highest of both.
 */
export const outboxMarks = pgTable(
  'outbox_marks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    partition: integer('partition').notNull(),
    ms: num('ms').notNull(),
    seq: num('seq').notNull(),
  },
  (t) => [index('outbox_marks_partition_id').on(t.partition, t.ms.desc(), t.seq.desc())],
);

/**
 * Redis lifetimes verified against the record: a row per (re)start of Redis found not behind
 * Postgres (or rolled forward), with its run_id and the stream ids it had then (baseline). Writers
 * serve only a Redis whose run_id and epoch key match the latest row (src/recovery/redis-epoch.ts).
 * A row with `behind` set is an alarm: ops from an older lifetime were persisted after this one
 * was verified, so Redis must be rolled forward again.
 */
export const redisEpochs = pgTable('redis_epochs', {
  epoch: bigint('epoch', { mode: 'number' }).primaryKey(),
  runId: text('run_id').notNull(),
  replId: text('repl_id').notNull(),
  baseline: jsonb('baseline').notNull(),
  behind: boolean('behind').notNull().default(false),
  reason: text('reason'),
  createdAt: ts('created_at').notNull().defaultNow(),
});

/**
 * Reconcile's fencing token: each run takes the next one; a repair commits only while its run's
 * token is still the latest, so a stalled run that overlaps a newer one repairs nothing more.
 */
export const reconcileFence = pgTable('reconcile_fence', {
  id: integer('id').primaryKey(),
  token: bigint('token', { mode: 'number' }).notNull(),
});

/**
 * Idempotency keys of admin writes (goods, restocks, jobs, push retries, broadcasts), written in
 * the same transaction as the write with its answer (src/admin/idempotency.ts): a retry replays
 * the answer, a concurrent duplicate waits on the primary key and then replays. `settled` is
 * false while the Redis steps that follow the commit have not been seen to complete; a replay
 * runs them again. Rows past expires_at are dead: the key may start a new request.
 */
export const adminIdempotencyKeys = pgTable(
  'admin_idempotency_keys',
  {
    actorId: num('actor_id').notNull(),
    idemKey: text('idem_key').notNull(),
    requestHash: text('request_hash').notNull(),
    status: integer('status').notNull(),
    body: jsonb('body').notNull().default(sql`'{}'::jsonb`),
    settled: boolean('settled').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.actorId, t.idemKey] })],
);

/** Member tiers by lifetime earned points; position 0 is the entry tier (min 0). */
export const tiers = pgTable('tiers', {
  position: integer('position').primaryKey(),
  name: text('name').notNull(),
  minPoints: num('min_points').notNull(),
  // per-mille: 1050 = ×1.05 on rule earns; 950 = ×0.95 on redemption prices
  earnPerMille: integer('earn_per_mille').notNull(),
  pricePerMille: integer('price_per_mille').notNull(),
});

/** Limited-time earn multipliers for some bizTypes; the highest matching one applies. */
export const campaigns = pgTable(
  'campaigns',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    bizTypes: text('biz_types').array().notNull(),
    multiplierPerMille: integer('multiplier_per_mille').notNull(),
    startsAt: ts('starts_at').notNull(),
    endsAt: ts('ends_at').notNull(),
    notify: boolean('notify').notNull().default(false),
    notifiedAt: ts('notified_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('campaigns_window').on(t.endsAt, t.startsAt)],
);

/** Engagement settings edited by admins: check-in points, daily login bonus. */
export const engagementSettings = pgTable('engagement_settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * Lotteries (src/lottery/): the settings a draw is decided by. The live copy is in the lottery's
 * Redis slot; `version` grows with every write so a late sync never overwrites a newer one.
 */
export const lotteries = pgTable('lotteries', {
  id: serial('id').primaryKey(),
  name: text('name').notNull(),
  cost: num('cost').notNull(),
  cooldownSeconds: integer('cooldown_seconds').notNull().default(0),
  // draws per member per business day; null = no limit
  dailyDrawLimit: integer('daily_draw_limit'),
  startsAt: ts('starts_at'),
  endsAt: ts('ends_at'),
  active: boolean('active').notNull().default(true),
  version: integer('version').notNull().default(1),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * A lottery's prizes. What a prize is (kind, points, goods) never changes once created, so its
 * draws stay true to it; a prize taken out of the draw is retired, not deleted. `stock` is the
 * number of units ever allocated (null = unlimited) and only grows; remaining = stock − wins.
 */
export const lotteryPrizes = pgTable(
  'lottery_prizes',
  {
    id: serial('id').primaryKey(),
    lotteryId: integer('lottery_id').notNull().references(() => lotteries.id),
    position: integer('position').notNull(),
    name: text('name').notNull(),
    kind: text('kind', { enum: ['points', 'goods', 'none'] }).notNull(),
    points: num('points'),
    goodsId: num('goods_id').references(() => goods.id),
    weight: integer('weight').notNull(),
    stock: num('stock'),
    retired: boolean('retired').notNull().default(false),
  },
  (t) => [index('lottery_prizes_lottery').on(t.lotteryId, t.position)],
);

/**
 * Draws, written by the persist worker from each draw's spend op (draw_id = its op id), with the
 * prize as it was when drawn. Prize stock is rebuilt from these (stock − wins), and the business
 * day the draw counted on restores the daily limits.
 */
export const lotteryDraws = pgTable(
  'lottery_draws',
  {
    drawId: text('draw_id').primaryKey(),
    lotteryId: integer('lottery_id').notNull(),
    userId: num('user_id').notNull(),
    cost: num('cost').notNull(),
    prizeId: integer('prize_id').notNull(),
    prizeName: text('prize_name').notNull(),
    prizeKind: text('prize_kind', { enum: ['points', 'goods', 'none'] }).notNull(),
    prizePoints: num('prize_points').notNull().default(0),
    prizeGoodsId: num('prize_goods_id'),
    day: integer('day').notNull(),
    createdAt: ts('created_at').notNull(),
  },
  (t) => [
    index('lottery_draws_user_time').on(t.userId, t.createdAt.desc(), t.drawId.desc()),
    index('lottery_draws_lottery_prize').on(t.lotteryId, t.prizeId),
    index('lottery_draws_time').on(t.createdAt),
  ],
);

// ---- Tasks, referrals and profiles (issue 7): progress derived by the engagement role ----

/** Task definitions (admin CRUD). Progress comes only from what the system records. */
export const tasks = pgTable('tasks', {
  key: text('key').primaryKey(),
  title: text('title').notNull(),
  description: text('description').notNull().default(''),
  frequency: text('frequency', { enum: ['daily', 'weekly', 'once'] }).notNull(),
  event: text('event', {
    enum: ['checkin', 'share', 'review', 'redeem', 'spend_points', 'earn_points', 'invite', 'profile_complete'],
  }).notNull(),
  target: num('target').notNull(),
  reward: integer('reward').notNull(),
  active: boolean('active').notNull().default(true),
  startsAt: ts('starts_at'),
  endsAt: ts('ends_at'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/** A member's progress on a task in one period ('YYYY-MM-DD' of the day or the week's Monday; 'once'). */
export const taskProgress = pgTable(
  'task_progress',
  {
    taskKey: text('task_key').notNull(),
    userId: num('user_id').notNull(),
    periodStart: text('period_start').notNull(),
    progress: num('progress').notNull().default(0),
    completedAt: ts('completed_at'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.taskKey, t.userId, t.periodStart] }), index('task_progress_user').on(t.userId, t.periodStart)],
);

/**
 * How far the engagement role has followed the ledger and member_events (ids). Updated in the
 * transaction that records what those rows derived, and held FOR UPDATE meanwhile.
 */
export const engagementWatermarks = pgTable('engagement_watermarks', {
  name: text('name').primaryKey(),
  ledgerId: num('ledger_id').notNull().default(0),
  eventId: num('event_id').notNull().default(0),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * Things members did that are not points ops (a completed profile, an invitation), recorded by
 * the API in the transaction that did them, for the engagement role to follow like the ledger.
 */
export const memberEvents = pgTable(
  'member_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: num('user_id').notNull(),
    type: text('type', { enum: ['profile_complete', 'invite'] }).notNull(),
    ref: text('ref'),
    // one event per fact (profile_complete:<member>, invite:<new member>)
    dedupe: text('dedupe').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('member_events_dedupe_key').on(t.dedupe)],
);

/**
 * Points the system owes or takes back (task rewards, referral rewards, commissions and their
 * reversals): one row per slot, inserted with what derived it, then paid through the points spine
 * under the slot as its idempotency key and marked paid with the op that did it.
 */
export const engagementPayouts = pgTable(
  'engagement_payouts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    slot: text('slot').notNull(),
    userId: num('user_id').notNull(),
    bizType: text('biz_type').notNull(),
    bizId: text('biz_id').notNull(),
    direction: text('direction', { enum: ['credit', 'debit'] }).notNull(),
    points: num('points').notNull(),
    // task rewards: tier and campaign multipliers apply (creditRule); everything else plain
    rule: boolean('rule').notNull().default(false),
    // commissions and their reversals: the redemption op, the level (1, 2) and the points it is on
    sourceOpId: text('source_op_id'),
    level: integer('level'),
    base: num('base'),
    push: jsonb('push'),
    status: text('status', { enum: ['pending', 'paid'] }).notNull().default('pending'),
    opId: text('op_id'),
    // points actually moved (a credit's after multipliers; a debit's up to what the member had)
    settled: num('settled'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    createdAt: ts('created_at').notNull().defaultNow(),
    paidAt: ts('paid_at'),
  },
  (t) => [
    uniqueIndex('engagement_payouts_slot_key').on(t.slot),
    index('engagement_payouts_pending').on(t.id).where(sql`status = 'pending'`),
    index('engagement_payouts_source').on(t.sourceOpId, t.level),
    index('engagement_payouts_user').on(t.userId, t.bizType),
  ],
);

/** Each member's referral code: 8 Crockford base32 characters from a CSPRNG. */
export const referralCodes = pgTable(
  'referral_codes',
  {
    userId: num('user_id').primaryKey().references(() => users.id),
    code: text('code').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('referral_codes_code_key').on(t.code)],
);

/**
 * Who invited whom: one referrer per member (the primary key). A referrer registered before the
 * member they invite, so referrer_id < user_id: ids fall strictly along every chain, which makes a
 * cycle (self-referral included) impossible in the data, not just in the code.
 */
export const referrals = pgTable(
  'referrals',
  {
    userId: num('user_id').primaryKey().references(() => users.id),
    referrerId: num('referrer_id').notNull().references(() => users.id),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('referrals_referrer').on(t.referrerId), check('referrals_referrer_before_member', sql`${t.referrerId} < ${t.userId}`)],
);

/** Refund ops of redemptions bought by referred members: commissions are owed on spent − refunded. */
export const commissionRefunds = pgTable(
  'commission_refunds',
  {
    refundOpId: text('refund_op_id').primaryKey(),
    sourceOpId: text('source_op_id').notNull(),
    userId: num('user_id').notNull(),
    points: num('points').notNull(),
    createdAt: ts('created_at').notNull(),
  },
  (t) => [index('commission_refunds_source').on(t.sourceOpId)],
);

/** Member profile; complete (nickname, avatar and birthday) is recorded once. */
export const memberProfiles = pgTable('member_profiles', {
  userId: num('user_id').primaryKey().references(() => users.id),
  nickname: text('nickname'),
  avatarUrl: text('avatar_url'),
  birthday: date('birthday', { mode: 'string' }),
  gender: text('gender', { enum: ['female', 'male', 'other', 'undisclosed'] }),
  completedAt: ts('completed_at'),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

// ---- Commerce (issue 8): holds, orders, payments, virtual rewards ----

/**
 * Points holds as persisted from their ops: a freeze opens one (the lot portions it took), its
 * capture or release closes it. Open holds are what a rebuild puts back as `frozen`.
 */
export const pointHolds = pgTable(
  'point_holds',
  {
    id: text('id').primaryKey(),
    userId: num('user_id').notNull(),
    amount: num('amount').notNull(),
    lots: jsonb('lots').notNull(),
    bizType: text('biz_type').notNull(),
    bizId: text('biz_id'),
    // the request hash the hold was made with and its freeze op: a rebuilt record answers retries
    requestHash: text('request_hash'),
    freezeOp: text('freeze_op'),
    state: text('state', { enum: ['frozen', 'captured', 'released'] }).notNull(),
    captured: num('captured'),
    expiresAt: ts('expires_at'),
    settledAt: ts('settled_at'),
    createdAt: ts('created_at').notNull(),
  },
  (t) => [index('point_holds_open').on(t.userId).where(sql`state = 'frozen'`), index('point_holds_expiry').on(t.expiresAt).where(sql`state = 'frozen'`)],
);

/**
 * Orders: every purchase (POST /v1/orders) and every redemption (POST /v1/redemptions, written by
 * the persist worker) is one. Status moves only along the lifecycle (src/orders/lifecycle.ts).
 */
export const orders = pgTable(
  'orders',
  {
    id: text('id').primaryKey(),
    orderNo: text('order_no').notNull(),
    userId: num('user_id').notNull(),
    source: text('source', { enum: ['order', 'redemption'] }).notNull(),
    // placing: the API is taking stock and points (not shown to anyone; the order pump finishes or
    // undoes a placement whose API died)
    status: text('status', {
      enum: ['placing', 'pending_payment', 'paid', 'shipped', 'completed', 'cancelled', 'refunded'],
    }).notNull(),
    // points the order spends: items priced in points, plus points paying part of the cash total
    pointsTotal: num('points_total').notNull(),
    pointsToUse: num('points_to_use').notNull().default(0),
    cashTotal: num('cash_total').notNull().default(0),
    cashDue: num('cash_due').notNull().default(0),
    paymentId: text('payment_id'),
    paymentDeadline: ts('payment_deadline'),
    // the points hold (named by the order id) while the order waits for its payment
    holdId: text('hold_id'),
    // the spend op: the hold's capture (orders) or the charge (redemptions), and the lot portions
    // it spent ([lotId, points, expiresAt]): what a refund gives back
    spendOpId: text('spend_op_id'),
    spentLots: jsonb('spent_lots'),
    // what the order's side effects have reached; the order pump drives them to match the status
    pointsState: text('points_state', { enum: ['none', 'frozen', 'captured', 'released', 'refunded'] }).notNull().default('none'),
    stockState: text('stock_state', { enum: ['reserved', 'sold', 'returned'] }).notNull().default('reserved'),
    rewardsState: text('rewards_state', { enum: ['none', 'pending', 'issued', 'revoked'] }).notNull().default('none'),
    earnState: text('earn_state', { enum: ['none', 'pending', 'credited', 'clawed_back'] }).notNull().default('none'),
    earnedPoints: num('earned_points').notNull().default(0),
    // set by every change of status, cleared once the side effects caught up (src/orders/effects.ts)
    unsettled: boolean('unsettled').notNull().default(true),
    // the AES-GCM envelope of {name, phone, address} (src/crypto), the order id as associated data
    receiver: text('receiver'),
    carrier: text('carrier'),
    trackingNo: text('tracking_no'),
    reason: text('reason'),
    idemKey: text('idem_key'),
    requestHash: text('request_hash'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    paidAt: ts('paid_at'),
    shippedAt: ts('shipped_at'),
    completedAt: ts('completed_at'),
    cancelledAt: ts('cancelled_at'),
    refundedAt: ts('refunded_at'),
  },
  (t) => [
    uniqueIndex('orders_order_no_key').on(t.orderNo),
    // redemptions have neither: no index entries for them
    uniqueIndex('orders_idem_key').on(t.userId, t.idemKey).where(sql`idem_key IS NOT NULL`),
    uniqueIndex('orders_payment_key').on(t.paymentId).where(sql`payment_id IS NOT NULL`),
    index('orders_user_time').on(t.userId, t.createdAt.desc(), t.id.desc()),
    index('orders_status_time').on(t.status, t.createdAt.desc(), t.id.desc()),
    // the order pump's scan of orders whose side effects may lag their status
    index('orders_unsettled').on(t.updatedAt).where(sql`unsettled`),
  ],
);

export const orderItems = pgTable(
  'order_items',
  {
    orderId: text('order_id').notNull(),
    position: integer('position').notNull(),
    goodsId: num('goods_id').notNull(),
    goodsType: text('goods_type').notNull(),
    quantity: integer('quantity').notNull(),
    unitPoints: num('unit_points').notNull().default(0),
    unitCash: num('unit_cash').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.orderId, t.position] }), index('order_items_goods').on(t.goodsId)],
);

/** Each transition of an order: from, to, who, why, when. */
export const orderEvents = pgTable(
  'order_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orderId: text('order_id').notNull(),
    fromStatus: text('from_status'),
    toStatus: text('to_status').notNull(),
    actorId: num('actor_id'),
    reason: text('reason'),
    data: jsonb('data').notNull().default(sql`'{}'::jsonb`),
    // the member's push for this transition was queued (the order pump sends any left behind)
    notified: boolean('notified').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('order_events_order').on(t.orderId, t.id), index('order_events_unnotified').on(t.id).where(sql`NOT notified`)],
);

/** Payment provider events, applied once each (their eventId). */
export const paymentEvents = pgTable('payment_events', {
  eventId: text('event_id').primaryKey(),
  paymentId: text('payment_id').notNull(),
  status: text('status').notNull(),
  amount: num('amount').notNull(),
  outcome: text('outcome').notNull(),
  receivedAt: ts('received_at').notNull().defaultNow(),
});

/** Coupons issued by coupon goods: one per unit of an order item, once whatever retries happen. */
export const userCoupons = pgTable(
  'user_coupons',
  {
    code: text('code').primaryKey(),
    userId: num('user_id').notNull(),
    orderId: text('order_id').notNull(),
    position: integer('position').notNull(),
    unit: integer('unit').notNull(),
    goodsId: num('goods_id').notNull(),
    status: text('status', { enum: ['active', 'used', 'expired', 'revoked'] }).notNull().default('active'),
    validUntil: ts('valid_until').notNull(),
    usedAt: ts('used_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('user_coupons_unit_key').on(t.orderId, t.position, t.unit), index('user_coupons_user').on(t.userId, t.createdAt.desc())],
);

/** VIP membership periods added by VIP goods: one per unit of an order item; they stack. */
export const vipGrants = pgTable(
  'vip_grants',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: num('user_id').notNull(),
    orderId: text('order_id').notNull(),
    position: integer('position').notNull(),
    unit: integer('unit').notNull(),
    days: integer('days').notNull(),
    startsAt: ts('starts_at').notNull(),
    endsAt: ts('ends_at').notNull(),
    revoked: boolean('revoked').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('vip_grants_unit_key').on(t.orderId, t.position, t.unit), index('vip_grants_user').on(t.userId, t.endsAt)],
);
// ---- Points transfers (issue 8): a saga across the sender's and the receiver's slots ----

/**
 * One row per transfer, written by the persist worker from its ops (the sender's transfer_out and
 * the receiver's transfer_in; whichever is persisted first inserts the row). `parts` is the credit
 * to make: [[expiresAt ms, points], …], one entry per expiry of the sender's lots it took.
 * `completed_at` is set by the credit op: a row without it is a transfer debited and not yet
 * credited, which a rebuild puts back on the completer's pending set.
 */
export const transfers = pgTable(
  'transfers',
  {
    id: text('id').primaryKey(),
    fromUserId: num('from_user_id').notNull(),
    toUserId: num('to_user_id').notNull(),
    amount: num('amount').notNull(),
    note: text('note'),
    parts: jsonb('parts').notNull(),
    // the sender's business day the transfer counted on (its daily maximum)
    day: integer('day').notNull(),
    createdAt: ts('created_at').notNull(),
    completedAt: ts('completed_at'),
  },
  (t) => [
    index('transfers_from_time').on(t.fromUserId, t.createdAt.desc(), t.id.desc()),
    index('transfers_to_time').on(t.toUserId, t.createdAt.desc(), t.id.desc()),
    index('transfers_pending').on(t.createdAt).where(sql`completed_at IS NULL`),
    check('transfers_not_to_self', sql`${t.fromUserId} <> ${t.toUserId}`),
  ],
);

/**
 * Goods campaigns: a price discount (per mille of the price paid: 850 = 15 % off) on the goods
 * listed, or on every goods of a category, inside [starts_at, ends_at). Only goods with dynamic
 * pricing are discounted; where several apply, the lowest factor wins (src/catalog/campaigns.ts).
 */
export const goodsCampaigns = pgTable(
  'goods_campaigns',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull().default(''),
    goodsIds: bigint('goods_ids', { mode: 'number' }).array(),
    categoryId: integer('category_id').references(() => categories.id),
    discountPerMille: integer('discount_per_mille').notNull(),
    startsAt: ts('starts_at').notNull(),
    endsAt: ts('ends_at').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('goods_campaigns_window').on(t.endsAt, t.startsAt),
    check('goods_campaigns_one_target', sql`(${t.goodsIds} IS NULL) <> (${t.categoryId} IS NULL)`),
    check('goods_campaigns_discount', sql`${t.discountPerMille} BETWEEN 1 AND 999`),
  ],
);

// ---- Risk control (issue 9) ----

/** Thresholds of the risk rules, admin-configurable (src/risk/rules.ts holds the defaults and meanings). */
export const riskRules = pgTable('risk_rules', {
  rule: text('rule').primaryKey(),
  enabled: boolean('enabled').notNull().default(true),
  threshold: integer('threshold').notNull(),
  windowSeconds: integer('window_seconds').notNull(),
  action: text('action', { enum: ['flag', 'freeze', 'block'] }).notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/** Each risk rule hit, and each admin freeze and unfreeze: who, which rule, the evidence, from where. */
export const riskEvents = pgTable(
  'risk_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: num('user_id').notNull(),
    rule: text('rule').notNull(),
    action: text('action').notNull(),
    evidence: jsonb('evidence').notNull().default(sql`'{}'::jsonb`),
    ip: text('ip'),
    userAgent: text('user_agent'),
    // the op that carried an in-script finding (once per op, whatever the redeliveries)
    opId: text('op_id'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    index('risk_events_time').on(t.createdAt.desc(), t.id.desc()),
    index('risk_events_user').on(t.userId, t.createdAt.desc()),
    index('risk_events_rule').on(t.rule, t.createdAt.desc()),
    uniqueIndex('risk_events_op').on(t.opId).where(sql`op_id IS NOT NULL`),
  ],
);

/**
 * A/B experiments (src/experiments/): the definition, with its variants (name, weight, payload)
 * as one JSON array in order (the first is the control the others are compared against).
 */
export const experiments = pgTable('experiments', {
  key: text('key').primaryKey(),
  description: text('description').notNull().default(''),
  variants: jsonb('variants').notNull(),
  conversionEvent: text('conversion_event').notNull(),
  status: text('status', { enum: ['draft', 'running', 'stopped'] }).notNull().default('draft'),
  startsAt: ts('starts_at'),
  endsAt: ts('ends_at'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/** The variant each member was given, once: the truth of stickiness (Redis caches it). */
export const experimentExposures = pgTable(
  'experiment_exposures',
  {
    experimentKey: text('experiment_key').notNull(),
    userId: num('user_id').notNull(),
    variant: text('variant').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.experimentKey, t.userId] }), index('experiment_exposures_variant').on(t.experimentKey, t.variant)],
);

/**
 * Members' events (POST /v1/me/events), one per (member, Idempotency-Key). `variant` is the
 * member's exposure when the event came (null: not exposed); `counted` says it is a conversion of
 * that variant (exposed, the experiment's conversion event, while the experiment was live).
 */
export const experimentEvents = pgTable(
  'experiment_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: num('user_id').notNull(),
    idemKey: text('idem_key').notNull(),
    requestHash: text('request_hash').notNull(),
    name: text('name').notNull(),
    experimentKey: text('experiment_key'),
    variant: text('variant'),
    value: doublePrecision('value'),
    counted: boolean('counted').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('experiment_events_idem').on(t.userId, t.idemKey),
    index('experiment_events_counted').on(t.experimentKey, t.variant).where(sql`counted`),
  ],
);

// ---- Analytics (issue 10): daily rollups kept by the analytics worker role (src/analytics/) ----

/** A set of members as a bit string: bit i is member id i (Postgres `bit varying`). */
const memberBits = customType<{ data: string }>({ dataType: () => 'bit varying' });

/** Business days (BUSINESS_TIMEZONE) on which a member logged in: one row per member and day. */
export const memberLogins = pgTable(
  'member_logins',
  {
    day: date('day', { mode: 'string' }).notNull(),
    userId: num('user_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.day, t.userId] })],
);

/**
 * One row per business day, recomputed by the analytics role (docs/analytics.md has each
 * formula). The *_bits columns are member sets, so distinct members over any window are a
 * bit_or of its days, never a scan of the ledger.
 */
export const analyticsDays = pgTable('analytics_days', {
  day: date('day', { mode: 'string' }).primaryKey(),
  activeMembers: integer('active_members').notNull(),
  monthlyActive: integer('monthly_active').notNull(),
  newMembers: integer('new_members').notNull(),
  earners: integer('earners').notNull(),
  redeemers: integer('redeemers').notNull(),
  pointsIssued: num('points_issued').notNull(),
  pointsSpent: num('points_spent').notNull(),
  pointsExpired: num('points_expired').notNull(),
  pointsRefunded: num('points_refunded').notNull(),
  pointsNet: num('points_net').notNull(),
  pointsOutstanding: num('points_outstanding').notNull(),
  redemptions: integer('redemptions').notNull(),
  tasksStarted: integer('tasks_started').notNull().default(0),
  tasksCompleted: integer('tasks_completed').notNull().default(0),
  pushes: integer('pushes').notNull().default(0),
  pushesOpened: integer('pushes_opened').notNull().default(0),
  activeBits: memberBits('active_bits').notNull(),
  newBits: memberBits('new_bits').notNull(),
  earnerBits: memberBits('earner_bits').notNull(),
  redeemerBits: memberBits('redeemer_bits').notNull(),
  // members with two or more redemptions on this day
  repeatBits: memberBits('repeat_bits').notNull(),
  // members who ever earned / redeemed up to the end of this day
  everEarnedBits: memberBits('ever_earned_bits').notNull(),
  everRedeemedBits: memberBits('ever_redeemed_bits').notNull(),
  computedAt: ts('computed_at').notNull().defaultNow(),
});

/** Catalog redemptions per business day and goods item (top goods). */
export const analyticsGoodsDays = pgTable(
  'analytics_goods_days',
  {
    day: date('day', { mode: 'string' }).notNull(),
    goodsId: num('goods_id').notNull(),
    redemptions: integer('redemptions').notNull(),
    quantity: num('quantity').notNull(),
    points: num('points').notNull(),
  },
  (t) => [primaryKey({ columns: [t.day, t.goodsId] })],
);

/** Each member's first earning day and first redemption day (days from first earn to first redemption). */
export const analyticsMembers = pgTable(
  'analytics_members',
  {
    userId: num('user_id').primaryKey(),
    firstEarnDay: date('first_earn_day', { mode: 'string' }),
    firstRedeemDay: date('first_redeem_day', { mode: 'string' }),
  },
  (t) => [index('analytics_members_first_redeem').on(t.firstRedeemDay).where(sql`first_redeem_day IS NOT NULL`)],
);
