/**
 * Worker entry: runs any subset of the roles, apart from the API and scaled separately.
 *   npm run workers -- --only relay,persist,sweeper --concurrency 8
 * Roles: relay (outbox → jobs, leaderboards), persist (jobs → Postgres), sweeper (expired
 * reservations and lottery prize holds, transfers debited and not credited; audit retention), expire (lots past their expiry), reconcile (drift; rolls a lagging Redis
 * forward), reminders (points about to expire, check-in, campaign starts), push (notifications and broadcast fan-out),
 * engagement (task progress and referral commissions from the persisted ledger), catalog (the hot goods list in Redis),
 * orders (the order pump: abandoned placements, payment timeouts, auto-completion, side effects left undone),
 * recommend (the recommendation model in Redis, rebuilt on a schedule and after N redemptions), metrics (the
 * business gauges, src/metrics/business.ts), analytics (the daily rollups the admin analytics read). With
 * WORKER_METRICS_PORT set the process serves its own /metrics. Scheduled
 * roles run one at a time per schedule across processes. SIGTERM/SIGINT: stop fetching, finish in-flight jobs, close.
 */
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { loadEnv } from '../src/config/env.ts';
import { createDb } from '../src/db/client.ts';
import { assertRedisSettings, createRedis, redisReady } from '../src/redis/client.ts';
import { gateWrites, RedisGate } from '../src/recovery/redis-gate.ts';
import { createKeys } from '../src/redis/keys.ts';
import { GoodsService } from '../src/goods/service.ts';
import { PointsService } from '../src/points/service.ts';
import { RulesCache } from '../src/points/rules.ts';
import { EngagementConfig } from '../src/engagement/config.ts';
import { CheckinService } from '../src/engagement/checkin.ts';
import { notifyPersisted } from '../src/engagement/notices.ts';
import { PUSH_QUEUE, sendJobOptions, type SendJob } from '../src/push/jobs.ts';
import { PushService } from '../src/push/service.ts';
import { RedemptionService } from '../src/redemptions/service.ts';
import { LotteryService } from '../src/lottery/service.ts';
import { TransferService } from '../src/transfers/service.ts';
import { PERSIST_QUEUE, persistJobOptions } from '../src/queues.ts';
import { onShutdown } from '../src/shutdown.ts';
import { RiskRules } from '../src/risk/rules.ts';
import { assessTransferFanIn, enforceHits } from '../src/risk/assess.ts';
import { createLogger } from './logger.ts';
import { Relay } from './relay.ts';
import { startPersistWorker } from './persist.ts';
import { startSweeper } from './sweeper.ts';
import { startAuditRetention } from './audit-retention.ts';
import { AuditService } from '../src/audit/service.ts';
import { startExpirer } from './expire.ts';
import { startReconciler } from './reconcile.ts';
import { startReminders } from './reminders.ts';
import { startPushWorker } from './push.ts';
import { startEngagement } from './engagement.ts';
import { startOrders } from './orders.ts';
import { startCatalog } from './catalog.ts';
import { startRecommend } from './recommend.ts';
import { startAnalytics } from './analytics.ts';
import { noteRedemptions } from '../src/recommendations/model.ts';
import { startMetricsServer } from '../src/metrics/server.ts';
import { startBusinessMetrics } from './metrics.ts';

export const ROLES = ['relay', 'persist', 'sweeper', 'expire', 'reconcile', 'reminders', 'push', 'engagement', 'catalog', 'orders', 'recommend', 'metrics', 'analytics'] as const;
type Role = (typeof ROLES)[number];

export function parseRoles(only: string | undefined): Role[] {
  if (!only) return [...ROLES];
  const roles = only.split(',').map((r) => r.trim()).filter(Boolean);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new Error(`unknown role(s): ${unknown.join(', ')}; roles are ${ROLES.join(', ')}`);
  return roles as Role[];
}

const { values } = parseArgs({
  options: { only: { type: 'string' }, concurrency: { type: 'string' }, 'lock-ms': { type: 'string' } },
  allowPositionals: false,
});
const env = loadEnv();
const roles = parseRoles(values.only);
const concurrency = values.concurrency ? Number(values.concurrency) : env.WORKER_CONCURRENCY;
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency must be a positive integer');
// persist job lock / stalled-check interval (default 30 s): a killed worker's batches are redelivered after it
const lockMs = values['lock-ms'] ? Number(values['lock-ms']) : undefined;
if (lockMs !== undefined && (!Number.isInteger(lockMs) || lockMs < 500)) throw new Error('--lock-ms must be an integer >= 500');

