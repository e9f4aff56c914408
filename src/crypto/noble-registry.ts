/**
 * Where the backend selector and the native backend find the portable backend without
 * importing @noble/* themselves (so a Node process that never needs noble never parses it;
 * `pqmcp connect` on Node 24, whose native backend covers every primitive, is one).
 *
 * Order: the libraries registered by noble.ts when something imported it (always so in
 * browsers, whose entry imports it; and through `import 'pqmcp'`), else, on Node, the same
 * libraries required on first use (`require` of the ESM @noble packages, Node >= 20.19),
 * else BackendUnavailableError.
 *
 * Sharp edges:
 * - Synchronous on purpose: `selectBackend()` and `createNativeBackend()` are synchronous
 *   public API. Node's `require` of ES modules is what makes the lazy load synchronous.
 * - The module specifiers below are the ones noble.ts imports: both paths load the same
 *   modules (one instance: Node's require of an ES module uses the same module cache).
 */
import { BackendUnavailableError } from '../errors.js';
import type { CryptoBackend } from './types.js';
import { nobleBackendFrom } from './noble-core.js';
import type { NobleLib } from './noble-core.js';

let registered: NobleLib | undefined;
let backend: CryptoBackend | undefined;

/** noble.ts calls this when it is evaluated. */
export function registerNobleLib(lib: NobleLib): void {
  registered ??= lib;
}

type Require = (id: string) => Record<string, unknown>;

function nodeRequire(): Require | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== 'function') return undefined;
  const mod = proc.getBuiltinModule('node:module') as { createRequire?: (from: string) => Require } | undefined;
  return mod?.createRequire?.(import.meta.url);
}

function requireLib(): NobleLib | undefined {
  const req = nodeRequire();
  if (!req) return undefined;
  const chacha = req('@noble/ciphers/chacha.js');
  const aes = req('@noble/ciphers/aes.js');
  const curves = req('@noble/curves/ed25519.js');
  const hkdf = req('@noble/hashes/hkdf.js');
  const hmacMod = req('@noble/hashes/hmac.js');
  const sha2 = req('@noble/hashes/sha2.js');
  const sha3 = req('@noble/hashes/sha3.js');
  const utils = req('@noble/hashes/utils.js');
  const kem = req('@noble/post-quantum/ml-kem.js');
  const dsa = req('@noble/post-quantum/ml-dsa.js');
  const hybrid = req('@noble/post-quantum/hybrid.js');
  return {
    chacha20poly1305: chacha.chacha20poly1305,
    gcm: aes.gcm,
    ed25519: curves.ed25519,
    x25519: curves.x25519,
    expand: hkdf.expand,
    extract: hkdf.extract,
    hmac: hmacMod.hmac,
    sha256: sha2.sha256,
    sha512: sha2.sha512,
    sha3_256: sha3.sha3_256,
    shake256: sha3.shake256,
    randomBytes: utils.randomBytes,
    ml_kem768: kem.ml_kem768,
    ml_dsa65: dsa.ml_dsa65,
    ml_kem768_x25519: hybrid.ml_kem768_x25519,
  } as NobleLib;
}

/** The portable backend, loaded on first call (one instance per process). */
export function lazyNobleBackend(): CryptoBackend {
  if (backend) return backend;
  const lib = registered ?? requireLib();
  if (!lib) throw new BackendUnavailableError('the noble backend was not loaded: import it from pqmcp (createNobleBackend) in this runtime');
  backend = nobleBackendFrom(lib);
  return backend;
}
