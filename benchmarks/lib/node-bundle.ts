/**
 * This repository's TypeScript bundled for Node with esbuild, as tsx 4 transforms it (target
 * this Node, names kept: its `__name` helper stays), dependencies external (node_modules,
 * loaded by Node as before), with source maps. Shared by the two places that start code
 * bundled instead of through tsx: the benchmark runner's processes (lib/bundle.ts) and the
 * test run's crypto worker (test/helpers/worker-bundle.ts; test/ already imports
 * benchmarks/lib/, and src/ imports neither).
 *
 * A bundle goes under node_modules/.cache/, so that its external imports resolve from there
 * as from the repository.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The library's crypto worker (src/transport/crypto-threads.ts starts `crypto-worker.js`). */
export const CRYPTO_WORKER_ENTRY: Readonly<Record<string, string>> = {
  'crypto-worker': join(REPO_ROOT, 'src', 'transport', 'crypto-worker.ts'),
};

/** A fresh directory under node_modules/.cache/ named `${prefix}XXXXXX`; the caller removes it. */
export function bundleCacheDir(prefix: string): string {
  const parent = join(REPO_ROOT, 'node_modules', '.cache');
  mkdirSync(parent, { recursive: true });
  return mkdtempSync(join(parent, prefix));
}

/** What a caller may add: code splitting (several entries) and tsx's whitespace minification. */
export type NodeBundleExtras = Pick<BuildOptions, 'splitting' | 'chunkNames' | 'minifyWhitespace'>;

/** Bundle `entryPoints` (output name -> source) into `outdir` as ESM for this Node. */
export async function bundleForNode(entryPoints: Record<string, string>, outdir: string, extras: NodeBundleExtras = {}): Promise<void> {
  await build({
    entryPoints,
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'node',
    packages: 'external',
    // tsx 4's transform options (node_modules/tsx: target, keepNames; minifyWhitespace an extra).
    target: `node${process.versions.node}`,
    keepNames: true,
    // Mapped stack traces (node --enable-source-maps; PQMCP_BENCH_NODE_FLAGS for the benchmarks).
    sourcemap: true,
    logLevel: 'error',
    ...extras,
  });
}
