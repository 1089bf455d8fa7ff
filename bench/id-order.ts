/**
 * `npm run bench:ids`: how fast redemptions persist into aged tables with random ids against
 * time-ordered ones (src/crypto/ordered-id.ts). One database is migrated and filled with
 * BENCH_ID_ROWS (2,000,000) earlier redemptions — ledger rows, redemptions and their pushes — with
 * the ids a deployment held before the change (128 random bits; PM + 100 random bits), and copied
 * twice.
 * Then, in rounds that rotate the copies, BENCH_ID_BATCHES batches of 700 redemptions go through
 * what the persist worker runs for them (persistBatch, then notifyExchanges' push records), with
 * random new ids in one copy, time-ordered ones in the second, and time-ordered ones with the WAL
 * compressed (wal_compression=lz4, as docker-compose.yml runs Postgres) in the third, after a
 * CHECKPOINT each; the clock, the WAL written and the indexes' growth are read around them.
 * Writes bench/results/ids.md. Own databases (points_mall_ids_0…2), dropped afterwards.
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
type Shape = 'random' | 'ordered';
/** What is compared, in one run: the ids' shape, and the WAL's compression (a database setting) with the new shape. */
const VARIANTS = [
  { name: 'random', ids: 'random', wal: undefined },
  { name: 'ordered', ids: 'ordered', wal: undefined },
  { name: 'ordered + lz4', ids: 'ordered', wal: 'lz4' },
] as const satisfies ReadonlyArray<{ name: string; ids: Shape; wal?: string }>;
type Variant = (typeof VARIANTS)[number];

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
const dbName = (v: Variant) => `points_mall_ids_${VARIANTS.indexOf(v)}`;
const dbUrl = (v: Variant) => {
  const u = new URL(base.DATABASE_URL);
  u.pathname = `/${dbName(v)}`;
  return u.toString();
};
const redis = createRedis(base, 'worker');
const log = (msg: string) => console.log(`[ids] ${msg}`);

/**
 * The earlier redemptions, in SQL (millions of rows from JS would take longer than the bench), as
 * a deployment holds them when it moves to time-ordered ids: op ids of 128 random bits, exchange
 * numbers of 100, and the other kinds of keys that sort above a time-ordered id — expiry op ids
 * ('x' + hash) among the ledger's, other pushes' dedupe keys (tier:, expiry:) beside exchange:. So
 * the new ids of either shape go in among existing keys, not past them: the ordered side gets no
 * empty right edge to fill (conservative for it). One database is filled, the other copied from it.
 */
