/**
 * Per-file test context: its own Postgres database (cloned from the migrated template), its own
 * Redis key prefix, the API app (inject, no port), and helpers to make members and goods quickly
 * and to run the relay + persist pipeline in process.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { FastifyInstance } from 'fastify';
import { Queue, Worker } from 'bullmq';
import { buildApp } from '../../src/app.ts';
import { loadEnv, type Env } from '../../src/config/env.ts';
import { createDb, type Sql } from '../../src/db/client.ts';
import { createRedis, redisReady, type RedisClient } from '../../src/redis/client.ts';
import { createKeys, type Keys } from '../../src/redis/keys.ts';
import { hashPassword } from '../../src/auth/service.ts';
import { PERSIST_QUEUE, persistJobOptions } from '../../src/queues.ts';
import { Relay } from '../../workers/relay.ts';
import { startPersistWorker } from '../../workers/persist.ts';
import { createLogger } from '../../workers/logger.ts';
import { inject } from 'vitest';
import { PG_ADMIN_URL, REDIS_CLUSTER_NODES, REDIS_URL, dbUrl } from './urls.ts';
import { deleteKeys } from '../../src/redis/delete-prefix.ts';
import { gateWrites, RedisGate } from '../../src/recovery/redis-gate.ts';
import { notifyPersisted } from '../../src/engagement/notices.ts';
import { assessTransferFanIn, enforceHits } from '../../src/risk/assess.ts';
import { noteRedemptions } from '../../src/recommendations/model.ts';

export interface TestContext {
  env: Env;
  app: FastifyInstance;
  sql: Sql;
  redis: RedisClient;
  keys: Keys;
  dbName: string;
  /** Member rows straight into Postgres (one shared hash: argon2 per member would take minutes). */
  createMembers(n: number, opts?: { role?: 'member' | 'admin' }): Promise<Array<{ id: number; token: string }>>;
  admin(): Promise<{ id: number; token: string }>;
  grant(userId: number, amount: number): Promise<void>;
  createGoods(body: Record<string, unknown>): Promise<{ id: number; stock: number; pointsPrice: number }>;
  startPipeline(concurrency?: number, opts?: { lockMs?: number }): Promise<Pipeline>;
  /** A write gate over `conn` (a 'writer' connection), checked once, as a worker process holds one. */
  gateFor(conn: RedisClient): Promise<RedisGate>;
  /** The connections and gate a worker role gets from workers/main.ts (for startReconciler & co). */
  roleConnections(): Promise<{ connection: RedisClient; writer: RedisClient; raw: RedisClient; gate: RedisGate }>;
  close(): Promise<void>;
}

export interface Pipeline {
  relay: Relay;
  /** Waits until every outbox is empty and the persist queue has nothing waiting or active. */
  drain(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

let sharedHash: Promise<string> | undefined;
const memberHash = () => (sharedHash ??= hashPassword('member-password'));

/**
 * NODE_ENV=test like vitest itself: outside development there is no built-in JWT secret or
 * encryption key, so each file has its own (children started with childEnv get the same ones).
 */
export function envFor(dbName: string, prefix: string, overrides: Partial<Env> = {}): Env {
  return loadEnv(
    {},
    {
      NODE_ENV: 'test',
      JWT_SECRET: randomBytes(32).toString('base64url'),
      ENCRYPTION_KEYS: `t1:${randomBytes(32).toString('base64')}`,
      DATABASE_URL: dbUrl(dbName),
      REDIS_URL,
      ...(REDIS_CLUSTER_NODES ? { REDIS_CLUSTER_NODES } : {}),
      REDIS_PREFIX: prefix,
      LOG_LEVEL: 'silent',
      RATE_LIMIT_ALLOWLIST: '127.0.0.1,::1',
      DATABASE_POOL: 8,
      ...overrides,
    },
  );
}

export async function createTestDatabase(): Promise<string> {
  const name = `pm_t_${Math.floor(Date.now() / 1000)}_${randomBytes(6).toString('hex')}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDb')}`);
  } finally {
    await admin.end();
  }
  return name;
}

