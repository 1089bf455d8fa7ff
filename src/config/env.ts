/**
 * Process configuration: one TypeBox schema validated once at boot. Every env variable the
 * system reads is declared here (the README's table mirrors it). Besides each variable's own
 * shape, loadEnv refuses what is unsafe as a whole: public secrets in production, a proxy trust
 * that lets clients pick their address, and settings whose combination can oversell.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { assertTimeZone } from '../engagement/business-day.ts';
import { parseAddressList, parseClusterNodes, parseTrustProxy } from './addresses.ts';
import { parseEncryptionKeys } from '../crypto/keyring.ts';

const Int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  Type.Integer({ default: def, minimum: min, maximum: max });
const Bool = (def: boolean) => Type.Boolean({ default: def });

export const EnvSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Int(3000, 0, 65535),
  API_PROCESSES: Int(1, 1, 64),
  DATABASE_URL: Type.String({ default: 'postgres://postgres@127.0.0.1:5432/points_mall' }),
  DATABASE_POOL: Int(10, 1, 200),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379' }),
  // a Redis Cluster instead of one Redis: "host:port,host:port,…" (any of its nodes; the rest are
  // discovered); when set it wins over REDIS_URL (src/redis/client.ts)
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ minLength: 1 })),
  // replicated acknowledgements: each write is answered only once this many replicas hold it
  // (WAIT, src/redis/replica-wait.ts); 0 answers once the master has it. A WAIT that runs out of
  // REDIS_WAIT_TIMEOUT_MS short of them answers 503 (retry with the same Idempotency-Key)
  REDIS_WAIT_REPLICAS: Int(0, 0, 16),
  REDIS_WAIT_TIMEOUT_MS: Int(1_000, 1, 60_000),
  REDIS_PREFIX: Type.String({ default: 'pm', pattern: '^[a-zA-Z0-9_-]+$' }),
  PARTITIONS: Int(16, 1, 1024),
  // no default here: loadEnv supplies DEV_JWT_SECRET in development only
  JWT_SECRET: Type.String({ minLength: 32 }),
  // receiver info at rest (src/crypto/): "kid:base64key,…", 32-byte keys, the first encrypts; no
  // default here either: loadEnv supplies DEV_ENCRYPTION_KEYS in development only
  ENCRYPTION_KEYS: Type.String({ minLength: 1 }),
  JWT_EXPIRES_IN: Type.String({ default: '1d' }),
  ADMIN_EMAIL: Type.Optional(Type.String()),
  ADMIN_PASSWORD: Type.Optional(Type.String()),
  ADMIN_USERNAME: Type.String({ default: 'admin' }),
  RATE_LIMIT_MAX: Int(600, 1),
  RATE_LIMIT_WINDOW_MS: Int(60_000, 1000),
  RATE_LIMIT_ALLOWLIST: Type.String({ default: '' }),
  TRUST_PROXY: Type.String({ default: 'false' }),
  LOGIN_FAILS_PER_IP: Int(100, 1),
  LOGIN_FAILS_PER_ACCOUNT: Int(10, 1),
  LOGIN_WINDOW_MS: Int(900_000, 1000),
  REGISTER_PER_IP: Int(10, 1),
  REGISTER_WINDOW_MS: Int(3_600_000, 1000),
  RESERVATION_TIMEOUT_MS: Int(15_000, 1000),
  // 'auto' (default): a redemption is one script on a single-node Redis and the reserve → charge →
  // confirm saga on a cluster; 'saga': the saga everywhere
  REDEEM_PATH: Type.Union([Type.Literal('auto'), Type.Literal('saga')], { default: 'auto' }),
  // 'auto' (default): a transfer is one script over both members on a single-node Redis and the
  // debit → credit → done saga on a cluster; 'saga': the saga everywhere
  TRANSFER_PATH: Type.Union([Type.Literal('auto'), Type.Literal('saga')], { default: 'auto' }),
  // 'auto' (default): a lottery draw is one script over the lottery and the member on a single-node
  // Redis and the prize hold → draw → confirm saga on a cluster; 'saga': the saga everywhere
  DRAW_PATH: Type.Union([Type.Literal('auto'), Type.Literal('saga')], { default: 'auto' }),
  IDEMPOTENCY_TTL_SECONDS: Int(86_400, 60),
  // the most calls of a batched hot-path script one script call runs (src/redis/script-batch.ts; 1: each its own call)
  SCRIPT_BATCH_MAX: Int(32, 1, 256),
  LOT_EXPIRY_DAYS: Int(365, 1, 36_500),
  RULES_REFRESH_MS: Int(10_000, 100),
  RELAY_BATCH: Int(2000, 1, 5000),
  RELAY_LINGER_MS: Int(250, 0, 1000),
  RELAY_CLAIM_IDLE_MS: Int(30_000, 1000),
  // a persist batch that fails this many times is parked (kept until an operator retries it)
  PERSIST_ATTEMPTS: Int(20, 1, 1000),
  // the calendar that makes a day (caps, check-in, login bonus, tasks, daily boards); IANA name
  BUSINESS_TIMEZONE: Type.String({ default: 'UTC', minLength: 1, maxLength: 64 }),
  PERSIST_BACKOFF_MS: Int(500, 10),
  WORKER_CONCURRENCY: Int(4, 1, 256),
  SWEEP_EVERY_MS: Int(5_000, 100),
  EXPIRE_EVERY_MS: Int(60_000, 100),
  EXPIRE_BATCH: Int(500, 1, 10_000),
  RECONCILE_EVERY_MS: Int(60_000, 100),
  REMINDERS_EVERY_MS: Int(900_000, 100),
  // engagement role: how often it follows the ledger (task progress, commissions), rows per page
  ENGAGEMENT_EVERY_MS: Int(1_000, 50),
  ENGAGEMENT_BATCH: Int(500, 1, 10_000),
  // catalog role: how often the hot goods list in Redis is recomputed from Postgres
  HOT_GOODS_EVERY_MS: Int(60_000, 100),
  // recommend role: the model in Redis is rebuilt from Postgres this often, and sooner once this
  // many catalog redemptions were persisted since the last build (src/recommendations/)
  RECOMMEND_EVERY_MS: Int(300_000, 1_000),
  RECOMMEND_AFTER_REDEMPTIONS: Int(500, 1, 100_000_000),
  // analytics role: how often the daily rollups are brought up to date, and how many past days
  // (today included) each run recomputes whole, for ops persisted after their day ended
  ANALYTICS_EVERY_MS: Int(300_000, 1_000),
  ANALYTICS_RECOMPUTE_DAYS: Int(2, 1, 366),
  // CSV/XLSX exports (src/exports/): rows read per cursor batch, exports running at once per process
  EXPORT_BATCH: Int(1_000, 10, 100_000),
  EXPORT_MAX_CONCURRENT: Int(2, 1, 64),
  TASK_LOCK_MS: Int(10_000, 500),
  // audit trail (src/audit/): rows older than this are deleted by the sweeper role's retention task
  AUDIT_RETENTION_DAYS: Int(90, 1, 36_500),
  // points one member may transfer to others per business day (src/transfers/)
  TRANSFER_DAILY_MAX: Int(5_000, 1, 1_000_000_000),
  // A/B experiments: below this many exposed members a variant's results carry a warning
  EXPERIMENT_MIN_SAMPLE: Int(100, 1, 1_000_000_000),
  READY_MAX_BACKLOG: Int(100_000, 1),
  // Metrics (src/metrics/): a bearer token /metrics wants when set (API and workers); the port the
  // worker processes serve their own /metrics on (0: none); how often the metrics role computes
  // the business gauges
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  WORKER_METRICS_PORT: Int(0, 0, 65535),
  BUSINESS_METRICS_EVERY_MS: Int(60_000, 1000),
  LAG_CHECK_MS: Int(2_000, 50),
  BENCH_ROUTES: Bool(false),
  // Push notifications (src/push): transports tried in order, first one serving the device's platform
  PUSH_TRANSPORT: Type.String({ default: 'log', pattern: '^(log|fcm|apns|webhook)(,(log|fcm|apns|webhook))*$' }),
  PUSH_ATTEMPTS: Int(5, 1, 50),
  PUSH_BACKOFF_MS: Int(2_000, 1),
  PUSH_TIMEOUT_MS: Int(10_000, 100),
  BROADCAST_BATCH: Int(500, 1, 5000),
  FCM_SERVICE_ACCOUNT_JSON: Type.Optional(Type.String()),
  FCM_BASE_URL: Type.String({ default: 'https://fcm.googleapis.com' }),
  FCM_TOKEN_URL: Type.Optional(Type.String()),
  APNS_KEY_PEM: Type.Optional(Type.String()),
  APNS_KEY_ID: Type.Optional(Type.String()),
  APNS_TEAM_ID: Type.Optional(Type.String()),
  APNS_TOPIC: Type.Optional(Type.String()),
  APNS_BASE_URL: Type.String({ default: 'https://api.push.apple.com' }),
  WEBHOOK_URL: Type.Optional(Type.String()),
  WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  // Bounds: a slow query, a lock wait or a stalled Redis fails within these instead of hanging
  // (0 turns a Postgres timeout off); registering a device beyond the cap drops the oldest
  DATABASE_STATEMENT_TIMEOUT_MS: Int(30_000, 0),
  DATABASE_LOCK_TIMEOUT_MS: Int(5_000, 0),
  REDIS_COMMAND_TIMEOUT_MS: Int(2_000, 10),
  MAX_DEVICES_PER_MEMBER: Int(10, 1, 1000),
  // Commerce: points per 1.00 of the currency (100 points pay 1.00 = 100 minor units), how long an
  // order waits for its payment, when a shipped order completes itself, the expiry given back to
  // refunded points whose lot expired meanwhile, the order pump's period, the longest admin hold
  POINTS_PER_CURRENCY_UNIT: Int(100, 1, 1_000_000),
  ORDER_PAYMENT_TIMEOUT_MS: Int(900_000, 1000),
  AUTO_COMPLETE_DAYS: Int(7, 1, 365),
  REFUND_GRACE_DAYS: Int(30, 1, 3650),
  ORDERS_EVERY_MS: Int(5_000, 100),
  HOLD_MAX_TTL_SECONDS: Int(30 * 86_400, 1),
  // HMAC-SHA256 secret of the payment provider's webhook (the built-in `simulated` provider signs with it)
  PAYMENT_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 16 })),
});

export type Env = Static<typeof EnvSchema>;

export class EnvError extends Error {}

/** Signs tokens when NODE_ENV is development and JWT_SECRET is unset, so a fresh clone starts. */
const DEV_JWT_SECRET = 'dev-only-secret-change-me-0123456789';

