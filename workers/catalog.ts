/**
 * Catalog role: on its schedule (HOT_GOODS_EVERY_MS), recomputes the hot goods list — the most
 * redeemed items of the last 7 days — from Postgres and replaces it in Redis, where
 * GET /v1/goods/hot reads it without touching Postgres (src/goods/hot.ts).
 */
import type { RedisClient } from '../src/redis/client.ts';
import type { Sql } from '../src/db/client.ts';
import type { Keys } from '../src/redis/keys.ts';
import type { RedisGate } from '../src/recovery/redis-gate.ts';
import { refreshHotGoods } from '../src/goods/hot.ts';
import type { Logger } from './logger.ts';
import { gatedRun, startScheduledTask } from './scheduled-task.ts';

export async function startCatalog(o: {
  connection: RedisClient;
  writer: RedisClient;
  gate: RedisGate;
  keys: Keys;
  sql: Sql;
  everyMs: number;
  lockMs: number;
  log: Logger;
}) {
  return startScheduledTask({
    name: 'hot-goods',
    everyMs: o.everyMs,
    connection: o.connection,
    keys: o.keys,
    log: o.log,
    lockMs: o.lockMs,
    run: gatedRun(o.gate, async () => ({ hotGoods: await refreshHotGoods(o.sql, o.writer, o.keys) })),
  });
}
