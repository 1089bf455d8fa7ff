/**
 * The process's own metrics (prom-client): runtime defaults, HTTP request durations, hot-path
 * script outcomes, points moved by the persist worker and its lag. One registry per process, so
 * with API_PROCESSES > 1 the primary sums them across processes (src/metrics/cluster.ts). State
 * shared by every process (backlog, reconcile, business gauges) is not here: it is read once per
 * scrape (src/metrics/state.ts), so aggregation never multiplies it. No label carries a member id.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const httpDuration = new Histogram({
  name: 'pm_http_request_duration_seconds',
  help: 'HTTP requests by route pattern (never the raw URL), method and status code',
  labelNames: ['route', 'method', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
  registers: [registry],
});

export const scriptOutcomes = new Counter({
  name: 'pm_script_outcomes_total',
  help: 'Hot-path Lua script answers by script and result (accepted or the domain error code)',
  labelNames: ['script', 'result'] as const,
  registers: [registry],
});

export const scriptBatchSize = new Histogram({
  name: 'pm_script_batch_size',
  help: 'Calls per script call of the batched hot-path scripts (src/redis/script-batch.ts), by script',
  labelNames: ['script'] as const,
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  registers: [registry],
});

const pointsCounter = (name: string, help: string) =>
  new Counter({ name, help, labelNames: ['biz_type'] as const, registers: [registry] });

export const pointsIssued = pointsCounter('pm_points_issued_total', 'Points credited (earn ops), counted once when persisted');
export const pointsSpent = pointsCounter('pm_points_spent_total', 'Points spent (spend ops), counted once when persisted');
export const pointsExpired = pointsCounter('pm_points_expired_total', 'Points expired (expire ops), counted once when persisted');

export const persistLag = new Histogram({
  name: 'pm_persist_lag_seconds',
  help: 'From an op acknowledged in Redis to its batch committed in Postgres',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
  registers: [registry],
});