const log = createLogger(env.LOG_LEVEL, roles.join('+'));
const keys = createKeys({ prefix: env.REDIS_PREFIX, partitions: env.PARTITIONS, cluster: Boolean(env.REDIS_CLUSTER_NODES) });
const redis = createRedis(env, 'worker');
await assertRedisSettings(redis);
const db = createDb(env.DATABASE_URL, Math.max(2, concurrency + 1), env);
const closers: Array<() => Promise<unknown>> = [];
// tiers, campaigns and engagement settings, refreshed like the API's
const engagement = new EngagementConfig(db.sql);
await engagement.refresh();
engagement.start(env.RULES_REFRESH_MS);
closers.push(async () => engagement.stop());
// risk thresholds for the credits the roles make (DAILY_GAIN), refreshed like the API's
const riskRules = new RiskRules(db.sql);
await riskRules.refresh();
riskRules.start(env.RULES_REFRESH_MS);
closers.push(async () => riskRules.stop());

// Every role that writes to Redis goes through one write gate, closed until this Redis is
// verified against Postgres and again whenever a watched connection drops (src/recovery/redis-gate.ts).
const writer = createRedis(env, 'writer');
await redisReady(writer);
const gate = new RedisGate({ redis: writer, keys, sql: db.sql, log });
gate.watch(writer);
gateWrites(writer, gate);
await gate.check();
gate.start(env.LAG_CHECK_MS);
closers.push(async () => gate.stop());

if (roles.includes('relay')) {
  const queue = new Queue(PERSIST_QUEUE, { connection: createRedis(env, 'worker'), prefix: keys.queuePrefix(PERSIST_QUEUE) });
  queue.on('error', (err) => log.warn({ err }, 'persist queue error'));
  const relayConn = createRedis(env, 'writer', { autoPipelining: true });
  await redisReady(relayConn);
  gate.watch(relayConn);
  gateWrites(relayConn, gate);
  const relay = new Relay({
    redis: relayConn,
    keys,
    queue,
    gate,
    batch: env.RELAY_BATCH,
    lingerMs: env.RELAY_LINGER_MS,
    claimIdleMs: env.RELAY_CLAIM_IDLE_MS,
    jobOptions: persistJobOptions(env.PERSIST_ATTEMPTS, env.PERSIST_BACKOFF_MS),
    timeZone: env.BUSINESS_TIMEZONE,
    log,
  });
  await relay.start();
  closers.push(async () => {
    await relay.stop();
    await queue.close();
  });
}
if (roles.includes('persist')) {
  const pushQueue = new Queue<SendJob>(PUSH_QUEUE, { connection: createRedis(env, 'worker'), prefix: keys.queuePrefix(PUSH_QUEUE) });
  pushQueue.on('error', (err) => log.warn({ err }, 'push queue error'));
  const pushes = new PushService(db.sql, pushQueue, sendJobOptions(env));
  const worker = startPersistWorker({
    connection: createRedis(env, 'worker'),
    prefix: keys.queuePrefix(PERSIST_QUEUE),
    sql: db.sql,
    concurrency,
    log,
    lockMs,
    afterCommit: async (ops) => {
      await notifyPersisted(ops, db.sql, pushes, engagement);
      await enforceHits(writer, keys, await assessTransferFanIn(db.sql, ops, riskRules));
      await noteRedemptions(writer, keys, ops);
    },
  });
  closers.push(async () => {
    await worker.close();
    await pushQueue.close();
  });
}
if (roles.includes('sweeper')) {
  const deps = { redis: writer, keys, sql: db.sql, env };
  const points = new PointsService(deps, new RulesCache(db.sql), engagement, riskRules);
  const redemptions = new RedemptionService(deps, points, new GoodsService(deps));
  const sweeper = await startSweeper({
    connection: createRedis(env, 'worker'),
    keys,
    redemptions,
    lottery: new LotteryService(deps, points),
    transfers: new TransferService(deps, points, engagement, log),
    gate,
    everyMs: env.SWEEP_EVERY_MS,
    transferGraceMs: env.RESERVATION_TIMEOUT_MS,
    lockMs: env.TASK_LOCK_MS,
    log,
  });
  closers.push(() => sweeper.close());
  const retention = await startAuditRetention({
    connection: createRedis(env, 'worker'),
    keys,
    audit: new AuditService(db.sql),
    days: env.AUDIT_RETENTION_DAYS,
    lockMs: env.TASK_LOCK_MS,
    log,
  });
  closers.push(() => retention.close());
}

