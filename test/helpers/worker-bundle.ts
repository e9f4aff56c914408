/**
 * vitest globalSetup: bundles the crypto pool's worker (src/transport/crypto-worker.ts)
 * once per test run, and names the bundle in PQMCP_SOURCE_CRYPTO_WORKER for the test
 * processes (and the CLI processes they start from the sources) to start instead of the
 * source through tsx (src/transport/crypto-threads.ts): every listener a test starts has a
 * worker thread or two, and through tsx each costs about 1 s of CPU to start (tsx's hooks
 * registered and the worker's modules transformed per thread), bundled about 0.3 s.
 *
 * The same sources through the same transform (esbuild as tsx uses it, the options shared
 * with the benchmarks' bundle: benchmarks/lib/node-bundle.ts), built when the run
 * starts and again before each re-run in watch mode (vitest runs a globalSetup once), so it
 * always matches src/; dependencies stay external (node_modules). Written under
 * node_modules/.cache/ so they resolve from there; removed when the run ends.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { bundleCacheDir, bundleForNode, CRYPTO_WORKER_ENTRY } from '../../benchmarks/lib/node-bundle.js';

export default async function setup(project: TestProject): Promise<() => void> {
  const dir = bundleCacheDir('pqmcp-test-worker-');
  const bundle = () => bundleForNode({ ...CRYPTO_WORKER_ENTRY }, dir);
  await bundle();
  // Watch mode: the worker's sources may have changed since (the threads a re-run starts load the file anew).
  project.onTestsRerun(bundle);
  process.env['PQMCP_SOURCE_CRYPTO_WORKER'] = join(dir, 'crypto-worker.js');
  return () => rmSync(dir, { recursive: true, force: true });
}
