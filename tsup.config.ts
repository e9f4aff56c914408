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
    clean: ['!cli.js', '!cli.js.map', '!policy.*', '!browser.*', '!crypto-worker.*'],
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
  // The `pqmcp` executable (package.json "bin"): one ESM file; the #! line is kept and the
  // file is made executable. Dependencies stay external, as for the library.
  {
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    splitting: false,
  },
]);
