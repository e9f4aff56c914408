/**
 * The scripts that benchmarks/run.ts starts as processes of their own (measuring clients,
 * servers, the flooder, the browser suite's Node client), bundled once per run with esbuild
 * so that each process starts with plain `node <bundle>` instead of `node --import tsx
 * <script>` (tsx resolves, reads and transforms every module of src/ on every start: about
 * 1 s of CPU per process here, ~40 processes in a smoke run; the bundle ~0.5 s, built in
 * ~0.5 s).
 *
 * The code measured is the code tsx ran: the same esbuild transform with tsx 4's options
 * (lib/node-bundle.ts, shared with the tests' worker bundle; here with minified whitespace,
 * as tsx) and this repository's tsconfig.json; dependencies stay external. What leaves the
 * measured processes is tsx's own loader (its module hooks thread).
 *
 * The bundle is written under node_modules/.cache/ in a directory of its own per run,
 * removed when the run exits.
 * The library's crypto worker (src/transport/crypto-threads.ts starts `./crypto-worker.js`
 * beside its own module) is an entry of the bundle, next to the chunk that starts it.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE_ENV } from './proc.js';
import { bundleCacheDir, bundleForNode, CRYPTO_WORKER_ENTRY, REPO_ROOT } from './node-bundle.js';

/** Scripts under benchmarks/ started as processes by the runner's suites. */
export const BUNDLED_SCRIPTS = ['client.ts', 'server.ts', 'flooder.ts', 'browser-node-client.ts'] as const;

/**
 * Bundle the scripts into a fresh directory, and have every later spawnWorker of this process
 * (and of its children: the environment) start them from it. Returns the directory.
 */
export async function bundleWorkers(): Promise<string> {
  const dir = bundleCacheDir('pqmcp-bench-');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const entryPoints: Record<string, string> = { ...CRYPTO_WORKER_ENTRY };
  for (const script of BUNDLED_SCRIPTS) entryPoints[script.replace(/\.ts$/, '')] = join(REPO_ROOT, 'benchmarks', script);
  // Chunks shared between the entries; whitespace minified as tsx does.
  await bundleForNode(entryPoints, dir, { splitting: true, chunkNames: 'chunk-[hash]', minifyWhitespace: true });
  process.env[BUNDLE_ENV] = dir;
  return dir;
}
