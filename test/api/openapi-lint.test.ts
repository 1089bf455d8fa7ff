/**
 * redocly lint (its recommended rules, as configured in redocly.yaml) finds no error in the
 * OpenAPI document the app publishes: the same check as `npm run lint:openapi`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/context.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: Array<{ ruleId: string; severity: string; message: string; location?: Array<{ pointer?: string }> }>;
}

let ctx: TestContext;
let dir: string;
beforeAll(async () => {
  ctx = await createTestContext();
  dir = mkdtempSync(join(tmpdir(), 'pm-openapi-lint-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await ctx?.close();
});

describe('redocly lint of the published OpenAPI document', () => {
  it('reports no errors and no warnings with the recommended rules', async () => {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(ctx.app.swagger()));
    // exits non-zero on errors: the report on stdout is what we read either way
    const run = await promisify(execFile)('npx', ['redocly', 'lint', '--config', join(ROOT, 'redocly.yaml'), '--format', 'json', file], {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    const report = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as LintReport;
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? '?'}`);
    expect(problems).toEqual([]);
    expect(report.totals.errors).toBe(0);
  }, 180_000);
});
