/**
 * The scripts that benchmarks/run.ts starts as processes of their own (measuring clients,
 * servers, the flooder, the browser suite's Node client), bundled once per run with esbuild
 * so that each process starts with plain `node <bundle>` instead of `node --import tsx
 * <script>` (tsx resolves, reads and transforms every module of src/ on every start: about
 * 1 s of CPU per process here, ~40 processes in a smoke run; the bundle ~0.5 s, built in
 * ~0.5 s).
 *
 * The code measured is the code tsx ran: the same esbuild transform with tsx 4's options
 * (target this Node, names kept: its `__name` helper stays, minified whitespace) and this
 * repository's tsconfig.json; dependencies stay external (node_modules, loaded by Node as
 * before). What leaves the measured processes is tsx's own loader (its module hooks thread).
 *
 * The bundle is written under node_modules/.cache/ (its external imports resolve from there
 * as from the repository) in a directory of its own per run, removed when the run exits.
 * The library's crypto worker (src/transport/crypto-threads.ts starts `./crypto-worker.js`
 * beside its own module) is an entry of the bundle, next to the chunk that starts it.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { BUNDLE_ENV } from './proc.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Scripts under benchmarks/ started as processes by the runner's suites. */
export const BUNDLED_SCRIPTS = ['client.ts', 'server.ts', 'flooder.ts', 'browser-node-client.ts'] as const;

/**
 * Bundle the scripts into a fresh directory, and have every later spawnWorker of this process
 * (and of its children: the environment) start them from it. Returns the directory.
 */
export async function bundleWorkers(): Promise<string> {
  const parent = join(ROOT, 'node_modules', '.cache');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, 'pqmcp-bench-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const entryPoints: Record<string, string> = { 'crypto-worker': join(ROOT, 'src', 'transport', 'crypto-worker.ts') };
  for (const script of BUNDLED_SCRIPTS) entryPoints[script.replace(/\.ts$/, '')] = join(ROOT, 'benchmarks', script);
  await build({
    entryPoints,
    outdir: dir,
    bundle: true,
    splitting: true,
    chunkNames: 'chunk-[hash]',
    format: 'esm',
    platform: 'node',
    packages: 'external',
    // tsx 4's transform options (node_modules/tsx: target, keepNames, minifyWhitespace).
    target: `node${process.versions.node}`,
    keepNames: true,
    minifyWhitespace: true,
    // Mapped stack traces with PQMCP_BENCH_NODE_FLAGS=--enable-source-maps.
    sourcemap: true,
    logLevel: 'error',
  });
  process.env[BUNDLE_ENV] = dir;
  return dir;
}
