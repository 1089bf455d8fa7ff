import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv, type Env } from '../src/config/env.ts';
import { isListed, parseAddressList, parseClusterNodes } from '../src/config/addresses.ts';

/** The EnvError message loadEnv throws for this input; fails the test when it does not throw. */
function envError(source: Record<string, string>, overrides: Partial<Env> = {}): string {
  let caught: unknown;
  try {
    loadEnv(source, overrides);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'loadEnv accepted the environment').toBeInstanceOf(EnvError);
  return (caught as EnvError).message;
}

const names = (message: string, variable: string) => new RegExp(`\\b${variable}\\b`).test(message);

const SECRET = 'k3Jq9v0xY7tR2mW8pL5sN1cB6hF4dG0aZ-eU_iO';
const KEY = Buffer.alloc(32, 1).toString('base64');
const KEYS = `k1:${KEY}`;
const PAY = 'a-real-payment-webhook-secret-0123';
const PROD = { NODE_ENV: 'production', JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS, PAYMENT_WEBHOOK_SECRET: PAY };

/** KEY=value lines of .env.example (the file operators copy to .env); optional ones are commented out. */
function envExample(opts: { commented?: boolean } = {}): Record<string, string> {
  const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
  const out: Record<string, string> = {};
  const line = opts.commented ? /^#\s*([A-Z_][A-Z0-9_]*)=(.*)$/ : /^([A-Z_][A-Z0-9_]*)=(.*)$/;
  for (const raw of text.split('\n')) {
    const m = line.exec(raw.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

describe('environment schema', () => {
  it('fills defaults and coerces numbers and booleans from strings', () => {
    const env = loadEnv({ PORT: '4000', BENCH_ROUTES: 'true', PARTITIONS: '32' });
    expect(env).toMatchObject({ PORT: 4000, BENCH_ROUTES: true, PARTITIONS: 32, REDIS_PREFIX: 'pm', LOT_EXPIRY_DAYS: 365 });
  });

  it('schedules the recommend role every 5 minutes and after 500 redemptions by default, and refuses values out of bounds', () => {
    expect(loadEnv({})).toMatchObject({ RECOMMEND_EVERY_MS: 300_000, RECOMMEND_AFTER_REDEMPTIONS: 500 });
    expect(loadEnv({ RECOMMEND_EVERY_MS: '60000', RECOMMEND_AFTER_REDEMPTIONS: '1' })).toMatchObject({
      RECOMMEND_EVERY_MS: 60_000,
      RECOMMEND_AFTER_REDEMPTIONS: 1,
    });
    expect(names(envError({ RECOMMEND_EVERY_MS: '999' }), 'RECOMMEND_EVERY_MS')).toBe(true);
    expect(names(envError({ RECOMMEND_AFTER_REDEMPTIONS: '0' }), 'RECOMMEND_AFTER_REDEMPTIONS')).toBe(true);
  });

  it('names every invalid variable, and only those', () => {
    const message = envError({ PORT: 'abc', PARTITIONS: '0', LOG_LEVEL: 'loud', HOST: '0.0.0.0' });
    for (const v of ['PORT', 'PARTITIONS', 'LOG_LEVEL']) expect(names(message, v), `${v} in "${message}"`).toBe(true);
    expect(names(message, 'HOST'), message).toBe(false);
    expect(names(envError({ PORT: 'abc' }), 'PORT')).toBe(true);
  });

  it('REDIS_CLUSTER_NODES is unset by default, takes host:port pairs and names a bad entry', () => {
    expect(loadEnv({}).REDIS_CLUSTER_NODES).toBeUndefined();
    expect(loadEnv({}).REDIS_WAIT_REPLICAS).toBe(0);
    expect(loadEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001' }).REDIS_CLUSTER_NODES).toBe('10.0.0.1:7000, redis-b:7001');
    expect(parseClusterNodes('10.0.0.1:7000, redis-b:7001,[::1]:7002')).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    for (const bad of ['10.0.0.1', 'redis://a:7000', 'a:0', 'a:70000', ',']) {
      const message = envError({ REDIS_CLUSTER_NODES: bad });
      expect(names(message, 'REDIS_CLUSTER_NODES'), `${bad}: ${message}`).toBe(true);
    }
    for (const bad of ['-1', '17', 'one']) expect(names(envError({ REDIS_WAIT_REPLICAS: bad }), 'REDIS_WAIT_REPLICAS'), bad).toBe(true);
  });

  it('EXPERIMENT_MIN_SAMPLE defaults to 100, takes a positive integer and refuses anything else', () => {
    expect(loadEnv({}).EXPERIMENT_MIN_SAMPLE).toBe(100);
    expect(loadEnv({ EXPERIMENT_MIN_SAMPLE: '1000' }).EXPERIMENT_MIN_SAMPLE).toBe(1000);
    for (const bad of ['0', '-5', 'many']) expect(names(envError({ EXPERIMENT_MIN_SAMPLE: bad }), 'EXPERIMENT_MIN_SAMPLE'), bad).toBe(true);
  });

  it('keeps audit rows 90 days unless AUDIT_RETENTION_DAYS says otherwise, at least 1', () => {
    expect(loadEnv({}).AUDIT_RETENTION_DAYS).toBe(90);
    expect(loadEnv({ AUDIT_RETENTION_DAYS: '30' }).AUDIT_RETENTION_DAYS).toBe(30);
    for (const bad of ['0', '-5', 'forever']) expect(names(envError({ AUDIT_RETENTION_DAYS: bad }), 'AUDIT_RETENTION_DAYS'), bad).toBe(true);
  });
});

describe('secrets', () => {
  it('refuses a JWT secret shorter than 32 characters in every NODE_ENV', () => {
    for (const NODE_ENV of ['development', 'test', 'production']) {
      expect(names(envError({ NODE_ENV, JWT_SECRET: 'short' }), 'JWT_SECRET'), NODE_ENV).toBe(true);
    }
  });

  it('only development falls back to a built-in JWT secret; any other NODE_ENV must set JWT_SECRET', () => {
    expect(loadEnv({}).JWT_SECRET.length).toBeGreaterThanOrEqual(32);
    expect(loadEnv({ NODE_ENV: 'development' }).JWT_SECRET).toBe(loadEnv({}).JWT_SECRET);
    for (const NODE_ENV of ['test', 'production', 'staging']) {
      expect(envError({ NODE_ENV }), NODE_ENV).toMatch(/JWT_SECRET.*missing/);
      expect(loadEnv({ NODE_ENV, JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS, PAYMENT_WEBHOOK_SECRET: PAY }).JWT_SECRET).toBe(SECRET);
    }
    expect(loadEnv({ NODE_ENV: 'test' }, { JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS, PAYMENT_WEBHOOK_SECRET: PAY }).JWT_SECRET).toBe(SECRET);
  });

  it('production refuses the known secrets: the development default, the .env.example placeholder, the old compose default', () => {
    const known = [
      loadEnv({}).JWT_SECRET,
      envExample().JWT_SECRET,
      'change-me-to-a-long-random-secret-string',
    ];
    for (const JWT_SECRET of known) {
      expect(JWT_SECRET.length).toBeGreaterThanOrEqual(32);
      expect(envError({ NODE_ENV: 'production', JWT_SECRET }), JWT_SECRET).toMatch(/JWT_SECRET.*(known|public)/);
      expect(loadEnv({ NODE_ENV: 'test', JWT_SECRET, ENCRYPTION_KEYS: KEYS, PAYMENT_WEBHOOK_SECRET: PAY }).JWT_SECRET).toBe(JWT_SECRET);
    }
    expect(envError({ NODE_ENV: 'production' })).toMatch(/JWT_SECRET.*missing/);
  });

  it('production refuses an admin password shorter than 12 characters or a known one; development does not', () => {
    expect(envError({ ...PROD, ADMIN_EMAIL: 'a@example.com', ADMIN_PASSWORD: 'elevenchars' })).toMatch(/ADMIN_PASSWORD.*12/);
    for (const ADMIN_PASSWORD of ['change-me-admin', envExample().ADMIN_PASSWORD]) {
      expect(envError({ ...PROD, ADMIN_EMAIL: 'a@example.com', ADMIN_PASSWORD }), ADMIN_PASSWORD).toMatch(/ADMIN_PASSWORD.*known/);
    }
    expect(loadEnv({ ADMIN_EMAIL: 'a@example.com', ADMIN_PASSWORD: 'short' }).ADMIN_PASSWORD).toBe('short');
  });

  it('production refuses the .env.example webhook secret placeholder', () => {
    const WEBHOOK_SECRET = envExample({ commented: true }).WEBHOOK_SECRET;
    expect(WEBHOOK_SECRET.length).toBeGreaterThanOrEqual(16);
    const webhook = { PUSH_TRANSPORT: 'webhook', WEBHOOK_URL: 'https://hooks.example.com/push' };
    expect(envError({ ...PROD, ...webhook, WEBHOOK_SECRET })).toMatch(/WEBHOOK_SECRET.*known/);
    expect(loadEnv({ ...PROD, ...webhook, WEBHOOK_SECRET: 'a-real-webhook-secret-0123' }).WEBHOOK_SECRET).toBe('a-real-webhook-secret-0123');
  });

  it('production starts with a long random secret and a strong admin password', () => {
    const env = loadEnv({ ...PROD, ADMIN_EMAIL: 'a@example.com', ADMIN_PASSWORD: 'correct horse battery' });
    expect(env).toMatchObject({ NODE_ENV: 'production', JWT_SECRET: SECRET, ADMIN_PASSWORD: 'correct horse battery' });
  });

  it('every secret .env.example sets is a placeholder production refuses, and replacing them is enough', () => {
    const example = envExample();
    const message = envError({ ...example, NODE_ENV: 'production' });
    for (const v of ['JWT_SECRET', 'ADMIN_PASSWORD', 'ENCRYPTION_KEYS']) expect(names(message, v), message).toBe(true);
    const filled = { ...example, NODE_ENV: 'production', JWT_SECRET: SECRET, ADMIN_PASSWORD: 'correct horse battery', ENCRYPTION_KEYS: KEYS, PAYMENT_WEBHOOK_SECRET: PAY };
    expect(loadEnv(filled).NODE_ENV).toBe('production');
  });
});

describe('PAYMENT_WEBHOOK_SECRET', () => {
  it('outside production falls back to a built-in secret; production must set its own, never the built-in or the placeholder', () => {
    const dev = loadEnv({}).PAYMENT_WEBHOOK_SECRET!;
    expect(dev.length).toBeGreaterThanOrEqual(16);
    expect(loadEnv({ NODE_ENV: 'test', JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS }).PAYMENT_WEBHOOK_SECRET).toBe(dev);
    const { PAYMENT_WEBHOOK_SECRET: _set, ...unset } = PROD;
    expect(envError(unset)).toMatch(/PAYMENT_WEBHOOK_SECRET is missing/);
    for (const known of [dev, envExample().PAYMENT_WEBHOOK_SECRET]) {
      expect(envError({ ...PROD, PAYMENT_WEBHOOK_SECRET: known }), known).toMatch(/PAYMENT_WEBHOOK_SECRET.*known/);
    }
    expect(names(envError({ ...PROD, PAYMENT_WEBHOOK_SECRET: 'short' }), 'PAYMENT_WEBHOOK_SECRET')).toBe(true);
    expect(loadEnv(PROD).PAYMENT_WEBHOOK_SECRET).toBe(PAY);
  });
});

describe('ENCRYPTION_KEYS', () => {
  it('only development falls back to a built-in key; any other NODE_ENV must set ENCRYPTION_KEYS', () => {
    expect(loadEnv({}).ENCRYPTION_KEYS).toMatch(/^dev:/);
    for (const NODE_ENV of ['test', 'production', 'staging']) {
      expect(envError({ NODE_ENV, JWT_SECRET: SECRET }), NODE_ENV).toMatch(/ENCRYPTION_KEYS is missing/);
      expect(loadEnv({ NODE_ENV, JWT_SECRET: SECRET, ENCRYPTION_KEYS: KEYS, PAYMENT_WEBHOOK_SECRET: PAY }).ENCRYPTION_KEYS).toBe(KEYS);
    }
  });

  it('production refuses the development key, first or not; other environments accept it', () => {
    const dev = loadEnv({}).ENCRYPTION_KEYS;
    for (const ENCRYPTION_KEYS of [dev, `${KEYS},${dev}`]) {
      expect(envError({ ...PROD, ENCRYPTION_KEYS })).toMatch(/ENCRYPTION_KEYS holds the development key/);
      expect(loadEnv({ NODE_ENV: 'test', JWT_SECRET: SECRET, ENCRYPTION_KEYS }).ENCRYPTION_KEYS).toBe(ENCRYPTION_KEYS);
    }
  });

  it('refuses malformed key lists with a message naming the entry, never the key', () => {
    const short = Buffer.alloc(16, 9).toString('base64');
    const cases: Array<[string, RegExp]> = [
      [KEY, /entry 1 is not "kid:base64key"/],
      [`k.1:${KEY}`, /entry 1: the key id/],
      [`k1:${KEY},k2:not base64!`, /entry 2 \("k2"\): the key is not base64/],
      [`k1:${short}`, /entry 1 \("k1"\): the key is 16 bytes, AES-256 needs 32/],
      [`k1:${KEY},k1:${Buffer.alloc(32, 2).toString('base64')}`, /entry 2: key id "k1" is listed twice/],
      [' , ', /no key given/],
    ];
    for (const [ENCRYPTION_KEYS, why] of cases) {
      const message = envError({ NODE_ENV: 'test', JWT_SECRET: SECRET, ENCRYPTION_KEYS });
      expect(message, ENCRYPTION_KEYS).toMatch(/ENCRYPTION_KEYS: /);
      expect(message, ENCRYPTION_KEYS).toMatch(why);
      expect(message).not.toContain(short);
      expect(message).not.toContain(KEY);
    }
    const two = `k2:${Buffer.alloc(32, 2).toString('base64')}, k1:${KEY}`;
    expect(loadEnv({ NODE_ENV: 'test', JWT_SECRET: SECRET, ENCRYPTION_KEYS: two }).ENCRYPTION_KEYS).toBe(two);
  });
});

describe('TRUST_PROXY', () => {
  it('defaults to false and takes a hop count or a list of proxy addresses and CIDRs', () => {
    expect(loadEnv({}).TRUST_PROXY).toBe('false');
    expect(loadEnv({ TRUST_PROXY: '2' }).TRUST_PROXY).toBe('2');
    expect(loadEnv({ TRUST_PROXY: '10.0.0.0/8, 192.0.2.7,::1' }).TRUST_PROXY).toBe('10.0.0.0/8, 192.0.2.7,::1');
  });

  it('refuses true, saying to give a hop count or the proxy addresses instead', () => {
    const message = envError({ TRUST_PROXY: 'true' });
    expect(names(message, 'TRUST_PROXY')).toBe(true);
    expect(message).toMatch(/every hop/);
    expect(message).toMatch(/number of proxies/);
    expect(message).toMatch(/CIDR/);
  });

  it('refuses a hop count below 1 and entries that are not addresses, naming the entry', () => {
    expect(envError({ TRUST_PROXY: '0' })).toMatch(/TRUST_PROXY/);
    expect(envError({ TRUST_PROXY: '-1' })).toMatch(/TRUST_PROXY/);
    expect(envError({ TRUST_PROXY: '10.0.0.0/8,proxy.internal' })).toMatch(/TRUST_PROXY.*proxy\.internal/);
    expect(envError({ TRUST_PROXY: '10.0.0.0/33' })).toMatch(/TRUST_PROXY.*10\.0\.0\.0\/33/);
  });
});

describe('unsafe combinations', () => {
  it('refuses an idempotency TTL the sweeper could outlive, naming every variable involved', () => {
    const message = envError({ IDEMPOTENCY_TTL_SECONDS: '60', RESERVATION_TIMEOUT_MS: '50000' });
    for (const v of ['IDEMPOTENCY_TTL_SECONDS', 'RESERVATION_TIMEOUT_MS', 'SWEEP_EVERY_MS', 'TASK_LOCK_MS']) {
      expect(names(message, v), `${v} in "${message}"`).toBe(true);
    }
    // 60 s = 45 s + 5 s + 10 s: equal is refused too
    expect(envError({ IDEMPOTENCY_TTL_SECONDS: '60', RESERVATION_TIMEOUT_MS: '45000' })).toMatch(/IDEMPOTENCY_TTL_SECONDS/);
    expect(envError({ IDEMPOTENCY_TTL_SECONDS: '60', SWEEP_EVERY_MS: '60000' })).toMatch(/SWEEP_EVERY_MS/);
    expect(envError({ IDEMPOTENCY_TTL_SECONDS: '60', TASK_LOCK_MS: '60000' })).toMatch(/TASK_LOCK_MS/);
  });

  it('accepts the defaults and a TTL just above the sweeper bound', () => {
    expect(loadEnv({}).IDEMPOTENCY_TTL_SECONDS).toBe(86_400);
    expect(loadEnv({ IDEMPOTENCY_TTL_SECONDS: '60', RESERVATION_TIMEOUT_MS: '44999' }).IDEMPOTENCY_TTL_SECONDS).toBe(60);
  });
});

describe('address lists (RATE_LIMIT_ALLOWLIST, TRUST_PROXY)', () => {
  it('matches addresses and CIDR ranges, v4-mapped v6 included', () => {
    const list = parseAddressList('127.0.0.1, 10.1.0.0/16, ::1');
    expect(isListed(list, '127.0.0.1')).toBe(true);
    expect(isListed(list, '::ffff:127.0.0.1')).toBe(true);
    expect(isListed(list, '10.1.200.3')).toBe(true);
    expect(isListed(list, '10.2.0.1')).toBe(false);
    expect(isListed(list, '::1')).toBe(true);
    expect(isListed(list, '192.168.1.1')).toBe(false);
  });

  it('refuses an entry that is not an address, at start', () => {
    expect(() => parseAddressList('localhost')).toThrow(/localhost/);
    expect(envError({ RATE_LIMIT_ALLOWLIST: '127.0.0.1,localhost' })).toMatch(/RATE_LIMIT_ALLOWLIST.*localhost/);
  });
});