/** Signs and checks payment webhooks outside production when PAYMENT_WEBHOOK_SECRET is unset. */
export const DEV_PAYMENT_SECRET = 'dev-only-payment-webhook-secret';

const GENERATE = 'generate one with `openssl rand -base64 48`';

/** Seals receiver info when NODE_ENV is development and ENCRYPTION_KEYS is unset; refused in production. */
const DEV_ENCRYPTION_KEYS = 'dev:ZGV2LW9ubHktcmVjZWl2ZXIta2V5LTAxMjM0NTY3ODk=';

const GENERATE_KEY = 'generate one with `echo "k1:$(openssl rand -base64 32)"`';

/**
 * Values anyone can read (this repository, its docs, .env.example, older compose files). Each
 * would let a stranger sign an admin token or log in as the admin: refused in production.
 */
const KNOWN_SECRETS: Record<'JWT_SECRET' | 'ADMIN_PASSWORD' | 'WEBHOOK_SECRET' | 'PAYMENT_WEBHOOK_SECRET', readonly string[]> = {
  JWT_SECRET: [DEV_JWT_SECRET, 'replace-with-the-output-of-openssl-rand-base64-48', 'change-me-to-a-long-random-secret-string'],
  ADMIN_PASSWORD: ['change-me-admin', 'replace-with-a-long-admin-password'],
  WEBHOOK_SECRET: ['replace-with-the-webhook-hmac-secret'],
  PAYMENT_WEBHOOK_SECRET: [DEV_PAYMENT_SECRET, 'replace-with-the-payment-webhook-secret'],
};

