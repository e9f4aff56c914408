/**
 * vitest globalSetup: bundles the crypto pool's worker (src/transport/crypto-worker.ts)
 * once per test run, and names the bundle in PQMCP_SOURCE_CRYPTO_WORKER for the test
 * processes (and the CLI processes they start from the sources) to start instead of the
 * source through tsx (src/transport/crypto-threads.ts): every listener a test starts has a
 * worker thread or two, and through tsx each costs about 1 s of CPU to start (tsx's hooks
 * registered and the worker's modules transformed per thread), bundled about 0.3 s.
 *
 * The same sources through the same transform (esbuild, as tsx uses it), built when the run
 * starts and again before each re-run in watch mode (vitest runs a globalSetup once), so it
 * always matches src/; dependencies stay external (node_modules). Written under
 * node_modules/.cache/ so they resolve from there; removed when the run ends.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { TestProject } from 'vitest/node';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export default async function setup(project: TestProject): Promise<() => void> {
  const parent = join(ROOT, 'node_modules', '.cache');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, 'pqmcp-test-worker-'));
  await bundle(dir);
  // Watch mode: the worker's sources may have changed since (the threads a re-run starts load the file anew).
  project.onTestsRerun(() => bundle(dir));
  process.env['PQMCP_SOURCE_CRYPTO_WORKER'] = join(dir, 'crypto-worker.js');
  return () => rmSync(dir, { recursive: true, force: true });
}

async function bundle(dir: string): Promise<void> {
  await build({
    entryPoints: { 'crypto-worker': join(ROOT, 'src', 'transport', 'crypto-worker.ts') },
    outdir: dir,
    bundle: true,
    format: 'esm',
    platform: 'node',
    packages: 'external',
    target: `node${process.versions.node}`,
    keepNames: true,
    sourcemap: true,
    logLevel: 'error',
  });
}
