/**
 * Lifecycle measurements (npm run bench:lifecycle): how long `rebuild` takes for 100,000 members
 * (accounts + lots from Postgres into an empty Redis), how many members per second the expire
 * job handles, and persisted rows per second with 1 and 2 persist processes. Own database (points_mall_lifecycle) and Redis prefix, dropped afterwards.
 */
import postgres from 'postgres';
import { loadEnv } from '../src/config/env.ts';
import { createDb } from '../src/db/client.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { createRedis } from '../src/redis/client.ts';
import { deleteKeys } from '../src/redis/delete-prefix.ts';
import { createKeys } from '../src/redis/keys.ts';
import { rebuildFromPostgres } from '../src/recovery/rebuild.ts';
import { ExpiryService } from '../src/expiry/service.ts';
import { newOpId } from '../src/points/idempotency.ts';
import { measurePersistScale } from './persist-scale.ts';

const MEMBERS = Number(process.env.LIFECYCLE_MEMBERS ?? 100_000);
const DB = 'points_mall_lifecycle';
const PREFIX = 'pmlife';

const base = loadEnv();
const url = new URL(base.DATABASE_URL);
url.pathname = `/${DB}`;
const admin = postgres(new URL('/postgres', base.DATABASE_URL).toString(), { max: 1, onnotice: () => {} });
await admin.unsafe(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
await admin.end();
await migrateDatabase(url.toString());
const { sql, close } = createDb(url.toString(), 4);
const redis = createRedis(base, 'worker');
const queueConnection = createRedis(base, 'worker');
const keys = createKeys({ prefix: PREFIX, partitions: base.PARTITIONS, cluster: Boolean(base.REDIS_CLUSTER_NODES) });

const wipeRedis = () => deleteKeys(redis, PREFIX);

try {
  await wipeRedis();
  console.log(`seeding ${MEMBERS} members with 3 lots each in Postgres…`);
  await sql`
    INSERT INTO users (username, email, password_hash)
    SELECT 'life' || i, 'life' || i || '@bench.local', 'x' FROM generate_series(1, ${MEMBERS}) AS i`;
  await sql`INSERT INTO point_accounts (user_id, available, total_earned) SELECT id, 300, 300 FROM users`;
  await sql`
    INSERT INTO point_lots (id, user_id, amount, remaining, expires_at)
    SELECT 'l' || u.id || '-' || k, u.id, 100, 100, now() + (k * 30 || ' days')::interval
    FROM users u, generate_series(1, 3) AS k`;

  let t = Date.now();
  const r = await rebuildFromPostgres(sql, redis, keys, { idempotencyTtlSeconds: 86_400 });
  const rebuildMs = Date.now() - t;
  console.log(`rebuild: ${r.members} members, ${r.lots} lots in ${rebuildMs} ms (${Math.round(r.members / (rebuildMs / 1000))} members/s)`);

  await wipeRedis();
  const ids = (await sql<Array<{ id: number }>>`SELECT id FROM users ORDER BY id`).map((u) => u.id);
  const past = Date.now() - 86_400_000;
  console.log(`crediting ${ids.length} members with a lot that has already expired…`);
  for (let i = 0; i < ids.length; i += 2000) {
    await Promise.all(
      ids.slice(i, i + 2000).map(async (uid) => {
        await redis.hset(keys.account(uid), 'avail', 0, 'earned', 0);
        const opId = newOpId();
        await redis.pmEarn(
          keys.account(uid), keys.lotsByExpiry(uid), keys.lotRemaining(uid), keys.idem(uid, opId),
          keys.dailyCap(uid, 'grant'), keys.outboxOf(uid), keys.expiryIndexOf(uid),
          opId, uid, 50, 'grant', '0', 0, 0, 1000, 'h', 600, past, '{}', opId, 0, '{"tiers":[0],"earn":[1000],"applyTier":0,"campaign":1000,"lifetime":1}',
        );
      }),
    );
  }
  t = Date.now();
  const e = await new ExpiryService({ redis, keys }).expireDue();
  const expireMs = Date.now() - t;
  console.log(`expire: ${e.members} members, ${e.lots} lots, ${e.points} points in ${expireMs} ms (${Math.round(e.members / (expireMs / 1000))} members/s)`);

  const childEnv: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: url.toString(), REDIS_PREFIX: PREFIX, LOG_LEVEL: 'warn' };
  await measurePersistScale({ sql, connection: queueConnection, keys, env: base, childEnv });
} finally {
  await wipeRedis();
  redis.disconnect();
  queueConnection.disconnect();
  await close();
  const cleanup = postgres(new URL('/postgres', base.DATABASE_URL).toString(), { max: 1, onnotice: () => {} });
  await cleanup.unsafe(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await cleanup.end();
}
