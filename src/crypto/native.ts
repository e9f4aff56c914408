/**
 * The fast backend: node:crypto (OpenSSL) wherever it produces the same bytes as noble,
 * noble where it cannot. `report` says truthfully which implementation serves what.
 *
 * What runs where (feature-detected once, in createNativeBackend, never by version):
 * - Always node:crypto: X25519, Ed25519, ChaCha20-Poly1305, AES-256-GCM, HMAC, HKDF,
 *   SHA-256/512, SHA3-256, SHAKE256 (each falls back to noble if the detection fails).
 *   32-byte keys cross in the `raw-private` / `raw-public` formats where they exist
 *   (Node >= 24.7), else as JWK (Node 20/22: much faster than OpenSSL 3.0's DER decoder),
 *   else in fixed PKCS#8 / SPKI DER wrappers; see `CurveMode` (native-keys.ts).
 * - ML-KEM-768 (`crypto.encapsulate` / `crypto.decapsulate`, keys from the 64-byte d||z
 *   seed via `raw-seed`) and ML-DSA-65 (`crypto.sign(null, msg, { key, context })`, keys
 *   from the 32-byte xi seed) only where Node has them (Node >= 24.7, OpenSSL 3.5); else
 *   the noble implementation serves that primitive.
 * - X-Wing is composed here (xwing-combiner.ts) from this backend's ML-KEM-768, X25519,
 *   SHA3-256 and SHAKE256, so on Node 20 it still gets native X25519 and hashes.
 *
 * Sharp edges:
 * - Explicit randomness goes to noble. OpenSSL's ML-KEM encapsulation and ML-DSA signing
 *   cannot take caller randomness, so a call that passes ML-KEM's `m` or ML-DSA's `rnd`
 *   (known-answer tests, deterministic replays) is served by noble for that one call. It
 *   is correct and deterministic, only slower. Production calls pass no randomness and run
 *   natively.
 * - X25519 and Ed25519 live in native-curves.ts (Ed25519's public-key checks are there),
 *   the AEADs in native-aead.ts.
 * - ML-KEM encapsulation runs the FIPS 203 modulus check in JS before handing the key to
 *   OpenSSL (whose import also refuses such keys) and throws InvalidKeyError.
 * - `mlkem768.keygen().secretKey` is an opaque node:crypto KeyObject here; decapsulate also
 *   accepts noble's expanded secret key (a Uint8Array) and delegates it to noble.
 * - Imported public KeyObjects for Ed25519 and ML-DSA-65 verification are cached per
 *   backend instance, keyed by the exact key bytes, at most 64 (least recently used goes):
 *   issuer and pinned keys recur in every handshake. Ephemeral keys (X25519, ML-KEM) are not
 *   cached, nor is any private key.
 * - Parsed private KeyObjects are cached on the key pairs this backend returns (a
 *   Symbol-keyed slot) or, for key pairs from elsewhere, in a WeakMap: repeated signing and
 *   decapsulation do not re-import keys. They live as long as the key pair object does.
 * - node:crypto is loaded with `process.getBuiltinModule`, not a static import, so this
 *   module imports cleanly anywhere; createNativeBackend throws BackendUnavailableError
 *   where there is no node:crypto. Nothing Node-24-only is touched at module top level.
 * - Outputs are plain Uint8Arrays, never Buffers (whose `slice` aliases memory).
 */
import type { KeyObject } from 'node:crypto';
import { BackendUnavailableError, InvalidArgumentError, InvalidKeyError } from '../errors.js';
import { copyBytes } from '../bytes.js';
import { checkLength } from './_checks.js';
import { KeyCache, PublicKeyCache } from './native-key-cache.js';
import { Keys, detectCurveMode, curveModeWorks, exportRawPublic, probe, u8 } from './native-keys.js';
import type { CurveMode, NodeCryptoModule } from './native-keys.js';
export type { CurveMode };
export { PublicKeyCache };
import { lazyNobleBackend } from './noble-registry.js';
import type {
  BackendName,
  BackendReport,
  CryptoBackend,
  MlDsa65,
  MlDsaKeyPair,
  MlKem768,
} from './types.js';
import { createXWing } from './xwing-combiner.js';
import { nativeAead } from './native-aead.js';
import { nativeEd25519, nativeX25519 } from './native-curves.js';

/** The Node >= 24.7 KEM calls, absent from @types/node 20. */
interface KemCalls {
  encapsulate(key: KeyObject): { sharedKey: Uint8Array; ciphertext: Uint8Array };
  decapsulate(key: KeyObject, ciphertext: Uint8Array): Uint8Array;
}

