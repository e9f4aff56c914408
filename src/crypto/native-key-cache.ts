/**
 * The native backend's key caches: derived private KeyObjects attached to the key pair
 * objects that own them (KeyCache), and imported public KeyObjects of recurring
 * verification keys (PublicKeyCache, bounded, least recently used evicted).
 *
 * Sharp edge: private keys never outlive their key pair object (a Symbol slot on our own
 * key pairs, a WeakMap for others); only public keys are cached by value.
 */
import type { KeyObject } from 'node:crypto';

/** Cache of derived private keys: a Symbol slot on our own key pairs, a WeakMap for others. */
export class KeyCache<K extends object, V> {
  readonly slot = Symbol('pqmcp.native.key');
  private readonly foreign = new WeakMap<K, V>();

  constructor(private readonly derive: (kp: K) => V) {}

  attach<T extends K>(kp: T, value: V): T {
    Object.defineProperty(kp, this.slot, { value, enumerable: false });
    return kp;
  }

  get(kp: K): V {
    const own = (kp as Record<symbol, V | undefined>)[this.slot];
    if (own !== undefined) return own;
    let v = this.foreign.get(kp);
    if (v === undefined) {
      v = this.derive(kp);
      this.foreign.set(kp, v);
    }
    return v;
  }
}

/**
 * Imported public KeyObjects for public keys that recur (issuer keys, pinned or returning
 * peers' keys), keyed by the exact key bytes and bounded: at most `max` entries, least
 * recently used evicted first. Public keys only: private keys are never kept beyond the key
 * pair object that owns them (KeyCache). A key that fails to import is not cached.
 */
export class PublicKeyCache {
  private readonly entries = new Map<string, KeyObject>();

  constructor(
    private readonly max = 64,
    private readonly encode: ((bytes: Uint8Array) => string) | undefined = latin1,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cached KeyObject for (`type`, `bytes`), or `load()`'s, cached. */
  get(type: string, bytes: Uint8Array, load: () => KeyObject): KeyObject {
    if (this.encode === undefined) return load();
    const id = type + ':' + this.encode(bytes);
    const hit = this.entries.get(id);
    if (hit !== undefined) {
      this.entries.delete(id); // most recently used goes last
      this.entries.set(id, hit);
      return hit;
    }
    const key = load();
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(id, key);
    return key;
  }
}

const BufferClass = (globalThis as { Buffer?: typeof Buffer }).Buffer;
/** The bytes as a string, one character per byte (exact: distinct bytes, distinct strings). */
const latin1: ((bytes: Uint8Array) => string) | undefined = BufferClass && ((b) => BufferClass.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1'));
