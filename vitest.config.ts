import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Post-quantum signing on the portable backend costs ~15 ms per signature on a
    // shared 2-core machine; handshake-heavy files need headroom, not retries.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    // The crypto worker, bundled once per run (test/helpers/worker-bundle.ts).
    globalSetup: ['test/helpers/worker-bundle.ts'],
  },
});
