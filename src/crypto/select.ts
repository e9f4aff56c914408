/**
 * Backend selection: which CryptoBackend a session uses.
 *
 * Precedence: the explicit `choice` argument, then the `PQMCP_BACKEND` environment variable
 * (`auto` | `noble` | `native`), then `auto`. `auto` picks `native` wherever node:crypto
 * exists (it always has X25519, Ed25519, the AEADs and hashes; its `report` says which
 * primitives fell back to noble, e.g. ML-KEM / ML-DSA on Node 20) and `noble` elsewhere
 * (browsers, edge runtimes).
 *
 * Sharp edges:
 * - Backends are created once per name and cached for the life of the process: feature
 *   detection (a few key operations) runs once.
 * - An unrecognised `PQMCP_BACKEND` (or `choice` from untyped JS) throws
 *   InvalidArgumentError; it is never silently replaced by a default. An empty
 *   `PQMCP_BACKEND` counts as unset.
 * - Asking for `native` where node:crypto is absent throws BackendUnavailableError.
 * - This module imports native.ts, which loads node:crypto only at call time (through
 *   `process.getBuiltinModule`), so importing it pulls no Node built-in into a bundle.
 * - Nor does it import noble.ts: the portable backend comes from noble-registry.ts, which
 *   has it if anything imported noble.ts (browsers always do) and otherwise requires the
 *   @noble libraries on Node the first time a backend needs them. A Node process whose
 *   native backend covers every primitive (Node 24) never loads them.
 */
import { InvalidArgumentError } from '../errors.js';
import { createNativeBackend } from './native.js';
import { lazyNobleBackend } from './noble-registry.js';
import type { BackendName, CryptoBackend } from './types.js';

export type BackendChoice = 'auto' | BackendName;

const CHOICES: readonly BackendChoice[] = ['auto', 'noble', 'native'];

const instances = new Map<BackendName, CryptoBackend>();

function isChoice(v: unknown): v is BackendChoice {
  return typeof v === 'string' && (CHOICES as readonly string[]).includes(v);
}

function envChoice(): BackendChoice | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const raw = env?.PQMCP_BACKEND;
  if (raw === undefined || raw === '') return undefined;
  if (!isChoice(raw)) {
    throw new InvalidArgumentError(`PQMCP_BACKEND must be one of ${CHOICES.join(', ')}; got ${JSON.stringify(raw.slice(0, 40))}`);
  }
  return raw;
}

/** True when this runtime offers node:crypto (Node, and runtimes that emulate it). */
function nodeCryptoAvailable(): boolean {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== 'function') return false;
  try {
    return proc.getBuiltinModule('node:crypto') !== undefined;
  } catch {
    return false;
  }
}

function instance(name: BackendName): CryptoBackend {
  let b = instances.get(name);
  if (!b) {
    b = name === 'native' ? createNativeBackend() : lazyNobleBackend();
    instances.set(name, b);
  }
  return b;
}

/** The backend to use: explicit `choice`, else `PQMCP_BACKEND`, else auto. */
export function selectBackend(choice?: BackendChoice): CryptoBackend {
  if (choice !== undefined && !isChoice(choice)) {
    throw new InvalidArgumentError(`backend must be one of ${CHOICES.join(', ')}; got ${JSON.stringify(String(choice).slice(0, 40))}`);
  }
  const resolved = choice ?? envChoice() ?? 'auto';
  if (resolved !== 'auto') return instance(resolved);
  return instance(nodeCryptoAvailable() ? 'native' : 'noble');
}

const LABELS: [keyof Omit<CryptoBackend['report'], 'name'>, string][] = [
  ['mlkem', 'ML-KEM'],
  ['mldsa', 'ML-DSA'],
  ['aead', 'AEAD'],
  ['x25519', 'X25519'],
  ['ed25519', 'Ed25519'],
  ['hash', 'hashes'],
];

/**
 * One line for logs and CLIs, e.g. "native (ML-KEM: native, ML-DSA: native, AEAD: native)".
 * ML-KEM, ML-DSA and AEAD are always listed; the others only when they differ from the
 * backend's own name.
 */
export function describeBackend(b: CryptoBackend): string {
  const r = b.report;
  const parts = LABELS.filter(([k]) => k === 'mlkem' || k === 'mldsa' || k === 'aead' || r[k] !== r.name).map(([k, label]) => `${label}: ${r[k]}`);
  return `${r.name} (${parts.join(', ')})`;
}
