/**
 * The shipped docker-compose.yml, Dockerfile and .env.example, checked by reading them (docker
 * does not run where the tests do; where `docker compose` exists, its own `config` check runs
 * too): no secret has a default, every port stays on this host unless the operator says
 * otherwise, the app containers run in production (where loadEnv refuses placeholders, see
 * test/env.test.ts) from one image built once, migrations run before the API and the workers,
 * and every variable compose hands the app is one the app reads.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// a transitive dependency (of @redocly/cli), used only here to read compose the way compose does
import { parse } from 'yaml';
import { EnvSchema } from '../src/config/env.ts';
import { API_NODE_FLAGS } from '../src/api-flags.ts';

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
const compose = read('docker-compose.yml');
const example = read('.env.example');

/** Every ${VAR...} reference in the compose file, with its operator (:- default, :? required). */
const references = [...compose.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}/g)].map((m) => ({
  name: m[1],
  op: m[2] ?? '',
  arg: m[3] ?? '',
}));

interface Service {
  image?: string;
  build?: string | { context: string };
  pull_policy?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
}

const doc = parse(compose) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = doc.services;
const service = (name: string): Service => {
  expect(services[name], name).toBeDefined();
  return services[name];
};
/** The services running the app's image (migrate, api, workers). */
const APP = ['migrate', 'api', 'workers'];
const IMAGE = services.migrate?.image;