const MIN_PRODUCTION_ADMIN_PASSWORD = 12;

/** Reads, defaults, coerces and validates; throws EnvError naming every bad variable. */
export function loadEnv(source: Record<string, string | undefined> = process.env, overrides: Partial<Env> = {}): Env {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const v = source[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, picked));
  const merged: Record<string, unknown> = { ...(converted as object), ...overrides };
  const problems: string[] = [];
  if (merged.PAYMENT_WEBHOOK_SECRET === undefined) {
    if (merged.NODE_ENV !== 'production') merged.PAYMENT_WEBHOOK_SECRET = DEV_PAYMENT_SECRET;
    else problems.push(`PAYMENT_WEBHOOK_SECRET is missing: it is required in production (${GENERATE})`);
  }
  if (merged.JWT_SECRET === undefined) {
    if (merged.NODE_ENV === 'development') merged.JWT_SECRET = DEV_JWT_SECRET;
    else problems.push(`JWT_SECRET is missing: it is required unless NODE_ENV is development (${GENERATE})`);
  }
  if (merged.ENCRYPTION_KEYS === undefined) {
    if (merged.NODE_ENV === 'development') merged.ENCRYPTION_KEYS = DEV_ENCRYPTION_KEYS;
    else problems.push(`ENCRYPTION_KEYS is missing: it is required unless NODE_ENV is development (${GENERATE_KEY})`);
  }
  const invalid = new Set<string>();
  for (const e of Value.Errors(EnvSchema, merged)) {
    const name = e.path.slice(1) || '(root)';
    if ((name === 'JWT_SECRET' || name === 'ENCRYPTION_KEYS') && merged[name] === undefined) continue;
    invalid.add(name);
    problems.push(`${name}: ${e.message}`);
  }
  const env = merged as Env;
  const valid = (...names: Array<keyof Env>) => names.every((n) => !invalid.has(n));
  problems.push(...addressProblems(merged), ...productionProblems(env));
  if (valid('IDEMPOTENCY_TTL_SECONDS', 'RESERVATION_TIMEOUT_MS', 'SWEEP_EVERY_MS', 'TASK_LOCK_MS')) {
    problems.push(...unsafeCombinations(env));
  }
  if (valid('PUSH_TRANSPORT')) problems.push(...missingPushSettings(env));
  if (typeof env.ENCRYPTION_KEYS === 'string' && valid('ENCRYPTION_KEYS')) problems.push(...encryptionKeyProblems(env));
  if (valid('BUSINESS_TIMEZONE')) {
    try {
      assertTimeZone(env.BUSINESS_TIMEZONE);
    } catch {
      problems.push(`BUSINESS_TIMEZONE: "${env.BUSINESS_TIMEZONE}" is not an IANA time zone (e.g. UTC, Asia/Shanghai)`);
    }
  }
  if (problems.length > 0) throw new EnvError(`invalid environment: ${problems.join('; ')}`);
  return env;
}