/** What this Node offers, probed once per backend instance. */
interface Features {
  /** How X25519 / Ed25519 keys are imported and exported. */
  curveMode: CurveMode;
  curves: boolean;
  mlkem: boolean;
  mldsa: boolean;
  aead: boolean;
  hash: boolean;
}

// ---------------------------------------------------------------------------------------
// Loading node:crypto (keys cross in and out through native-keys.ts)
// ---------------------------------------------------------------------------------------

function loadNodeCrypto(): NodeCryptoModule | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== 'function') return undefined;
  try {
    return proc.getBuiltinModule('node:crypto') as NodeCryptoModule | undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Feature detection
// ---------------------------------------------------------------------------------------

function tryList(fn: () => string[]): string[] {
  try {
    return fn();
  } catch {
    return [];
  }
}

function detectFeatures(c: NodeCryptoModule, forcedCurveMode?: CurveMode): Features {
  if (forcedCurveMode !== undefined && !curveModeWorks(c, forcedCurveMode)) {
    throw new BackendUnavailableError(`curve key mode ${JSON.stringify(forcedCurveMode)} is not available in this runtime`);
  }
  const curveMode = forcedCurveMode ?? detectCurveMode(c);
  const keys = new Keys(c, curveMode);
  const curves = probe(() => {
    const x = keys.curvePublicBytes(keys.curvePrivate('x25519', new Uint8Array(32).fill(1)));
    const e = keys.curvePublicBytes(keys.curvePrivate('ed25519', new Uint8Array(32).fill(1)));
    return x.length === 32 && e.length === 32;
  });
  const kem = c as unknown as Partial<KemCalls>;
  const mlkem = probe(() => {
    if (typeof kem.encapsulate !== 'function' || typeof kem.decapsulate !== 'function') return false;
    const sk = keys.raw('private', 'raw-seed', 'ml-kem-768', new Uint8Array(64).fill(1));
    const pk = keys.raw('public', 'raw-public', 'ml-kem-768', exportRawPublic(c.createPublicKey(sk)));
    const { sharedKey, ciphertext } = kem.encapsulate(pk);
    return ciphertext.length === 1088 && c.timingSafeEqual(kem.decapsulate(sk, ciphertext), sharedKey);
  });
  const mldsa = probe(() => {
    // A Node that ignored `context` would sign the wrong message: require that it matters.
    const sk = keys.raw('private', 'raw-seed', 'ml-dsa-65', new Uint8Array(32).fill(1));
    const pk = exportRawPublic(c.createPublicKey(sk));
    const msg = new Uint8Array(1);
    const sig = signWithContext(c, sk, msg, Uint8Array.of(1));
    const pub = keys.raw('public', 'raw-public', 'ml-dsa-65', pk);
    return pk.length === 1952 && sig.length === 3309 && verifyWithContext(c, pub, msg, sig, Uint8Array.of(1)) && !verifyWithContext(c, pub, msg, sig, Uint8Array.of(2));
  });
  const ciphers = tryList(() => c.getCiphers());
  const aead = ciphers.includes('chacha20-poly1305') && ciphers.includes('aes-256-gcm');
  const hashNames = tryList(() => c.getHashes());
  const hash =
    ['sha256', 'sha512', 'sha3-256', 'shake256'].every((n) => hashNames.includes(n)) &&
    probe(() => c.createHash('shake256', { outputLength: 40 }).digest().length === 40);
  return { curveMode, curves, mlkem, mldsa, aead, hash };
}

function signWithContext(c: NodeCryptoModule, key: KeyObject, msg: Uint8Array, context: Uint8Array): Uint8Array {
  return u8(c.sign(null, msg, { key, context } as unknown as KeyObject));
}

function verifyWithContext(c: NodeCryptoModule, key: KeyObject, msg: Uint8Array, sig: Uint8Array, context: Uint8Array): boolean {
  return c.verify(null, msg, { key, context } as unknown as KeyObject, sig);
}

// ---------------------------------------------------------------------------------------
// Hashes, HMAC, HKDF (RFC 5869)
// ---------------------------------------------------------------------------------------

function nativeHmac(c: NodeCryptoModule, key: Uint8Array, data: Uint8Array): Uint8Array {
  return u8(c.createHmac('sha256', key).update(data).digest());
}

/** RFC 5869 section 2.3: T(i) = HMAC(PRK, T(i-1) || info || i), OKM = first L bytes. */
function nativeHkdfExpand(c: NodeCryptoModule, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0 || length > 255 * 32) {
    throw new InvalidArgumentError(`HKDF-Expand length must be an integer from 0 to ${255 * 32}, got ${length}`);
  }
  const okm = new Uint8Array(length);
  // One update per block (T(i-1) || info || i in one buffer): each update call costs ~0.7 us.
  const input = new Uint8Array(32 + info.length + 1);
  input.set(info, 32);
  for (let i = 1, off = 0; off < length; i++, off += 32) {
    input[input.length - 1] = i;
    const t = c.createHmac('sha256', prk).update(i === 1 ? input.subarray(32) : input).digest();
    okm.set(t.subarray(0, Math.min(32, length - off)), off);
    input.set(t, 0);
    t.fill(0);
  }
  input.fill(0);
  return okm;
}