async function prefill(sql: Sql): Promise<void> {
  await sql`INSERT INTO users (username, email, password_hash) SELECT 'id' || i, 'id' || i || '@bench.local', 'x' FROM generate_series(1, ${MEMBERS}) AS i`;
  await sql`INSERT INTO point_accounts (user_id, available, total_earned) SELECT id, 1000000, 1000000 FROM users`;
  await sql`
    INSERT INTO point_lots (id, user_id, amount, remaining, expires_at)
    SELECT 'lot-' || id, id, 1000000, 1000000, now() + interval '300 days' FROM users`;
  await sql`
    INSERT INTO goods (name, type, points_price, total_stock)
    SELECT 'Item ' || i, 'physical', 10, 1000000 FROM generate_series(1, ${GOODS}) AS i`;
  // n Crockford characters of the low 5n bits of v
  await sql.unsafe(`
    CREATE FUNCTION pg_temp.crockford(v bigint, n int) RETURNS text LANGUAGE sql AS $$
      SELECT string_agg(substr('${CROCKFORD}', ((v >> (5 * (n - 1 - k))) & 31)::int + 1, 1), '' ORDER BY k)
      FROM generate_series(0, n - 1) AS k $$`);
  const from = Date.now() - ROWS - 60_000;
  const bits50 = `(random() * 1125899906842623)::bigint`;
  await sql.unsafe(`
    CREATE TEMP TABLE aged AS
    SELECT CASE WHEN g % 20 = 0 THEN 'x' || substr(md5(g::text), 1, 31) ELSE md5(random()::text || g) END AS op_id,
           'PM' || pg_temp.crockford(${bits50}, 10) || pg_temp.crockford(${bits50}, 10) AS exchange_no,
           CASE g % 10 WHEN 0 THEN 'tier:' || g WHEN 5 THEN 'expiry:' || g END AS other_push,
           1 + (random() * (${MEMBERS} - 1))::bigint AS user_id, 1 + (g % ${GOODS}) AS goods_id,
           to_timestamp((${from}::bigint + g) / 1000.0) AS at
    FROM generate_series(1, ${ROWS}) AS g`);
  await sql`
    INSERT INTO ledger_entries (op_id, user_id, delta, balance_after, kind, biz_type, biz_id, request_hash, idem_key, created_at)
    SELECT op_id, user_id, -10, 1000, 'spend', 'redemption', goods_id::text, substr(md5(op_id), 1, 16), substr(md5(op_id || 'k'), 1, 32), at
    FROM aged ORDER BY at`;
  await sql`
    INSERT INTO redemptions (id, op_id, exchange_no, user_id, goods_id, quantity, points_spent, status, lots, created_at)
    SELECT op_id, op_id, exchange_no, user_id, goods_id, 1, 10, 'confirmed', jsonb_build_array(jsonb_build_array('lot-' || user_id, 10, 0)), at
    FROM aged WHERE op_id NOT LIKE 'x%' ORDER BY at`;
  await sql`
    INSERT INTO push_records (user_id, type, title, body, data, dedupe_key, status, sent_at, created_at)
    SELECT user_id, 'exchange_confirmation', 'Redemption confirmed', '1 × Item for 10 points. Exchange number ' || exchange_no || '.',
           jsonb_build_object('redemptionId', op_id, 'exchangeNo', exchange_no, 'goodsId', goods_id::text),
           COALESCE(other_push, 'exchange:' || op_id), 'sent', at, at
    FROM aged ORDER BY at`;
  await sql`DROP TABLE aged`;
  await sql`VACUUM ANALYZE`;
}