function addressProblems(env: Record<string, unknown>): string[] {
  const out: string[] = [];
  const check = (name: string, parse: (spec: string) => unknown) => {
    const spec = env[name];
    if (typeof spec !== 'string') return;
    try {
      parse(spec);
    } catch (err) {
      out.push(`${name}: ${(err as Error).message}`);
    }
  };
  check('TRUST_PROXY', parseTrustProxy);
  check('RATE_LIMIT_ALLOWLIST', parseAddressList);
  check('REDIS_CLUSTER_NODES', parseClusterNodes);
  return out;
}

function productionProblems(env: Env): string[] {
  if (env.NODE_ENV !== 'production') return [];
  const out: string[] = [];
  for (const [name, known] of Object.entries(KNOWN_SECRETS) as Array<[keyof typeof KNOWN_SECRETS, readonly string[]]>) {
    const value = env[name];
    if (typeof value === 'string' && known.includes(value)) {
      out.push(`${name} is a known public value (a default or a placeholder): set your own in production (${GENERATE})`);
    }
  }
  if (typeof env.ADMIN_PASSWORD === 'string' && env.ADMIN_PASSWORD.length < MIN_PRODUCTION_ADMIN_PASSWORD) {
    out.push(`ADMIN_PASSWORD must be at least ${MIN_PRODUCTION_ADMIN_PASSWORD} characters in production`);
  }
  return out;
}

