import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
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
    include: ['test/**/*.test.ts'],
    // Post-quantum signing on the portable backend costs ~15 ms per signature on a
    // shared 2-core machine; handshake-heavy files need headroom, not retries.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    // One line: whether the CLI tests start dist/cli.js or src/cli/main.ts (test/helpers/built.ts);
    // the crypto worker, bundled once per run (test/helpers/worker-bundle.ts).
    globalSetup: ['test/helpers/cli-announce.ts', 'test/helpers/worker-bundle.ts'],
  },
});