export async function dropTestDatabase(name: string): Promise<void> {
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * `risk: 'seeded'` keeps the seeded risk rules. By default the two that act on a member's own
 * writes — DAILY_GAIN (freezes past 1,000 points a day) and EARN_BURST (429 past 10 earns a
 * minute) — are switched off, so tests about other things can earn freely; test/risk/ turns them on.
 */
export async function createTestContext(overrides: Partial<Env> = {}, opts: { risk?: 'seeded' } = {}): Promise<TestContext> {
  const dbName = await createTestDatabase();
  if (opts.risk !== 'seeded') {
    const db0 = postgres(dbUrl(dbName), { max: 1, onnotice: () => {} });
    await db0`UPDATE risk_rules SET enabled = false WHERE rule IN ('DAILY_GAIN', 'EARN_BURST')`;
    await db0.end();
  }
  const prefix = `pmt${randomBytes(4).toString('hex')}`;
  const env = envFor(dbName, prefix, overrides);
  const app = await buildApp(env, { logger: false });
  const db = createDb(env.DATABASE_URL, 4, env);
  const redis = createRedis(env, 'worker');
  const keys = createKeys({ prefix, partitions: env.PARTITIONS, cluster: Boolean(env.REDIS_CLUSTER_NODES) });
  const pipelines: Pipeline[] = [];
  const gates: RedisGate[] = [];
  const extraConns: RedisClient[] = [];

  const ctx: TestContext = {
    env,
    app,
    sql: db.sql,
    redis,
    keys,
    dbName,
    async createMembers(n, opts = {}) {
      const hash = await memberHash();
      const tag = randomBytes(4).toString('hex');
      const names = Array.from({ length: n }, (_, i) => `m${tag}_${i}`);
      const rows = await db.sql<Array<{ id: number; username: string; role: 'member' | 'admin' }>>`
        INSERT INTO users (username, email, password_hash, role)
        SELECT u, u || '@test.local', ${hash}, ${opts.role ?? 'member'} FROM unnest(${names}::text[]) AS u
        RETURNING id, username, role`;
      await db.sql`INSERT INTO point_accounts (user_id) SELECT unnest(${rows.map((r) => r.id)}::bigint[])`;
      return rows.map((r) => ({
        id: r.id,
        token: app.jwt.sign({ sub: String(r.id), role: r.role, username: r.username }),
      }));
    },
    async admin() {
      const [a] = await ctx.createMembers(1, { role: 'admin' });
      return a;
    },
    async grant(userId, amount) {
      await app.points.grant(0, userId, amount, 'test', randomBytes(8).toString('hex'));
    },
    async createGoods(body) {
      return app.goods.create(
        { name: 'Item', type: 'physical', pointsPrice: 100, stock: 10, ...body } as never,
        0,
      );
    },
    async startPipeline(concurrency = 4, opts = {}) {
      const log = createLogger('silent', 'test');
      const queueConn = createRedis(env, 'worker');
      const workerConn = createRedis(env, 'worker');
      const relayConn = createRedis(env, 'writer');
      const gate = await ctx.gateFor(relayConn);
      const queue = new Queue(PERSIST_QUEUE, { connection: queueConn, prefix: keys.queuePrefix(PERSIST_QUEUE) });
      queue.on('error', () => {}); // tests that restart Redis see connection errors; the relay retries
      const relay = new Relay({
        redis: relayConn,
        keys,
        queue,
        gate,
        batch: env.RELAY_BATCH,
        log,
        consumer: 'test',
        jobOptions: persistJobOptions(env.PERSIST_ATTEMPTS, env.PERSIST_BACKOFF_MS),
        timeZone: env.BUSINESS_TIMEZONE,
      });
      await relay.start();
      const worker: Worker = startPersistWorker({
        connection: workerConn,
        prefix: keys.queuePrefix(PERSIST_QUEUE),
        sql: db.sql,
        concurrency,
        log,
        lockMs: opts.lockMs,
        afterCommit: async (ops) => {
          await notifyPersisted(ops, db.sql, app.pushes, app.engagement);
          await enforceHits(redis, keys, await assessTransferFanIn(db.sql, ops, app.riskRules));
          await noteRedemptions(redis, keys, ops);
        },
      });
      const pipeline: Pipeline = {
        relay,
        async drain(timeoutMs = 30_000) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const lens = await Promise.all(
              Array.from({ length: keys.partitions }, (_, p) => redis.xlen(keys.outbox(p))),
            );
            const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
            const busy = lens.reduce((a, b) => a + b, 0) + Object.values(counts).reduce((a, b) => a + b, 0);
            if (busy === 0) return;
            if (Date.now() > deadline) throw new Error(`pipeline did not drain: ${busy} left`);
            await new Promise((r) => setTimeout(r, 50));
          }
        },
        async stop() {
          gate.stop();
          await relay.stop();
          await worker.close();
          await queue.close();
          for (const c of [queueConn, workerConn, relayConn]) c.disconnect();
        },
      };
      pipelines.push(pipeline);
      return pipeline;
    },
    async gateFor(conn) {
      await redisReady(conn);
      const gate = new RedisGate({ redis: conn, keys, sql: db.sql });
      gate.watch(conn);
      gateWrites(conn, gate);
      gate.start(env.LAG_CHECK_MS);
      gates.push(gate);
      await gate.check();
      return gate;
    },
    async roleConnections() {
      const connection = createRedis(env, 'worker');
      const writer = createRedis(env, 'writer');
      const raw = createRedis(env, 'writer');
      extraConns.push(connection, writer, raw);
      await Promise.all([redisReady(writer), redisReady(raw)]);
      const gate = await ctx.gateFor(writer);
      return { connection, writer, raw, gate };
    },
    async close() {
      for (const g of gates) g.stop();
      for (const p of pipelines) await p.stop().catch(() => {});
      for (const c of extraConns) c.disconnect();
      await app.close();
      await deleteKeys(redis, prefix);
      redis.disconnect();
      await db.close();
      await dropTestDatabase(dbName);
    },
  };
  return ctx;
}

/** POST /v1/redemptions through app.inject, as a member with a token. */
export function redeemAs(ctx: TestContext, token: string, goodsId: number, key: string, quantity = 1) {
  return ctx.app.inject({
    method: 'POST',
    url: '/v1/redemptions',
    headers: { authorization: `Bearer ${token}`, 'idempotency-key': key },
    payload: { goodsId, quantity },
  });
}
