/**
 * When a test may use `npm run build`'s output (dist/) in place of the sources: only when
 * every file it names was written after the last change to anything the build is made from
 * (src/, package.json, package-lock.json, tsconfig.json, tsup.config.ts). CI builds just
 * before it tests, so there it tests the build, which is what users run; a developer with a
 * stale build, or none, still tests their sources.
 *
 * The pqmcp CLI tests (test/cli/helpers.ts) start `node dist/cli.js` when it is fresh, else
 * `node --import tsx src/cli/main.ts` (~2-3x the start-up per process);
 * `PQMCP_TEST_CLI=src` makes them use the sources regardless.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = join(ROOT, 'dist');
const INPUTS = ['src', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsup.config.ts'];

/** The newest modification time of `path` and everything under it, ms. */
function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

/** Whether every one of `files` (paths under dist/) exists and is newer than every build input. */
export function builtAfterSources(files: readonly string[]): boolean {
  const paths = files.map((f) => join(DIST, f));
  if (!paths.every((p) => existsSync(p))) return false;
  const made = Math.min(...paths.map((p) => statSync(p).mtimeMs));
  return INPUTS.map((p) => join(ROOT, p))
    .filter((p) => existsSync(p))
    .every((p) => newest(p) < made);
}

/**
 * Which `pqmcp` the CLI tests start: 'dist' (dist/cli.js, its cli-*.js chunks beside it and
 * dist/crypto-worker.js, all from the one build) or 'src' (src/cli/main.ts through tsx).
 */
export function cliUnderTest(): 'dist' | 'src' {
  if (process.env['PQMCP_TEST_CLI'] === 'src') return 'src';
  return builtAfterSources(['cli.js', 'crypto-worker.js']) ? 'dist' : 'src';
}

/** tsx by absolute URL, so what it runs can run in any working directory: `node --import TSX_LOADER file.ts`. */
export const TSX_LOADER = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

/** Node's arguments that start `pqmcp` (before the CLI's own): the build or the sources, as cliUnderTest() says. */
export function cliNodeArgs(): string[] {
  return cliUnderTest() === 'dist' ? [join(DIST, 'cli.js')] : ['--import', TSX_LOADER, join(ROOT, 'src/cli/main.ts')];
}

/** The one line a run prints about it (vitest's globalSetup, test/helpers/cli-announce.ts). */
export function cliUnderTestLine(): string {
  return cliUnderTest() === 'dist'
    ? 'pqmcp CLI tests start the build: node dist/cli.js (built after the last change to src/)'
    : `pqmcp CLI tests start the sources: node --import tsx src/cli/main.ts (${process.env['PQMCP_TEST_CLI'] === 'src' ? 'PQMCP_TEST_CLI=src' : 'no dist/cli.js built after the last change to src/'})`;
}