// ---------------------------------------------------------------------------------------
// ML-KEM-768 (FIPS 203) and ML-DSA-65 (FIPS 204)
// ---------------------------------------------------------------------------------------

/**
 * FIPS 203 section 7.2, encapsulation key check 2 ("modulus check"): every 12-bit
 * coefficient of the 1152 encoded bytes of t-hat is below q = 3329.
 */
export function mlkem768ModulusCheck(ek: Uint8Array): boolean {
  for (let i = 0; i < 1152; i += 3) {
    const b0 = ek[i]!;
    const b1 = ek[i + 1]!;
    const b2 = ek[i + 2]!;
    if ((b0 | ((b1 & 0x0f) << 8)) >= 3329 || ((b1 >> 4) | (b2 << 4)) >= 3329) return false;
  }
  return true;
}

function nativeMlKem(c: NodeCryptoModule, keys: Keys, noble: () => CryptoBackend): MlKem768 {
  const kem = c as unknown as KemCalls;
  return {
    keygen(seed) {
      checkLength(seed, 64, 'ML-KEM-768 seed');
      // FIPS 203 ML-KEM.KeyGen_internal(d, z) with seed = d || z.
      const secretKey = keys.raw('private', 'raw-seed', 'ml-kem-768', seed);
      return { publicKey: exportRawPublic(c.createPublicKey(secretKey)), secretKey };
    },
    encapsulate(publicKey, m) {
      checkLength(publicKey, 1184, 'ML-KEM-768 public key');
      if (m !== undefined) return noble().mlkem768.encapsulate(publicKey, m); // caller randomness: see module doc
      if (!mlkem768ModulusCheck(publicKey)) throw new InvalidKeyError();
      let key: KeyObject;
      try {
        key = keys.raw('public', 'raw-public', 'ml-kem-768', publicKey);
      } catch {
        throw new InvalidKeyError();
      }
      const { ciphertext, sharedKey } = kem.encapsulate(key);
      return { ciphertext: u8(ciphertext), sharedSecret: u8(sharedKey) };
    },
    decapsulate(secretKey, ciphertext) {
      checkLength(ciphertext, 1088, 'ML-KEM-768 ciphertext');
      if (secretKey instanceof Uint8Array) return noble().mlkem768.decapsulate(secretKey, ciphertext);
      if (!(secretKey instanceof c.KeyObject) || secretKey.type !== 'private' || secretKey.asymmetricKeyType !== ('ml-kem-768' as string)) {
        throw new InvalidArgumentError('ML-KEM-768 secret key must come from this backend’s keygen');
      }
      return u8(kem.decapsulate(secretKey, ciphertext));
    },
  };
}

