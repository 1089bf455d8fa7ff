/**
 * Benchmark settings: sizes, names, durations, and the environment the API and workers run with.
 * From the environment: BENCH_DURATION (seconds per measured run, default 10), BENCH_WARMUP
 * (seconds of warm-up before each, default 2) and BENCH_PROFILE (a directory: the API and the
 * workers then run with --cpu-prof and leave their .cpuprofile there); BENCH_SCENARIOS (a comma list of
 * scenario names, e.g. `recommend`: only those run; bench/run.ts lists them; hello with any of flash,
 * baselineFlash, redeem or baselineRedeem also runs helloAfter, the bare route measured again after them). The rest is fixed so that
 * runs compare.
 */
import { loadEnv, type Env } from '../src/config/env.ts';

export const MEMBERS = 20_000;
export const CONNECTIONS = 100;
export const SEED_POINTS = 1_000_000;
export const FLASH_STOCK = 1000;
export const FLASH_PRICE = 100;
export const REDEEM_ITEMS = 200;
export const REDEEM_STOCK = 10_000_000;
/** The order scenario: goods of each kind, the cash price (minor units) and the points paying part of it. */
export const ORDER_ITEMS = 20;
export const ORDER_CASH_PRICE = 1000;
export const ORDER_POINTS_TO_USE = 300;
/**
 * The draw scenario's lottery: no cooldown or daily limit (every member draws as fast as the load
 * allows), one limited prize whose stock the load exhausts, and unlimited ones.
 */
export const LOTTERY = {
  cost: 10,
  jackpot: { name: 'Jackpot', points: 1000, weight: 100, stock: 200 },
  prizes: [
    { name: '50 points', kind: 'points', points: 50, weight: 1000 },
    { name: '10 points', kind: 'points', points: 10, weight: 4000 },
    { name: 'Nothing', kind: 'none', weight: 5000 },
  ],
} as const;
/** Cap-free earn rule inserted into the bench database before the API starts (rules are cached). */
export const EARN_RULE = { action: 'bench', points: 1 } as const;
export const BENCH_DB = 'points_mall_bench';
export const BENCH_PREFIX = 'pmbench';

function seconds(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of seconds, got "${raw}"`);
  return n;
}

export const DURATION_S = seconds('BENCH_DURATION', 10);
export const WARMUP_S = seconds('BENCH_WARMUP', 2);
export const PROFILE_DIR = process.env.BENCH_PROFILE || undefined;

/** The project's env (from process.env) pointed at the bench database, prefix and port. */
export function benchEnv(port: number): Env {
  const base = loadEnv();
  const url = new URL(base.DATABASE_URL);
  url.pathname = `/${BENCH_DB}`;
  return loadEnv(process.env, {
    DATABASE_URL: url.toString(),
    REDIS_PREFIX: BENCH_PREFIX,
    HOST: '127.0.0.1',
    PORT: port,
    BENCH_ROUTES: true,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ALLOWLIST: '127.0.0.1,::1',
  });
}

/** process.env plus every resolved setting, so a child process loads exactly this config. */
export function childEnv(env: Env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = String(v);
  return out;
}
