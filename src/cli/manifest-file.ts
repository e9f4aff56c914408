/**
 * Reading a tool manifest file (pqmcp manifest capture writes them) for
 * `pqmcp credential issue --tools-manifest` and `pqmcp connect --manifest`, with the CLI's
 * errors. Small on purpose: `credential` loads it eagerly.
 */
import { readFileSync } from 'node:fs';
import { decodeManifest } from '../pins/manifest.js';
import type { ToolManifest } from '../pins/manifest.js';
import { CliError } from './output.js';

/** Read a manifest file (for --manifest and --tools-manifest). */
export function readManifest(path: string): ToolManifest {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError('ERR_FILE_READ', `cannot read ${path}: ${(err as Error).message}`, 2, { cause: err });
  }
  try {
    return decodeManifest(JSON.parse(text), path);
  } catch (err) {
    throw new CliError('ERR_FILE_FORMAT', err instanceof SyntaxError ? `${path} is not JSON` : (err as Error).message, 2, { cause: err });
  }
}

