/**
 * Disposing of X-Wing key pairs (`XWing.dispose`), shared by both backends so that a key
 * pair disposed through one is refused by the other too.
 *
 * A key pair's secret is its 32-byte seed, but the X-Wing combiner (xwing-combiner.ts)
 * caches the decapsulation key expanded from it (ML-KEM-768 and X25519 private keys) so
 * that decapsulation does not re-run ML-KEM key generation. Wiping the seed alone leaves
 * that expanded key able to decapsulate. `disposeKeyPair` does the whole job: it marks the
 * key pair disposed (decapsulate refuses it on every backend), wipes its seed, and wipes
 * and drops whatever expanded key is cached for it.
 *
 * Sharp edges:
 * - What "wipe" can reach: Uint8Arrays are zeroed (the seed; on the portable paths the
 *   ML-KEM secret key bytes and the X25519 secret copy). node:crypto KeyObjects cannot be
 *   zeroed from JavaScript: they are dropped, and OpenSSL frees (and clears) them when they
 *   are garbage collected. Copies a library made inside its own computations are out of reach.
 * - One cache entry per key pair object, process-wide (a WeakMap: it lives as long as the
 *   key pair does). A spread copy is another object: it has no entry and is not disposed.
 * - Disposal is idempotent and cannot be undone: a disposed key pair never decapsulates
 *   again, even if someone writes a seed back into it.
 */
import { InvalidArgumentError } from '../errors.js';
import type { XWingKeyPair } from './types.js';

/** A cached expansion of a key pair's seed, able to wipe itself. */
export interface Wipeable {
  wipe(): void;
}

const DISPOSED = new WeakSet<XWingKeyPair>();
const EXPANSIONS = new WeakMap<XWingKeyPair, Wipeable>();

/** The expansion cached for `keyPair`, if any. */
export function cachedExpansion<T extends Wipeable>(keyPair: XWingKeyPair): T | undefined {
  return EXPANSIONS.get(keyPair) as T | undefined;
}

/** Cache `expansion` for `keyPair`, wiping any expansion it replaces. */
export function cacheExpansion(keyPair: XWingKeyPair, expansion: Wipeable): void {
  const old = EXPANSIONS.get(keyPair);
  if (old !== undefined && old !== expansion) old.wipe();
  EXPANSIONS.set(keyPair, expansion);
}

/** Wipe and forget the expansion cached for `keyPair` (the key pair itself stays usable). */
export function dropExpansion(keyPair: XWingKeyPair): void {
  EXPANSIONS.get(keyPair)?.wipe();
  EXPANSIONS.delete(keyPair);
}

/** XWing.dispose on every backend: mark, wipe the seed, wipe and drop the expanded key. */
export function disposeKeyPair(keyPair: XWingKeyPair): void {
  if (keyPair === null || typeof keyPair !== 'object') throw new InvalidArgumentError('X-Wing key pair must be an object');
  DISPOSED.add(keyPair);
  if (keyPair.seed instanceof Uint8Array) keyPair.seed.fill(0);
  dropExpansion(keyPair);
}

/** Throws InvalidArgumentError if `keyPair` was disposed (decapsulate calls this first). */
export function checkNotDisposed(keyPair: XWingKeyPair): void {
  if (keyPair !== null && typeof keyPair === 'object' && DISPOSED.has(keyPair)) {
    throw new InvalidArgumentError('X-Wing key pair was disposed: it cannot decapsulate any more');
  }
}
