import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv } from '../src/config/env.ts';
import { isAllowed, parseAllowList } from '../src/plugins/external/rate-limit.ts';

describe('environment schema', () => {
  it('fills defaults and coerces numbers and booleans from strings', () => {
    const env = loadEnv({ PORT: '4000', BENCH_ROUTES: 'true', PARTITIONS: '32' });
    expect(env).toMatchObject({ PORT: 4000, BENCH_ROUTES: true, PARTITIONS: 32, REDIS_PREFIX: 'pm', LOT_EXPIRY_DAYS: 365 });
  });

  it('names every invalid variable', () => {
    expect(() => loadEnv({ PORT: 'abc', PARTITIONS: '0', LOG_LEVEL: 'loud' })).toThrow(EnvError);
    try {
      loadEnv({ PORT: 'abc' });
    } catch (err) {
      expect((err as Error).message).toMatch(/PORT/);
    }
  });

  it('rejects a short JWT secret and the default secret in production', () => {
    expect(() => loadEnv({ JWT_SECRET: 'short' })).toThrow(/JWT_SECRET/);
    expect(() => loadEnv({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET must be set/);
  });
});

describe('rate-limit allow-list', () => {
  it('matches addresses and CIDR ranges, v4-mapped v6 included', () => {
    const list = parseAllowList('127.0.0.1, 10.1.0.0/16, ::1');
    expect(isAllowed(list, '127.0.0.1')).toBe(true);
    expect(isAllowed(list, '::ffff:127.0.0.1')).toBe(true);
    expect(isAllowed(list, '10.1.200.3')).toBe(true);
    expect(isAllowed(list, '10.2.0.1')).toBe(false);
    expect(isAllowed(list, '::1')).toBe(true);
    expect(isAllowed(list, '192.168.1.1')).toBe(false);
  });

  it('refuses an entry that is not an address', () => {
    expect(() => parseAllowList('localhost')).toThrow(/RATE_LIMIT_ALLOWLIST/);
  });
});
