import { existsSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { defineConfig } from 'tsup';
import type { Plugin } from 'esbuild';

/**
 * pqmcp/policy is its own entry point, so the Cedar engine stays out of `import 'pqmcp'`.
 * It shares the error classes with the core: its imports of src/errors.ts resolve to the
 * installed 'pqmcp' package instead of a second copy, so `instanceof PqmcpError` holds.
 */
const coreErrors: Plugin = {
  name: 'pqmcp-core-errors',
  setup(build) {
    build.onResolve({ filter: /\/errors\.js$/ }, (args) => (args.importer.includes('/src/policy/') && args.path === '../errors.js' ? { path: 'pqmcp', external: true } : undefined));
  },
};

/**
 * The CLI's chunks are named by their content's hash, and no config's clean removes them
 * (the configs build in parallel, so the library's clean spares the CLI's files): each build
 * left the previous builds' cli-*.js beside its own, and `npm pack` shipped them all
 * (test/package/packed.test.ts). Once the CLI's build has its output, this removes the
 * cli-* files in dist/ that it does not write.
 */
const staleCliChunks: Plugin = {
  name: 'pqmcp-stale-cli-chunks',
  setup(build) {
    build.onEnd((result) => {
      const outdir = build.initialOptions.outdir;
      if (result.errors.length > 0 || !result.outputFiles?.length || !outdir || !existsSync(outdir)) return;
      const written = new Set(result.outputFiles.map((f) => basename(f.path)));
      for (const name of readdirSync(outdir)) {
        if (/^cli-.+\.js(\.map)?$/.test(name) && !written.has(name)) rmSync(join(outdir, name), { force: true });
      }
    });
  },
};

export default defineConfig([
  // The library: ESM + CJS + types.
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    // import.meta.url in the CJS build too: the crypto pool finds its worker beside it.
    shims: true,
    dts: true,
    sourcemap: true,
    // Both configs build in parallel into dist/: never clean away the CLI's output.
    clean: ['!cli.js', '!cli.js.map', '!cli-*', '!policy.*', '!browser.*', '!crypto-worker.*'],
    target: 'node20',
    platform: 'node',
    splitting: false,
  },
  // pqmcp/policy: Cedar authorization and quotas (the WASM engine is an optional peer,
  // imported at run time only when a policy is loaded).
  {
    entry: { policy: 'src/policy/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    splitting: false,
    esbuildPlugins: [coreErrors],
  },
  // The browser entry (package.json "./browser"): ESM for bundlers, no Node built-ins in its
  // graph. Dependencies stay external: the application's bundler resolves them (`ws` to its
  // browser stub, which this entry never calls).
  {
    entry: { browser: 'src/browser/index.ts' },
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'es2022',
    platform: 'browser',
    splitting: false,
  },
  // The handshake crypto worker (src/transport/crypto-pool.ts starts it from dist/).
  {
    entry: { 'crypto-worker': 'src/transport/crypto-worker.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    splitting: false,
  },
  // The `pqmcp` executable (package.json "bin"): dist/cli.js (the #! line is kept and the file
  // is made executable) plus its lazily imported commands as dist/cli-*.js chunks. Split, so
  // that `pqmcp --help` and `connect` neither parse nor load (esbuild hoists external imports
  // to the top of a single file) what they do not use. Chunks stay beside cli.js: code in
  // them finds crypto-worker.js and package.json relative to its own URL. Dependencies stay
  // external, as for the library.
  {
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    splitting: true,
    esbuildOptions(options) {
      options.chunkNames = 'cli-[hash]';
    },
    esbuildPlugins: [staleCliChunks],
  },
]);