if (roles.includes('expire')) {
  const expirer = await startExpirer({ connection: createRedis(env, 'worker'), writer, gate, keys, everyMs: env.EXPIRE_EVERY_MS, batch: env.EXPIRE_BATCH, lockMs: env.TASK_LOCK_MS, log });
  closers.push(() => expirer.close());
}

if (roles.includes('push')) {
  const push = startPushWorker({ env, sql: db.sql, prefix: keys.queuePrefix, concurrency, log });
  closers.push(() => push.close());
}

if (roles.includes('reconcile')) {
  const raw = createRedis(env, 'writer');
  await redisReady(raw);
  const reconciler = await startReconciler({
    connection: createRedis(env, 'worker'),
    writer,
    raw,
    gate,
    keys,
    sql: db.sql,
    everyMs: env.RECONCILE_EVERY_MS,
    idempotencyTtlSeconds: env.IDEMPOTENCY_TTL_SECONDS,
    timeZone: env.BUSINESS_TIMEZONE,
    lockMs: env.TASK_LOCK_MS,
    apiNoticeMs: env.LAG_CHECK_MS * 2 + 500,
    log,
  });
  closers.push(() => reconciler.close());
}

if (roles.includes('reminders')) {
  const deps = { redis: writer, keys, sql: db.sql, env };
  const checkins = new CheckinService(deps, new PointsService(deps, new RulesCache(db.sql), engagement, riskRules), engagement);
  const reminders = await startReminders({ connection: createRedis(env, 'worker'), keys, sql: db.sql, env, log, checkins, engagement });
  closers.push(() => reminders.close());
}

if (roles.includes('engagement')) {
  const engagementRole = startEngagement({ sql: db.sql, writer, connection: createRedis(env, 'worker'), gate, keys, env, engagement, riskRules, log });
  closers.push(() => engagementRole.close());
}

if (roles.includes('orders')) {
  const pushQueue = new Queue<SendJob>(PUSH_QUEUE, { connection: createRedis(env, 'worker'), prefix: keys.queuePrefix(PUSH_QUEUE) });
  pushQueue.on('error', (err) => log.warn({ err }, 'push queue error'));
  const ordersRole = await startOrders({ connection: createRedis(env, 'worker'), writer, gate, keys, sql: db.sql, env, engagement, riskRules, pushQueue, log });
  closers.push(async () => {
    await ordersRole.close();
    await pushQueue.close();
  });
}

if (roles.includes('catalog')) {
  const catalog = await startCatalog({
    connection: createRedis(env, 'worker'),
    writer,
    gate,
    keys,
    sql: db.sql,
    everyMs: env.HOT_GOODS_EVERY_MS,
    lockMs: env.TASK_LOCK_MS,
    log,
  });
  closers.push(() => catalog.close());
}

if (roles.includes('recommend')) {
  const recommend = await startRecommend({
    connection: createRedis(env, 'worker'),
    writer,
    gate,
    keys,
    sql: db.sql,
    everyMs: env.RECOMMEND_EVERY_MS,
    afterRedemptions: env.RECOMMEND_AFTER_REDEMPTIONS,
    lockMs: env.TASK_LOCK_MS,
    log,
  });
  closers.push(() => recommend.close());
}

if (roles.includes('metrics')) {
  const business = await startBusinessMetrics({
    connection: createRedis(env, 'worker'),
    keys,
    sql: db.sql,
    everyMs: env.BUSINESS_METRICS_EVERY_MS,
    lockMs: env.TASK_LOCK_MS,
    log,
  });
  closers.push(() => business.close());
}

if (env.WORKER_METRICS_PORT > 0) {
  const server = await startMetricsServer({ host: env.HOST, port: env.WORKER_METRICS_PORT, token: env.METRICS_TOKEN });
  closers.push(() => server.close());
  log.info({ port: server.port }, 'serving /metrics');
}

if (roles.includes('analytics')) {
  const analytics = await startAnalytics({
    connection: createRedis(env, 'worker'),
    keys,
    sql: db.sql,
    everyMs: env.ANALYTICS_EVERY_MS,
    recomputeDays: env.ANALYTICS_RECOMPUTE_DAYS,
    timeZone: env.BUSINESS_TIMEZONE,
    lockMs: env.TASK_LOCK_MS,
    log,
  });
  closers.push(() => analytics.close());
}

onShutdown(async () => {
  log.info('shutting down: draining in-flight work');
  await Promise.all(closers.map((c) => c()));
  await db.close();
  redis.disconnect();
  log.info('stopped');
});
log.info({ roles, concurrency }, 'workers started');
