/**
 * Access to the shared public test vectors (Wycheproof, CCTV, X-Wing draft, noble), which
 * live beside the checkout in `../shared/vectors/` and are never copied into the repo.
 *
 * Sharp edges:
 * - When the folder (or one file) is missing, suites built with `describeVectors` are
 *   skipped and a warning naming the missing path is printed: a checkout without the
 *   vectors still runs every other test, visibly minus these.
 * - `PQMCP_VECTORS_DIR` overrides the location.
 * - Files are read lazily, inside tests, never at collection time: vitest still runs the
 *   body of a skipped `describe` to collect its tests.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe } from 'vitest';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const vectorsDir = process.env.PQMCP_VECTORS_DIR ? path.resolve(process.env.PQMCP_VECTORS_DIR) : path.resolve(repoRoot, '..', 'shared', 'vectors');

export function vectorPath(name: string): string {
  return path.join(vectorsDir, name);
}

/** True when every named vector file exists; warns (once per file) naming what is missing. */
const warned = new Set<string>();
export function vectorsAvailable(...names: string[]): boolean {
  const missing = existsSync(vectorsDir) ? names.filter((n) => !existsSync(vectorPath(n))) : [vectorsDir];
  for (const m of missing) {
    const p = m === vectorsDir ? m : vectorPath(m);
    if (warned.has(p)) continue;
    warned.add(p);
    console.warn(`[pqmcp tests] test vectors not found at ${p}: the tests that need them are SKIPPED`);
  }
  return missing.length === 0;
}

/** A describe block that runs only when the named vector files exist (else skipped, with a warning). */
export function describeVectors(title: string, files: string[], fn: () => void): void {
  describe.skipIf(!vectorsAvailable(...files))(`${title} [vectors: ${files.join(', ')}]`, fn);
}

const cache = new Map<string, unknown>();

export function readVectorJson<T>(name: string): T {
  if (!cache.has(name)) cache.set(name, JSON.parse(readFileSync(vectorPath(name), 'utf8')));
  return cache.get(name) as T;
}

/** Text of a vector file; `.gz` files are gunzipped. */
export function readVectorText(name: string): string {
  const raw = readFileSync(vectorPath(name));
  return (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}

export function hex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || /[^0-9a-fA-F]/.test(s)) throw new Error(`bad hex string of length ${s.length}`);
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export function toHexString(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

// --- Wycheproof file shapes (only the fields the tests read) ---

export interface WycheproofFile<G> {
  algorithm: string;
  schema?: string;
  numberOfTests: number;
  testGroups: G[];
}

export interface WycheproofTest {
  tcId: number;
  comment?: string;
  flags?: string[];
  result: 'valid' | 'invalid' | 'acceptable';
}

export interface Group<T> {
  type: string;
  tests: T[];
}

/** What `fn` throws, or undefined when it returns (vector loops record, not stop at, a throw). */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e;
  }
}
