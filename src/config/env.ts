/**
 * Process configuration: one TypeBox schema validated once at boot. Every env variable the
 * system reads is declared here (the README's table mirrors it).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

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
  REDIS_PREFIX: Type.String({ default: 'pm', pattern: '^[a-zA-Z0-9_-]+$' }),
  PARTITIONS: Int(16, 1, 1024),
  JWT_SECRET: Type.String({ default: 'dev-only-secret-change-me-0123456789', minLength: 32 }),
  JWT_EXPIRES_IN: Type.String({ default: '1d' }),
  ADMIN_EMAIL: Type.Optional(Type.String()),
  ADMIN_PASSWORD: Type.Optional(Type.String()),
  ADMIN_USERNAME: Type.String({ default: 'admin' }),
  RATE_LIMIT_MAX: Int(600, 1),
  RATE_LIMIT_WINDOW_MS: Int(60_000, 1000),
  RATE_LIMIT_ALLOWLIST: Type.String({ default: '' }),
  TRUST_PROXY: Bool(false),
  RESERVATION_TIMEOUT_MS: Int(15_000, 1000),
  IDEMPOTENCY_TTL_SECONDS: Int(86_400, 60),
  LOT_EXPIRY_DAYS: Int(365, 1, 36_500),
  RULES_REFRESH_MS: Int(10_000, 100),
  RELAY_BATCH: Int(500, 1, 5000),
  RELAY_LINGER_MS: Int(20, 0, 1000),
  RELAY_CLAIM_IDLE_MS: Int(30_000, 1000),
  WORKER_CONCURRENCY: Int(4, 1, 256),
  SWEEP_EVERY_MS: Int(5_000, 100),
  EXPIRE_EVERY_MS: Int(60_000, 100),
  EXPIRE_BATCH: Int(500, 1, 10_000),
  RECONCILE_EVERY_MS: Int(60_000, 100),
  REMINDERS_EVERY_MS: Int(900_000, 100),
  TASK_LOCK_MS: Int(10_000, 500),
  READY_MAX_BACKLOG: Int(100_000, 1),
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
});

export type Env = Static<typeof EnvSchema>;

export class EnvError extends Error {}

/** Reads, defaults, coerces and validates; throws EnvError naming every bad variable. */
export function loadEnv(source: Record<string, string | undefined> = process.env, overrides: Partial<Env> = {}): Env {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const v = source[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, picked));
  const merged = { ...(converted as object), ...overrides };
  const errors = [...Value.Errors(EnvSchema, merged)];
  if (errors.length > 0) {
    const lines = errors.map((e) => `${e.path.slice(1) || '(root)'}: ${e.message}`);
    throw new EnvError(`invalid environment: ${lines.join('; ')}`);
  }
  const env = merged as Env;
  if (env.NODE_ENV === 'production' && env.JWT_SECRET === EnvSchema.properties.JWT_SECRET.default) {
    throw new EnvError('invalid environment: JWT_SECRET must be set in production');
  }
  const missing = missingPushSettings(env);
  if (missing.length > 0) throw new EnvError(`invalid environment: PUSH_TRANSPORT needs ${missing.join(', ')}`);
  return env;
}

/** A transport named in PUSH_TRANSPORT cannot start without its credentials; say so at boot. */
const PUSH_SETTINGS: Record<string, Array<keyof Env>> = {
  fcm: ['FCM_SERVICE_ACCOUNT_JSON'],
  apns: ['APNS_KEY_PEM', 'APNS_KEY_ID', 'APNS_TEAM_ID', 'APNS_TOPIC'],
  webhook: ['WEBHOOK_URL', 'WEBHOOK_SECRET'],
};

function missingPushSettings(env: Env): string[] {
  const named = env.PUSH_TRANSPORT.split(',');
  return named.flatMap((t) => (PUSH_SETTINGS[t] ?? []).filter((k) => env[k] === undefined));
}
