/**
 * The API as JavaScript: dist/api/server.mjs (with exit-with-parent.mjs beside it for
 * `npm start`, and the app in a chunk of its own that server.mjs imports in the processes that
 * serve), bundled by esbuild from src/server.ts, dependencies left as imports of node_modules.
 * npm start, `npm run api`, the bench and the image run the API from it instead of through tsx:
 * tsx compiles in a loader thread with its own V8 heap, which cost the API about 40 MB of
 * resident memory at rest (182 → 140 MB, measured in issue 11). The bundle sits two
 * directories below the root, as the sources do, so paths resolved from `import.meta.url`
 * (lua/, drizzle/, console/) land in the same places. Tests run the sources through tsx.
 *
 * `npm run build` runs this alone; `bundleApi()` is what npm start and the bench call.
 */
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const API_BUNDLE = join(ROOT, 'dist', 'api', 'server.mjs');
export const EXIT_WITH_PARENT_BUNDLE = join(ROOT, 'dist', 'api', 'exit-with-parent.mjs');

/** Writes the bundle; resolves with its path. */
export async function bundleApi(): Promise<string> {
  const out = await build({
    // the metafile names outputs relative to this: the root, wherever the command was run from
    absWorkingDir: ROOT,
    entryPoints: {
      server: join(ROOT, 'src', 'server.ts'),
      'exit-with-parent': join(ROOT, 'src', 'cli', 'exit-with-parent.ts'),
    },
    outdir: dirname(API_BUNDLE),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    // the app in a chunk of its own, imported by the processes that serve: a cluster's primary only
    // forks, and loads none of it (src/server.ts)
    splitting: true,
    // not minified: names and code in stack traces stay readable
    logLevel: 'warning',
    metafile: true,
  });
  // chunks are named by their content: drop those of earlier builds (never an entry point)
  const written = new Set(Object.keys(out.metafile.outputs).map((f) => resolve(ROOT, f)));
  for (const f of readdirSync(dirname(API_BUNDLE))) {
    const path = join(dirname(API_BUNDLE), f);
    if (/^(app|chunk)-[A-Z0-9]+\.mjs$/.test(f) && !written.has(path)) rmSync(path, { force: true });
  }
  return API_BUNDLE;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await bundleApi();
  console.log(`points-mall: API bundled to ${API_BUNDLE}`);
}