function nativeMlDsa(c: NodeCryptoModule, keys: Keys, noble: () => CryptoBackend, publicKeys: PublicKeyCache): MlDsa65 {
  const fromSeed = (seed: Uint8Array): KeyObject => keys.raw('private', 'raw-seed', 'ml-dsa-65', seed);
  const nativeKeys = new KeyCache<MlDsaKeyPair, KeyObject>((kp) => fromSeed(checkLength(kp.seed, 32, 'ML-DSA-65 seed')));
  const nobleKeys = new KeyCache<MlDsaKeyPair, MlDsaKeyPair>((kp) => noble().mldsa65.keygen(kp.seed));
  return {
    publicKeyLength: 1952,
    signatureLength: 3309,
    keygen(seed): MlDsaKeyPair {
      checkLength(seed, 32, 'ML-DSA-65 seed');
      // FIPS 204 ML-DSA.KeyGen_internal(xi).
      const sk = fromSeed(seed);
      return nativeKeys.attach({ seed: copyBytes(seed), publicKey: exportRawPublic(c.createPublicKey(sk)) }, sk);
    },
    sign(kp, message, context, randomness) {
      if (context.length > 255) throw new InvalidArgumentError('ML-DSA context must be at most 255 bytes');
      if (randomness !== undefined) {
        // FIPS 204 rnd given (deterministic / known-answer): OpenSSL cannot take it.
        checkLength(randomness, 32, 'ML-DSA-65 signing randomness');
        return noble().mldsa65.sign(nobleKeys.get(kp), message, context, randomness);
      }
      // FIPS 204 ML-DSA.Sign (pure, hedged) with the context string.
      return signWithContext(c, nativeKeys.get(kp), message, context);
    },
    verify(pk, message, sig, context) {
      if (pk.length !== 1952 || sig.length !== 3309 || context.length > 255) return false;
      try {
        const key = publicKeys.get('ml-dsa-65', pk, () => keys.raw('public', 'raw-public', 'ml-dsa-65', pk));
        return verifyWithContext(c, key, message, sig, context);
      } catch {
        return false;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------------------

const pick = (native: boolean): BackendName => (native ? 'native' : 'noble');

/** Options for tests; production code calls createNativeBackend() with none. */
export interface NativeBackendOptions {
  /** Force how X25519 / Ed25519 keys cross into node:crypto (default: the fastest that works). */
  curveMode?: CurveMode;
}

export function createNativeBackend(options: NativeBackendOptions = {}): CryptoBackend {
  const c = loadNodeCrypto();
  if (!c) throw new BackendUnavailableError('the native backend needs node:crypto, which this runtime does not provide');
  const features = detectFeatures(c, options.curveMode);
  // The portable backend, loaded only if a primitive needs it (noble-registry.ts): on Node 24
  // only caller-supplied randomness (known-answer tests) does.
  const noble = lazyNobleBackend;
  const keys = new Keys(c, features.curveMode);

  const hashes = features.hash
    ? {
        sha256: (d: Uint8Array) => u8(c.createHash('sha256').update(d).digest()),
        sha256Running: () => {
          const h = c.createHash('sha256');
          return { update: (d: Uint8Array) => void h.update(d), digest: () => u8(h.copy().digest()) };
        },
        sha512: (d: Uint8Array) => u8(c.createHash('sha512').update(d).digest()),
        sha3_256: (d: Uint8Array) => u8(c.createHash('sha3-256').update(d).digest()),
        shake256: (d: Uint8Array, outputLength: number) => u8(c.createHash('shake256', { outputLength }).update(d).digest()),
        hmacSha256: (k: Uint8Array, d: Uint8Array) => nativeHmac(c, k, d),
        // RFC 5869 section 2.2: PRK = HMAC-Hash(salt, IKM).
        hkdfExtract: (salt: Uint8Array, ikm: Uint8Array) => nativeHmac(c, salt, ikm),
        hkdfExpand: (prk: Uint8Array, info: Uint8Array, length: number) => nativeHkdfExpand(c, prk, info, length),
      }
    : {
        sha256: noble().sha256,
        sha256Running: noble().sha256Running,
        sha512: noble().sha512,
        sha3_256: noble().sha3_256,
        shake256: noble().shake256,
        hmacSha256: noble().hmacSha256,
        hkdfExtract: noble().hkdfExtract,
        hkdfExpand: noble().hkdfExpand,
      };

  const x25519 = features.curves ? nativeX25519(c, keys) : noble().x25519;
  // Verification keys recur (issuers, pinned peers): imported once, up to 64 of them.
  const publicKeys = new PublicKeyCache(64);
  const ed25519 = features.curves ? nativeEd25519(c, keys, publicKeys) : noble().ed25519;
  const mlkem768 = features.mlkem ? nativeMlKem(c, keys, noble) : noble().mlkem768;
  const mldsa65 = features.mldsa ? nativeMlDsa(c, keys, noble, publicKeys) : noble().mldsa65;
  const randomBytes = (n: number): Uint8Array => c.randomFillSync(new Uint8Array(n));

  const report: BackendReport = {
    name: 'native',
    mlkem: pick(features.mlkem),
    mldsa: pick(features.mldsa),
    x25519: pick(features.curves),
    ed25519: pick(features.curves),
    aead: pick(features.aead),
    hash: pick(features.hash),
  };

  return {
    name: 'native',
    report,
    randomBytes,
    ...hashes,
    aead: features.aead ? (algorithm, key) => nativeAead(c, algorithm, key) : noble().aead,
    x25519,
    ed25519,
    mlkem768,
    mldsa65,
    xwing: createXWing({ mlkem768, x25519, sha3_256: hashes.sha3_256, shake256: hashes.shake256, randomBytes }),
  };
}