describe('docker compose deployment', () => {
  it('requires the secrets and the admin from .env, with no default', () => {
    for (const name of ['JWT_SECRET', 'ADMIN_EMAIL', 'ADMIN_PASSWORD']) {
      const refs = references.filter((r) => r.name === name);
      expect(refs.length, name).toBeGreaterThan(0);
      for (const r of refs) {
        expect(r.op, `${name} must be \${${name}:?…}`).toBe(':?');
        expect(r.arg, name).toMatch(/\.env/);
      }
    }
    const defaulted = references.filter((r) => /SECRET|PASSWORD|TOKEN|KEY/.test(r.name) && r.op === ':-' && r.arg !== '');
    expect(defaulted).toEqual([]);
    expect(compose).not.toMatch(/change-me/);
  });

  it('publishes every port on 127.0.0.1 unless API_BIND says otherwise', () => {
    const ports = [...compose.matchAll(/ports:\s*\[([^\]]*)\]/g)].flatMap((m) => m[1].split(',').map((p) => p.trim().replace(/"/g, '')));
    expect(ports.length).toBeGreaterThanOrEqual(3);
    for (const p of ports) expect(p, p).toMatch(/^(127\.0\.0\.1|\$\{API_BIND:-127\.0\.0\.1\}):\d+:\d+$/);
    expect(compose).not.toMatch(/^\s*-\s*"?\d+:\d+"?\s*$/m);
  });

  it('runs the API, the workers and migrate in production, where placeholders and short secrets are refused', () => {
    for (const name of APP) expect(service(name).environment?.NODE_ENV, name).toBe('production');
  });

  it('.env.example sets every variable compose requires, and says how to generate a secret', () => {
    const required = new Set(references.filter((r) => r.op === ':?').map((r) => r.name));
    for (const name of required) expect(example, name).toMatch(new RegExp(`^${name}=.+$`, 'm'));
    expect(example).toMatch(/openssl rand -base64 48/);
    expect(read('.gitignore')).toMatch(/^\.env$/m);
  });
});

describe('docker compose services', () => {
  it('builds the app image once and runs it for migrate, api and workers; every other service names an image', () => {
    const built = Object.entries(services).filter(([, s]) => s.build !== undefined);
    expect(built.map(([n]) => n)).toEqual(['migrate']);
    expect(service('migrate').build).toBe('.');
    expect(IMAGE).toMatch(/^points-mall:/);
    for (const name of APP) expect(service(name).image, name).toBe(IMAGE);
    // the image exists only once migrate's build made it: never look for it in a registry
    for (const name of APP.filter((n) => n !== 'migrate')) expect(service(name).pull_policy, name).toBe('never');
    for (const [name, s] of Object.entries(services)) {
      expect(s.image ?? s.build, name).toBeTruthy();
      if (!APP.includes(name)) expect(s.image, name).toMatch(/^[a-z0-9./-]+:[\w.-]+$/);
    }
    expect(Object.keys(services).sort()).toEqual(['api', 'migrate', 'postgres', 'prometheus', 'redis', 'workers']);
  });

  it('runs each process with node directly: no npm ci, no install, no shell at start', () => {
    expect(compose).not.toMatch(/npm (ci|install|i )/);
    const commands = Object.fromEntries(APP.map((n) => [n, service(n).command ?? []]));
    expect(commands.migrate).toEqual(['node', '--import', 'tsx', 'src/cli/migrate.ts']);
    // the API from its bundle, built in the image (src/cli/bundle.ts)
    expect(commands.api).toEqual(['node', ...API_NODE_FLAGS, 'dist/api/server.mjs']);
    // and `npm run api` the same way (npm start and the bench import API_NODE_FLAGS)
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.api).toContain(`exec node ${API_NODE_FLAGS.join(' ')} dist/api/server.mjs`);
    expect(commands.workers.slice(0, 4)).toEqual(['node', '--import', 'tsx', 'workers/main.ts']);
    for (const [name, c] of Object.entries(commands)) expect(c[0], name).not.toMatch(/^(sh|bash|npm)$/);
  });

  it('starts the API and the workers only after migrate exited 0, with Postgres and Redis healthy', () => {
    expect(service('migrate').depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
    for (const name of ['api', 'workers']) {
      expect(service(name).depends_on, name).toEqual({
        migrate: { condition: 'service_completed_successfully' },
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
    }
    const conditions = new Set(['service_started', 'service_healthy', 'service_completed_successfully']);
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        expect(conditions.has(condition), `${name} → ${dep}: ${condition}`).toBe(true);
        // a service_healthy dependency needs a healthcheck that is not switched off
        if (condition === 'service_healthy') expect(services[dep].healthcheck?.test, `${dep} healthcheck`).toBeDefined();
      }
    }
  });

  it('runs Redis with AOF fsynced on every write and noeviction, Postgres with WAL compression', () => {
    const redis = service('redis').command ?? [];
    expect(redis.join(' ')).toContain('--appendonly yes --appendfsync always --maxmemory-policy noeviction');
    expect(service('postgres').command).toEqual(['postgres', '-c', 'wal_compression=lz4']);
  });

  it('gives every long-running service a healthcheck; the one-shot migrate has none', () => {
    expect(service('postgres').healthcheck?.test).toContain('pg_isready');
    expect(service('redis').healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(service('prometheus').healthcheck?.test?.join(' ')).toMatch(/\/-\/ready/);
    expect(service('workers').healthcheck?.test?.join(' ')).toMatch(/WORKER_METRICS_PORT/);
    // the API's comes from the image's HEALTHCHECK (checked below), not overridden here
    expect(service('api').healthcheck).toBeUndefined();
    expect(service('migrate').healthcheck).toEqual({ disable: true });
  });

  it('mounts no source into any container: data volumes, and Prometheus\' config read-only', () => {
    const named = new Set(Object.keys(doc.volumes ?? {}));
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const [source, , mode] = v.split(':');
        if (named.has(source)) continue;
        // the only host path: deploy/prometheus (config and alert rules), read-only
        expect(`${name}: ${v}`).toBe('prometheus: ./deploy/prometheus:/etc/prometheus:ro');
        expect(mode).toBe('ro');
      }
    }
    for (const name of APP) expect(service(name).volumes, name).toBeUndefined();
  });

  it('runs Prometheus on the repository\'s config and rules, on 127.0.0.1:9090', () => {
    const p = service('prometheus');
    expect(p.image).toMatch(/^prom\/prometheus:/);
    expect(p.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    expect(p.ports).toEqual(['127.0.0.1:9090:9090']);
    expect(service('workers').environment?.WORKER_METRICS_PORT).toBe('9100');
  });

  it('hands the app only variables its env schema declares', () => {
    const declared = new Set(Object.keys(EnvSchema.properties));
    for (const name of APP) {
      const unknown = Object.keys(service(name).environment ?? {}).filter((k) => !declared.has(k));
      expect(unknown, name).toEqual([]);
    }
  });

  const composeCli = (() => {
    try {
      execFileSync('docker', ['compose', 'version'], { stdio: 'ignore', timeout: 10_000 });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!composeCli)('passes `docker compose config` with every required variable set', () => {
    const required = Object.fromEntries(references.filter((r) => r.op === ':?').map((r) => [r.name, 'x'.repeat(48)]));
    execFileSync('docker', ['compose', '-f', 'docker-compose.yml', 'config', '--quiet'], {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, ...required },
      timeout: 30_000,
    });
  });
});

/** The Dockerfile's stages: `FROM image AS name` and the instructions that follow each. */
function stages(text: string): Array<{ name: string; from: string; lines: string[] }> {
  // continuation lines joined, comments dropped
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const out: Array<{ name: string; from: string; lines: string[] }> = [];
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) out.push({ from: from[1], name: from[2] ?? '', lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const [build, runtime, ...more] = stages(dockerfile);
  const has = (lines: string[], re: RegExp) => lines.some((l) => re.test(l));

  it('is two stages on the same Node base: build (every dependency, typecheck), runtime', () => {
    expect(more).toEqual([]);
    expect(build.name).toBe('build');
    expect(runtime.name).toBe('runtime');
    expect(build.from).toMatch(/^node:20[\w.-]*-slim$/);
    expect(runtime.from).toBe(build.from);
    expect(has(build.lines, /^RUN npm ci( |$)/)).toBe(true);
    expect(has(build.lines, /tsc --noEmit/)).toBe(true);
    expect(has(build.lines, /^RUN .*src\/cli\/bundle\.ts/), 'the API bundle is built').toBe(true);
  });

  it('installs production dependencies only in the runtime stage (tsx among them), from the lockfile', () => {
    expect(has(runtime.lines, /^RUN npm ci --omit=dev\b/)).toBe(true);
    expect(runtime.lines.filter((l) => /^RUN\b.*npm (ci|install|i)\b/.test(l))).toHaveLength(1);
    expect(has(runtime.lines, /^COPY package\.json package-lock\.json/)).toBe(true);
    expect(has(runtime.lines, /^ENV .*NODE_ENV=production/)).toBe(true);
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.tsx).toBeDefined();
    // node_modules never comes from the build stage, which holds the dev dependencies too
    expect(has(runtime.lines, /COPY --from=build .*node_modules/)).toBe(false);
  });

  it('runs as the unprivileged node user, with a HEALTHCHECK on /health/live through node (no curl)', () => {
    const user = runtime.lines.filter((l) => /^USER\b/.test(l));
    expect(user).toEqual(['USER node']);
    const health = runtime.lines.filter((l) => /^HEALTHCHECK\b/.test(l));
    expect(health).toHaveLength(1);
    expect(health[0]).toMatch(/CMD \["node", "-e", .*\/health\/live/);
    expect(health[0]).not.toMatch(/curl|wget/);
    // USER comes before the process starts
    const idx = (re: RegExp) => runtime.lines.findIndex((l) => re.test(l));
    expect(idx(/^USER /)).toBeLessThan(idx(/^CMD /));
    expect(runtime.lines.at(-1)).toBe(`CMD ${JSON.stringify(['node', ...API_NODE_FLAGS, 'dist/api/server.mjs']).replaceAll(',', ', ')}`);
  });

  it('copies what the processes load: package files, tsconfig, src, workers, lua, drizzle, console, the API bundle', () => {
    for (const dir of ['src', 'workers', 'lua', 'drizzle', 'console', 'dist']) {
      expect(has(runtime.lines, new RegExp(`^COPY --from=build /app/${dir} \\./${dir}$`)), dir).toBe(true);
    }
    const ignore = read('.dockerignore').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('**');
    expect(ignore.slice(1).sort()).toEqual(['!console', '!drizzle', '!lua', '!package-lock.json', '!package.json', '!src', '!tsconfig.json', '!workers']);
  });
});