/**
 * ENCRYPTION_KEYS must parse (each entry named by position and key id, never by its key); in
 * production the development key may not appear in it at all, since anyone can read it here.
 */
function encryptionKeyProblems(env: Env): string[] {
  let keys: ReturnType<typeof parseEncryptionKeys>;
  try {
    keys = parseEncryptionKeys(env.ENCRYPTION_KEYS);
  } catch (err) {
    return [`ENCRYPTION_KEYS: ${(err as Error).message} (${GENERATE_KEY})`];
  }
  if (env.NODE_ENV !== 'production') return [];
  const dev = parseEncryptionKeys(DEV_ENCRYPTION_KEYS).current.key;
  const known = [...keys.byKid.values()].filter((k) => k.key.equals(dev)).map((k) => k.kid);
  return known.length > 0
    ? [`ENCRYPTION_KEYS holds the development key (key id "${known[0]}"), a known public value: set your own in production (${GENERATE_KEY})`]
    : [];
}

/**
 * The sweeper settles an expired reservation by reading its op record: found means charged
 * (confirm), absent means never charged (release the units). A record that expires before the
 * sweeper gets there turns a paid reservation into released units: an oversell. The latest the
 * sweeper gets there is the reservation timeout, plus one sweep interval, plus a task lock left by
 * a killed sweeper.
 */
function unsafeCombinations(env: Env): string[] {
  const settledWithinMs = env.RESERVATION_TIMEOUT_MS + env.SWEEP_EVERY_MS + env.TASK_LOCK_MS;
  if (env.IDEMPOTENCY_TTL_SECONDS * 1000 > settledWithinMs) return [];
  return [
    `IDEMPOTENCY_TTL_SECONDS (${env.IDEMPOTENCY_TTL_SECONDS} s) must be longer than RESERVATION_TIMEOUT_MS + ` +
      `SWEEP_EVERY_MS + TASK_LOCK_MS (${settledWithinMs} ms): op records must outlive the sweeper's deadline, or it ` +
      'releases reservations that were paid for',
  ];
}

/** A transport named in PUSH_TRANSPORT cannot start without its credentials; say so at boot. */
const PUSH_SETTINGS: Record<string, Array<keyof Env>> = {
  fcm: ['FCM_SERVICE_ACCOUNT_JSON'],
  apns: ['APNS_KEY_PEM', 'APNS_KEY_ID', 'APNS_TEAM_ID', 'APNS_TOPIC'],
  webhook: ['WEBHOOK_URL', 'WEBHOOK_SECRET'],
};

function missingPushSettings(env: Env): string[] {
  const named = env.PUSH_TRANSPORT.split(',');
  const missing = named.flatMap((t) => (PUSH_SETTINGS[t] ?? []).filter((k) => env[k] === undefined));
  return missing.length > 0 ? [`PUSH_TRANSPORT needs ${missing.join(', ')}`] : [];
}
