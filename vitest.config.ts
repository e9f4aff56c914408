import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

/**
 * The tests that run the TypeScript compiler over files (tsc on the published .d.ts in fresh
 * consumer projects; docs/api.md against the entry points' exports, read with the compiler
 * API): their answer does not depend on the Node that runs them, so CI runs them on one
 * runtime (.ci/run: the Node 20 run passes `--project '!compiler'`). `npm test` runs them.
 */
const COMPILER = ['test/types/published-dts.test.ts', 'test/types/api-documented.test.ts'];

/**
 * Test files that share their worker processes (isolate: false): in-process tests of the
 * library's inner layers, which leave no process-wide state behind that another file could
 * see (the environment restored, no fake timers, no Cedar engine: test/policy keeps a process
 * per file, see its v8-fault test). A file in a process of its own pays for the process and
 * for importing src/ again through vite's module runner, ~0.5-1 s of CPU per file; here that
 * is paid once per worker. Every other file has a process of its own, as before.
 */
const SHARED = [
  'test/crypto/**/*.test.ts',
  'test/handshake/**/*.test.ts',
  'test/identity/**/*.test.ts',
  'test/record/**/*.test.ts',
  'test/session/**/*.test.ts',
  'test/property/**/*.test.ts',
  'test/resumption/**/*.test.ts',
  'test/audit/**/*.test.ts',
  'test/stackless.test.ts',
];

/** Every project's settings (a project inherits none of the root's). */
const PROJECT = {
  // The examples import the package by its name, as an application does ('pqmcp',
  // 'pqmcp/policy', 'pqmcp/browser'); here, as for tsx and tsc (tsconfig.json's paths),
  // those names are the sources, not a build.
  resolve: {
    alias: [
      { find: /^pqmcp$/, replacement: src('index.ts') },
      { find: /^pqmcp\/policy$/, replacement: src('policy/index.ts') },
      { find: /^pqmcp\/browser$/, replacement: src('browser/index.ts') },
    ],
  },
  test: {
    // Post-quantum signing on the portable backend costs ~15 ms per signature on a
    // shared 2-core machine; handshake-heavy files need headroom, not retries.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
} as const;

export default defineConfig({
  test: {
    maxWorkers: 2,
    reporters: ['default'],
    // One line: whether the CLI tests start dist/cli.js or src/cli/main.ts (test/helpers/built.ts);
    // the crypto worker, bundled once per run (test/helpers/worker-bundle.ts).
    globalSetup: ['test/helpers/cli-announce.ts', 'test/helpers/worker-bundle.ts'],
    // Each file of test/ is in exactly one project.
    projects: [
      { ...PROJECT, test: { ...PROJECT.test, name: 'shared', include: SHARED, isolate: false } },
      { ...PROJECT, test: { ...PROJECT.test, name: 'compiler', include: COMPILER } },
      { ...PROJECT, test: { ...PROJECT.test, name: 'isolated', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...SHARED, ...COMPILER] } },
    ],
  },
});
