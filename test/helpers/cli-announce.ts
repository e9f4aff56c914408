/**
 * vitest's globalSetup: says once per run which `pqmcp` the CLI tests start (test/helpers/built.ts).
 */
import { cliUnderTestLine } from './built.js';

export function setup(): void {
  console.log(cliUnderTestLine());
}