/** Bytes of every index of the tables a redemption's persisting writes to. */
async function indexBytes(sql: Sql): Promise<number> {
  const [{ bytes }] = await sql<Array<{ bytes: string }>>`
    SELECT sum(pg_relation_size(indexrelid))::text AS bytes FROM pg_index
    WHERE indrelid IN ('ledger_entries'::regclass, 'redemptions'::regclass, 'push_records'::regclass, 'point_lots'::regclass, 'point_accounts'::regclass)`;
  return Number(bytes);
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

const dbs = new Map<Variant, ReturnType<typeof createDb>>();
const queues: Queue<SendJob>[] = [];
async function cleanup(): Promise<void> {
  for (const q of queues) await q.close().catch(() => {});
  for (const db of dbs.values()) await db.close().catch(() => {});
  for (const v of VARIANTS) await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName(v)} WITH (FORCE)`).catch(() => {});
  await deleteKeys(redis, PREFIX).catch(() => {});
  await admin.end();
  redis.disconnect();
}
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

const perRound = BATCHES * BATCH;
const perSecond = (r: Run) => Math.round(perRound / (r.ms / 1000));

try {
  const [source, ...copies] = VARIANTS;
  for (const v of VARIANTS) await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName(v)} WITH (FORCE)`);
  await migrateDatabase(dbUrl(source));
  {
    // the prefill's statements run for minutes: no statement timeout here
    const db = createDb(dbUrl(source), 2, { DATABASE_STATEMENT_TIMEOUT_MS: 0, DATABASE_LOCK_TIMEOUT_MS: 0 });
    const t0 = Date.now();
    await prefill(db.sql);
    await db.close();
    log(`${ROWS.toLocaleString('en-US')} earlier redemptions (ledger, redemptions, push records) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  for (const v of copies) await admin.unsafe(`CREATE DATABASE ${dbName(v)} TEMPLATE ${dbName(source)}`);
  const pushes = new Map<Variant, PushService>();
  const indexesBefore = new Map<Variant, number>();
  const walSetting = new Map<Variant, string>();
  for (const v of VARIANTS) {
    // a database setting: every session of that database compresses its full-page images (superuser)
    await admin.unsafe(`ALTER DATABASE ${dbName(v)} SET wal_compression = ${v.wal ?? 'off'}`);
    const db = createDb(dbUrl(v), 2);
    dbs.set(v, db);
    const queue = new Queue<SendJob>(PUSH_QUEUE, { connection: redis, prefix: `${PREFIX}:${VARIANTS.indexOf(v)}` });
    queues.push(queue);
    pushes.set(v, new PushService(db.sql, queue, sendJobOptions(base)));
    indexesBefore.set(v, await indexBytes(db.sql));
    walSetting.set(v, (await db.sql<Array<{ w: string }>>`SELECT current_setting('wal_compression') AS w`)[0].w);
  }
  const runs = new Map<Variant, Run[]>(VARIANTS.map((v) => [v, []]));
  // the order rotates each round: over 3 rounds each variant runs first, in the middle and last once
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[(round + i) % VARIANTS.length];
      const r = await measure(dbs.get(v)!.sql, pushes.get(v)!, v.ids);
      runs.get(v)!.push(r);
      log(`round ${round + 1} ${v.name.padEnd(13)}: ${perSecond(r)} redemptions/s, ${(r.walBytes / perRound / 1024).toFixed(1)} KiB of WAL each`);
    }
  }
  const ops = perRound * ROUNDS;
  const row = new Map<Variant, { rate: number; walKiB: number; indexB: number }>();
  for (const v of VARIANTS) {
    const ms = runs.get(v)!.reduce((a, r) => a + r.ms, 0);
    const walBytes = runs.get(v)!.reduce((a, r) => a + r.walBytes, 0);
    const grown = (await indexBytes(dbs.get(v)!.sql)) - indexesBefore.get(v)!;
    row.set(v, { rate: ops / (ms / 1000), walKiB: walBytes / ops / 1024, indexB: grown / ops });
  }
  const [random, ordered, lz4] = VARIANTS.map((v) => row.get(v)!);
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const lines = [
    '# Persisting into aged tables: random ids against time-ordered ids',
    '',
    `\`npm run bench:ids\`, ${new Date().toISOString().slice(0, 10)}: three copies of one database of ` +
      `${ROWS.toLocaleString('en-US')} earlier redemptions (random ids, as a deployment holds them before the change; 5% expiry op ids, 20% other pushes); ` +
      `${ROUNDS} rounds, the order rotating, of ${BATCHES} batches of ${BATCH} redemptions through persistBatch and notifyExchanges, each after a CHECKPOINT; ` +
      'the new ids random in the first copy, time-ordered in the others, the WAL compressed in the last.',
    '',
    '| new ids | wal_compression | redemptions/s | WAL per redemption | index growth per redemption | per round (redemptions/s) |',
    '|---|---|---|---|---|---|',
    ...VARIANTS.map((v) => {
      const r = row.get(v)!;
      return (
        `| ${v.ids} | ${walSetting.get(v)} | ${Math.round(r.rate).toLocaleString('en-US')} | ${r.walKiB.toFixed(1)} KiB | ${r.indexB.toFixed(0)} B | ` +
        `${runs.get(v)!.map((run) => perSecond(run).toLocaleString('en-US')).join(' · ')} |`
      );
    }),
    '',
    `Time-ordered ids against random: ${x(ordered.rate, random.rate)} the redemptions persisted per second, ${x(ordered.walKiB, random.walKiB)} the WAL, ` +
      `${x(ordered.indexB, random.indexB)} the index growth. lz4 on top: ${x(lz4.rate, ordered.rate)} the rate, ${x(lz4.walKiB, ordered.walKiB)} the WAL.`,
    '',
  ];
  writeFileSync(new URL('./results/ids.md', import.meta.url), lines.join('\n'));
  console.log(`\n${lines.join('\n')}`);
} finally {
  await cleanup();
}
