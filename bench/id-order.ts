/**
 * `npm run bench:ids`: how fast redemptions persist into aged tables with random ids against
 * time-ordered ones (src/crypto/ordered-id.ts). Two databases, migrated alike, each holding
 * BENCH_ID_ROWS (2,000,000) earlier redemptions — ledger rows, redemptions and their exchange
 * pushes — whose op ids and exchange numbers have that database's shape: random (the ids before
 * time-ordering: 128 random bits; PM + 100 random bits) or time-ordered (as issued now). Then, in
 * rounds that alternate the two, BENCH_ID_BATCHES batches of 700 redemptions go through what the
 * persist worker runs for them (persistBatch, then notifyExchanges' push records), after a
 * CHECKPOINT each; the clock and the WAL written are read around them. Writes
 * bench/results/ids.md. Own databases (points_mall_ids_random, _ordered), dropped afterwards.
 */
import { writeFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import postgres from 'postgres';
import { loadEnv } from '../src/config/env.ts';
import { createDb, type Sql } from '../src/db/client.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { poolBytes, randomHex } from '../src/crypto/random-pool.ts';
import { CROCKFORD } from '../src/crypto/ordered-id.ts';
import { newExchangeNo, newOpId } from '../src/points/idempotency.ts';
import type { Op } from '../src/points/op.ts';
import { persistBatch } from '../src/persistence/persist-batch.ts';
import { notifyExchanges } from '../src/engagement/notices.ts';
import { PushService } from '../src/push/service.ts';
import { PUSH_QUEUE, sendJobOptions, type SendJob } from '../src/push/jobs.ts';
import { createRedis } from '../src/redis/client.ts';
import { deleteKeys } from '../src/redis/delete-prefix.ts';

const ROWS = Number(process.env.BENCH_ID_ROWS ?? 2_000_000);
const BATCHES = Number(process.env.BENCH_ID_BATCHES ?? 60);
const ROUNDS = Number(process.env.BENCH_ID_ROUNDS ?? 3);
const BATCH = 700;
const MEMBERS = 100_000;
const GOODS = 50;
const PREFIX = 'pmids';
const SHAPES = ['random', 'ordered'] as const;
type Shape = (typeof SHAPES)[number];

/** The ids as they were issued before time-ordering. */
const legacy = {
  opId: () => randomHex(16),
  exchangeNo: () => {
    let out = 'PM';
    for (const b of poolBytes(20)) out += CROCKFORD[b & 31];
    return out;
  },
};
const issue: Record<Shape, { opId: () => string; exchangeNo: () => string }> = {
  random: legacy,
  ordered: { opId: newOpId, exchangeNo: newExchangeNo },
};

const base = loadEnv();
const admin = postgres(new URL('/postgres', base.DATABASE_URL).toString(), { max: 1, onnotice: () => {} });
const dbName = (s: Shape) => `points_mall_ids_${s}`;
const dbUrl = (s: Shape) => {
  const u = new URL(base.DATABASE_URL);
  u.pathname = `/${dbName(s)}`;
  return u.toString();
};
const redis = createRedis(base, 'worker');
const log = (msg: string) => console.log(`[ids] ${msg}`);

/**
 * The earlier redemptions, in SQL (millions of rows from JS would take longer than the bench): op
 * ids and exchange numbers in the database's shape, one a millisecond over the last days.
 */
async function prefill(sql: Sql, shape: Shape): Promise<void> {
  await sql`INSERT INTO users (username, email, password_hash) SELECT 'id' || i, 'id' || i || '@bench.local', 'x' FROM generate_series(1, ${MEMBERS}) AS i`;
  await sql`INSERT INTO point_accounts (user_id, available, total_earned) SELECT id, 1000000, 1000000 FROM users`;
  await sql`
    INSERT INTO point_lots (id, user_id, amount, remaining, expires_at)
    SELECT 'lot-' || id, id, 1000000, 1000000, now() + interval '300 days' FROM users`;
  await sql`
    INSERT INTO goods (name, type, points_price, total_stock)
    SELECT 'Item ' || i, 'physical', 10, 1000000 FROM generate_series(1, ${GOODS}) AS i`;
  const alphabet = CROCKFORD;
  await sql.unsafe(`
    CREATE FUNCTION pg_temp.crockford(ms bigint, n int) RETURNS text LANGUAGE sql AS $$
      SELECT string_agg(substr('${alphabet}', ((ms >> (5 * (n - 1 - k))) & 31)::int + 1, 1), '' ORDER BY k)
      FROM generate_series(0, n - 1) AS k $$`);
  const from = Date.now() - ROWS - 60_000;
  const opId =
    shape === 'ordered'
      ? `lpad(to_hex(${from}::bigint + g), 12, '0') || substr(md5(random()::text), 1, 20)`
      : `md5(random()::text || g)`;
  const exchangeNo =
    shape === 'ordered'
      ? `'PM' || pg_temp.crockford(${from}::bigint + g, 9) || upper(substr(md5(random()::text), 1, 13))`
      : `'PM' || upper(substr(md5(random()::text), 1, 20))`;
  await sql.unsafe(`
    CREATE TEMP TABLE aged AS
    SELECT ${opId} AS op_id, ${exchangeNo} AS exchange_no, 1 + (random() * (${MEMBERS} - 1))::bigint AS user_id,
           1 + (g % ${GOODS}) AS goods_id, to_timestamp((${from}::bigint + g) / 1000.0) AS at
    FROM generate_series(1, ${ROWS}) AS g`);
  await sql`
    INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, request_hash, idem_key, created_at)
    SELECT op_id, user_id, -10, 1000, 'spend', 'redemption', goods_id::text, substr(md5(op_id), 1, 16), substr(md5(op_id || 'k'), 1, 32), at
    FROM aged ORDER BY at`;
  await sql`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, status, lots, created_at)
    SELECT op_id, op_id, exchange_no, user_id, goods_id, 1, 10, 'confirmed', jsonb_build_array(jsonb_build_array('lot-' || user_id, 10, 0)), at
    FROM aged ORDER BY at`;
  await sql`
    INSERT INTO push_records (user_id, type, title, body, data, dedupe_key, status, sent_at, created_at)
    SELECT user_id, 'exchange_confirmation', 'Redemption confirmed', '1 × Item for 10 points. Exchange number ' || exchange_no || '.',
           jsonb_build_object('redemptionId', op_id, 'exchangeNo', exchange_no, 'goodsId', goods_id::text), 'exchange:' || op_id, 'sent', at, at
    FROM aged ORDER BY at`;
  await sql`DROP TABLE aged`;
  await sql`VACUUM ANALYZE`;
}

function redemptions(shape: Shape): Op[] {
  const at = Date.now();
  return Array.from({ length: BATCH }, (): Op => {
    const userId = 1 + Math.floor(Math.random() * MEMBERS);
    const goodsId = 1 + Math.floor(Math.random() * GOODS);
    const opId = issue[shape].opId();
    return {
      opId, kind: 'spend', userId, delta: -10, balanceAfter: 1000, available: 1000, bizType: 'redemption', bizId: String(goodsId),
      at, h: randomHex(8), k: randomHex(16), t: randomHex(8), goodsId, quantity: 1, exchangeNo: issue[shape].exchangeNo(),
      lots: [[`lot-${userId}`, 10, at + 300 * 86_400_000]],
    } as Op;
  });
}

interface Run {
  ms: number;
  walBytes: number;
}

async function measure(sql: Sql, pushes: PushService, shape: Shape): Promise<Run> {
  await sql`CHECKPOINT`;
  const [{ lsn }] = await sql<Array<{ lsn: string }>>`SELECT pg_current_wal_lsn()::text AS lsn`;
  const t0 = performance.now();
  for (let b = 0; b < BATCHES; b++) {
    const ops = redemptions(shape);
    await persistBatch(sql, ops);
    await notifyExchanges(ops, sql, pushes);
  }
  const ms = performance.now() - t0;
  const [{ bytes }] = await sql<Array<{ bytes: string }>>`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn)::text AS bytes`;
  return { ms, walBytes: Number(bytes) };
}

const dbs = new Map<Shape, ReturnType<typeof createDb>>();
const queues: Queue<SendJob>[] = [];
async function cleanup(): Promise<void> {
  for (const q of queues) await q.close().catch(() => {});
  for (const db of dbs.values()) await db.close().catch(() => {});
  for (const s of SHAPES) await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName(s)} WITH (FORCE)`).catch(() => {});
  await deleteKeys(redis, PREFIX).catch(() => {});
  await admin.end();
  redis.disconnect();
}
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

try {
  const pushes = new Map<Shape, PushService>();
  for (const shape of SHAPES) {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName(shape)} WITH (FORCE)`);
    await migrateDatabase(dbUrl(shape));
    // the prefill's statements run for minutes: no statement timeout here
    const db = createDb(dbUrl(shape), 2, { DATABASE_STATEMENT_TIMEOUT_MS: 0, DATABASE_LOCK_TIMEOUT_MS: 0 });
    dbs.set(shape, db);
    const t0 = Date.now();
    await prefill(db.sql, shape);
    log(`${shape}: ${ROWS.toLocaleString('en-US')} aged redemptions (ledger, redemptions, push records) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const queue = new Queue<SendJob>(PUSH_QUEUE, { connection: redis, prefix: `${PREFIX}:${shape}` });
    queues.push(queue);
    pushes.set(shape, new PushService(db.sql, queue, sendJobOptions(base)));
  }
  const runs: Record<Shape, Run[]> = { random: [], ordered: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const shape of round % 2 === 1 ? SHAPES : [...SHAPES].reverse()) {
      const r = await measure(dbs.get(shape)!.sql, pushes.get(shape)!, shape);
      runs[shape].push(r);
      log(`round ${round} ${shape.padEnd(7)}: ${Math.round((BATCHES * BATCH) / (r.ms / 1000))} redemptions/s, ${(r.walBytes / (BATCHES * BATCH) / 1024).toFixed(1)} KiB of WAL each`);
    }
  }
  const total = (s: Shape) => runs[s].reduce((a, r) => ({ ms: a.ms + r.ms, walBytes: a.walBytes + r.walBytes }), { ms: 0, walBytes: 0 });
  const ops = BATCHES * BATCH * ROUNDS;
  const rate = (s: Shape) => ops / (total(s).ms / 1000);
  const wal = (s: Shape) => total(s).walBytes / ops / 1024;
  const lines = [
    '# Persisting into aged tables: random ids against time-ordered ids',
    '',
    `\`npm run bench:ids\`, ${new Date().toISOString().slice(0, 10)}: each database held ${ROWS.toLocaleString('en-US')} earlier redemptions; ` +
      `${ROUNDS} rounds (alternating) of ${BATCHES} batches of ${BATCH} redemptions through persistBatch and notifyExchanges, each after a CHECKPOINT.`,
    '',
    '| ids | redemptions/s | WAL per redemption | per round (redemptions/s) |',
    '|---|---|---|---|',
    ...SHAPES.map(
      (s) =>
        `| ${s} | ${Math.round(rate(s)).toLocaleString('en-US')} | ${wal(s).toFixed(1)} KiB | ${runs[s].map((r) => Math.round((BATCHES * BATCH) / (r.ms / 1000)).toLocaleString('en-US')).join(' · ')} |`,
    ),
    '',
    `Time-ordered ids: ${(rate('ordered') / rate('random')).toFixed(2)}× the redemptions persisted per second, ${(wal('ordered') / wal('random')).toFixed(2)}× the WAL.`,
    '',
  ];
  writeFileSync(new URL('./results/ids.md', import.meta.url), lines.join('\n'));
  console.log(`\n${lines.join('\n')}`);
} finally {
  await cleanup();
}
