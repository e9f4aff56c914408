import { defineConfig } from 'tsup';

export default defineConfig([
  // The library: ESM + CJS + types.
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    // Both configs build in parallel into dist/: never clean away the CLI's output.
    clean: ['!cli.js', '!cli.js.map'],
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
