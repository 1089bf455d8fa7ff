/**
 * Where tests find Postgres and Redis (overridable with TEST_PG_URL / TEST_REDIS_URL;
 * TEST_REDIS_CLUSTER_NODES runs the test contexts on a Redis Cluster instead).
 */
export const PG_BASE = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const PG_ADMIN_URL = `${PG_BASE}/postgres`;
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const dbUrl = (name: string) => `${PG_BASE}/${name}`;
export const REDIS_CLUSTER_NODES = process.env.TEST_REDIS_CLUSTER_NODES || undefined;
