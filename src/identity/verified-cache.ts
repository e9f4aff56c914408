/**
 * The verified-credential cache: remembers that the issuer's composite signature over one
 * exact credential was verified, so a returning peer's full handshake skips that ML-DSA +
 * Ed25519 verification (the most expensive step of `TrustStore.verifyCredential`).
 *
 * What is cached is one fact: "under trust-store generation G, on backend B, the credential
 * whose bytes hash to D passed steps 2-3 (issuer found, signature valid)". Nothing else.
 * Every other step (decode, issuer lookup, validity window, revocation, pins, expected peer)
 * still runs on every verification, cache hit or not.
 *
 * Sharp edges:
 * - Keyed by SHA-256 of the whole encoded credential (TBS and signature): any other bytes
 *   miss. Finding two credentials with one key is a SHA-256 collision.
 * - An entry only counts for the trust-store generation it was made under. The store bumps
 *   its generation on every change (issuer added, pin added, serial or key revoked), so a
 *   change invalidates every entry at once, before any later verification.
 * - Expiry-aware: an entry is dropped once its credential's not_after (plus the allowed
 *   skew) has passed, and the validity window is re-checked on every hit anyway, so a hit
 *   never yields a verdict for an expired credential.
 * - Bounded: at most `capacity` entries, least recently used evicted. Only credentials that
 *   passed every check of verifyCredential are inserted, so an unauthenticated peer cannot fill it with
 *   junk; a peer holding many valid credentials only evicts (costs speed, never safety).
 * - Capacity 0 disables the cache.
 */
import { toHex } from '../bytes.js';
import type { CryptoBackend } from '../crypto/types.js';
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_VERIFIED_CACHE_SIZE = 1024;

interface Entry {
  generation: number;
  /** Unix seconds: the credential's not_after; the entry is useless after it (plus skew). */
  notAfter: number;
}

export class VerifiedCredentialCache {
  private readonly entries = new Map<string, Entry>();
  private _capacity: number;

  constructor(capacity = DEFAULT_VERIFIED_CACHE_SIZE) {
    this._capacity = checkCapacity(capacity);
  }

  get capacity(): number {
    return this._capacity;
  }

  /** Entries held now (some may be stale until looked up). */
  get size(): number {
    return this.entries.size;
  }

  /** Change the bound; shrinking evicts the least recently used entries. */
  resize(capacity: number): void {
    this._capacity = checkCapacity(capacity);
    this.trim();
  }

  clear(): void {
    this.entries.clear();
  }

  /** The cache key of an encoded credential on a backend. */
  static keyOf(backend: CryptoBackend, encoded: Uint8Array): string {
    return `${backend.name}:${toHex(backend.sha256(encoded))}`;
  }

  /**
   * True if `key` was verified under `generation` and is not past `notAfter + skew` at
   * `nowMs`. A stale entry (other generation, expired) is removed.
   */
  has(key: string, generation: number, nowMs: number, skewSeconds: number): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    if (entry.generation !== generation || nowMs > (entry.notAfter + skewSeconds) * 1000) {
      this.entries.delete(key);
      return false;
    }
    // Most recently used last.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return true;
  }

  /** Record a successful signature verification. */
  add(key: string, generation: number, notAfter: number): void {
    if (this._capacity === 0) return;
    this.entries.delete(key);
    this.entries.set(key, { generation, notAfter });
    this.trim();
  }

  private trim(): void {
    while (this.entries.size > this._capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

function checkCapacity(capacity: unknown): number {
  if (typeof capacity !== 'number' || !Number.isSafeInteger(capacity) || capacity < 0 || capacity > 1_000_000) {
    throw new InvalidArgumentError('verified-credential cache size must be a whole number in [0, 1000000]');
  }
  return capacity;
}
