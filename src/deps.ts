/**
 * What domain services need: one Redis client with the scripts, the key layout, Postgres, config.
 */
import type { RedisClient } from './redis/client.ts';
import type { Env } from './config/env.ts';
import type { Sql } from './db/client.ts';
import type { Keys } from './redis/keys.ts';

export interface Deps {
  redis: RedisClient;
  keys: Keys;
  sql: Sql;
  env: Env;
}
