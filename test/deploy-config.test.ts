/**
 * The shipped docker-compose.yml and .env.example: no secret has a default, every port stays on
 * this host unless the operator says otherwise, and the app containers run in production (where
 * loadEnv refuses placeholders, see test/env.test.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
const compose = read('docker-compose.yml');
const example = read('.env.example');

/** Every ${VAR...} reference in the compose file, with its operator (:- default, :? required). */
const references = [...compose.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}/g)].map((m) => ({
  name: m[1],
  op: m[2] ?? '',
  arg: m[3] ?? '',
}));

/** Lines of a service block, up to the next top-level service key. */
function service(name: string): string {
  const start = compose.indexOf(`\n  ${name}:\n`);
  expect(start, name).toBeGreaterThan(0);
  const rest = compose.slice(start + 1);
  const next = rest.slice(3).search(/\n {2}[a-z]+:\n|\n[a-z]+:\n/);
  return next === -1 ? rest : rest.slice(0, next + 3);
}

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

  it('runs the API and the workers in production, where placeholders and short secrets are refused', () => {
    expect(service('api')).toMatch(/NODE_ENV: production/);
    expect(service('workers')).toMatch(/environment: \*appenv/);
  });

  it('.env.example sets every variable compose requires, and says how to generate a secret', () => {
    const required = new Set(references.filter((r) => r.op === ':?').map((r) => r.name));
    for (const name of required) expect(example, name).toMatch(new RegExp(`^${name}=.+$`, 'm'));
    expect(example).toMatch(/openssl rand -base64 48/);
    expect(read('.gitignore')).toMatch(/^\.env$/m);
  });
});
