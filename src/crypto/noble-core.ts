/**
 * The portable backend over the @noble/* modules it is given (`NobleLib`): no Node
 * built-ins and no imports of @noble itself, so that a caller can choose how the libraries
 * are loaded: noble.ts imports them statically (browsers, `createNobleBackend`), and
 * noble-node.ts requires them on first use (the native backend's fallback and the backend
 * selector on Node, so a process that never needs noble never parses it).
 *
 * Sharp edges:
 * - Ed25519 verification passes `{ zip215: false }`: RFC 8032 strict (canonical S and R,
 *   no small-order tricks), matching node:crypto. noble's default is ZIP-215.
 * - ML-KEM `encapsulate` runs the FIPS 203 encapsulation-key modulus check and throws on
 *   failure; we turn that into InvalidKeyError.
 * - AES-256-GCM here is table-based (not constant time on all CPUs); ChaCha20-Poly1305 is
 *   the default suite for that reason.
 */
import type { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import type { gcm } from '@noble/ciphers/aes.js';
import type { ed25519, x25519 } from '@noble/curves/ed25519.js';
import type { expand, extract } from '@noble/hashes/hkdf.js';
import type { hmac } from '@noble/hashes/hmac.js';
import type { sha256, sha512 } from '@noble/hashes/sha2.js';
import type { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import type { randomBytes } from '@noble/hashes/utils.js';
import type { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import type { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import type { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { InvalidArgumentError, InvalidKeyError } from '../errors.js';
import type { Aead, AeadAlgorithm, CryptoBackend, Ed25519KeyPair, MlDsaKeyPair, XWingKeyPair } from './types.js';
import { checkLength, isAllZero } from './_checks.js';
import { checkNotDisposed, disposeKeyPair } from './key-disposal.js';
import { copyBytes } from '../bytes.js';

/** The @noble exports the portable backend uses, by their own names. */
export interface NobleLib {
  chacha20poly1305: typeof chacha20poly1305;
  gcm: typeof gcm;
  ed25519: typeof ed25519;
  x25519: typeof x25519;
  expand: typeof expand;
  extract: typeof extract;
  hmac: typeof hmac;
  sha256: typeof sha256;
  sha512: typeof sha512;
  sha3_256: typeof sha3_256;
  shake256: typeof shake256;
  randomBytes: typeof randomBytes;
  ml_kem768: typeof ml_kem768;
  ml_dsa65: typeof ml_dsa65;
  ml_kem768_x25519: typeof ml_kem768_x25519;
}

const ALL_NOBLE = { name: 'noble', mlkem: 'noble', mldsa: 'noble', x25519: 'noble', ed25519: 'noble', aead: 'noble', hash: 'noble' } as const;

function nobleAead(lib: NobleLib, algorithm: AeadAlgorithm, key: Uint8Array): Aead {
  if (algorithm !== 'chacha20-poly1305' && algorithm !== 'aes-256-gcm') throw new InvalidArgumentError(`unknown AEAD algorithm ${JSON.stringify(algorithm)}`);
  key = copyBytes(checkLength(key, 32, 'AEAD key')); // our own copy: a caller wiping `key` must not change ours
  const make = algorithm === 'chacha20-poly1305' ? lib.chacha20poly1305 : lib.gcm;
  return {
    seal: (nonce, plaintext, aad) => make(key, checkLength(nonce, 12, 'AEAD nonce'), aad).encrypt(plaintext),
    sealFramed(nonce, aad, plaintext, trailer, into) {
      checkLength(nonce, 12, 'AEAD nonce');
      // One output buffer: aad, then the plaintext (encrypted where it lies), then the tag.
      const start = aad.length;
      const end = start + plaintext.length + trailer.length;
      if (into !== undefined && into.length !== end + 16) throw new InvalidArgumentError(`sealFramed output must be ${end + 16} bytes, got ${into.length}`);
      const out = into ?? new Uint8Array(end + 16);
      out.set(aad, 0);
      out.set(plaintext, start);
      out.set(trailer, start + plaintext.length);
      out.set(make(key, nonce, aad).encrypt(out.subarray(start, end)), start);
      return out;
    },
    open: (nonce, sealed, aad) => {
      if (sealed.length < 16) return undefined;
      try {
        return make(key, nonce, aad).decrypt(sealed);
      } catch {
        return undefined;
      }
    },
  };
}

/** X25519 DH that refuses low-order peer points (all-zero output), as X-Wing and TLS require. */
function x25519Shared(lib: NobleLib, secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  checkLength(secretKey, 32, 'X25519 secret key');
  checkLength(publicKey, 32, 'X25519 public key');
  let out: Uint8Array;
  try {
    out = lib.x25519.getSharedSecret(secretKey, publicKey);
  } catch {
    throw new InvalidKeyError();
  }
  if (isAllZero(out)) throw new InvalidKeyError();
  return out;
}

/** The portable backend over `lib`. */
export function nobleBackendFrom(lib: NobleLib): CryptoBackend {
  return {
    name: 'noble',
    report: { ...ALL_NOBLE },
    randomBytes: (n) => lib.randomBytes(n),
    sha256: (d) => lib.sha256(d),
    sha256Running() {
      const h = lib.sha256.create();
      return { update: (d) => void h.update(d), digest: () => h.clone().digest() };
    },
    sha512: (d) => lib.sha512(d),
    sha3_256: (d) => lib.sha3_256(d),
    shake256: (d, dkLen) => lib.shake256(d, { dkLen }),
    hmacSha256: (k, d) => lib.hmac(lib.sha256, k, d),
    hkdfExtract: (salt, ikm) => lib.extract(lib.sha256, ikm, salt),
    hkdfExpand: (prk, info, length) => {
      if (!Number.isSafeInteger(length) || length < 0 || length > 255 * 32) throw new InvalidArgumentError(`HKDF-Expand length must be an integer from 0 to ${255 * 32}, got ${length}`);
      return lib.expand(lib.sha256, prk, info, length);
    },
    aead: (algorithm, key) => nobleAead(lib, algorithm, key),

    x25519: {
      publicKey: (sk) => lib.x25519.getPublicKey(checkLength(sk, 32, 'X25519 secret key')),
      sharedSecret: (secretKey, publicKey) => x25519Shared(lib, secretKey, publicKey),
      privateKey(secretKey) {
        const own = copyBytes(checkLength(secretKey, 32, 'X25519 secret key'));
        let disposed = false;
        return {
          publicKey: lib.x25519.getPublicKey(own),
          sharedSecret(publicKey) {
            if (disposed) throw new InvalidArgumentError('X25519 private key was disposed');
            return x25519Shared(lib, own, publicKey);
          },
          dispose() {
            disposed = true;
            own.fill(0); // the copy this key holds (review2 F5)
          },
        };
      },
    },

    ed25519: {
      keygen(seed): Ed25519KeyPair {
        checkLength(seed, 32, 'Ed25519 seed');
        return { seed: copyBytes(seed), publicKey: lib.ed25519.getPublicKey(seed) };
      },
      sign: (kp, msg) => lib.ed25519.sign(msg, kp.seed),
      verify(pk, msg, sig) {
        if (pk.length !== 32 || sig.length !== 64) return false;
        try {
          return lib.ed25519.verify(sig, msg, pk, { zip215: false });
        } catch {
          return false;
        }
      },
    },

    mlkem768: {
      keygen(seed) {
        checkLength(seed, 64, 'ML-KEM-768 seed');
        const { publicKey, secretKey } = lib.ml_kem768.keygen(seed);
        return { publicKey, secretKey };
      },
      encapsulate(publicKey, m) {
        checkLength(publicKey, 1184, 'ML-KEM-768 public key');
        if (m !== undefined) checkLength(m, 32, 'ML-KEM-768 encapsulation randomness');
        try {
          const { cipherText, sharedSecret } = lib.ml_kem768.encapsulate(publicKey, m);
          return { ciphertext: cipherText, sharedSecret };
        } catch {
          throw new InvalidKeyError();
        }
      },
      decapsulate(secretKey, ciphertext) {
        checkLength(ciphertext, 1088, 'ML-KEM-768 ciphertext');
        return lib.ml_kem768.decapsulate(ciphertext, secretKey as Uint8Array);
      },
    },

    mldsa65: {
      publicKeyLength: 1952,
      signatureLength: 3309,
      keygen(seed): MlDsaKeyPair {
        checkLength(seed, 32, 'ML-DSA-65 seed');
        const { publicKey, secretKey } = lib.ml_dsa65.keygen(seed);
        // Not enumerable: a spread copy (possibly with another seed) must not inherit it.
        return Object.defineProperty({ seed: copyBytes(seed), publicKey }, EXPANDED, { value: secretKey, enumerable: false });
      },
      sign(kp, msg, context, randomness) {
        if (context.length > 255) throw new InvalidArgumentError('ML-DSA context must be at most 255 bytes');
        if (randomness !== undefined) checkLength(randomness, 32, 'ML-DSA-65 signing randomness');
        const sk = (kp as { [EXPANDED]?: Uint8Array })[EXPANDED] ?? lib.ml_dsa65.keygen(kp.seed).secretKey;
        return lib.ml_dsa65.sign(msg, sk, { context, extraEntropy: randomness ?? undefined });
      },
      verify(pk, msg, sig, context) {
        if (pk.length !== 1952 || sig.length !== 3309 || context.length > 255) return false;
        try {
          return lib.ml_dsa65.verify(sig, msg, pk, { context });
        } catch {
          return false;
        }
      },
    },

    xwing: {
      publicKeyLength: 1216,
      ciphertextLength: 1120,
      keygen(seed): XWingKeyPair {
        checkLength(seed, 32, 'X-Wing seed');
        return { seed: copyBytes(seed), publicKey: lib.ml_kem768_x25519.keygen(seed).publicKey };
      },
      encapsulate(publicKey, randomness) {
        checkLength(publicKey, 1216, 'X-Wing public key');
        if (randomness) checkLength(randomness, 64, 'X-Wing encapsulation randomness');
        let out: { cipherText: Uint8Array; sharedSecret: Uint8Array };
        try {
          out = lib.ml_kem768_x25519.encapsulate(publicKey, randomness);
        } catch {
          throw new InvalidKeyError();
        }
        return { ciphertext: out.cipherText, sharedSecret: out.sharedSecret };
      },
      decapsulate(kp, ciphertext) {
        checkLength(ciphertext, 1120, 'X-Wing ciphertext');
        checkNotDisposed(kp);
        try {
          return lib.ml_kem768_x25519.decapsulate(ciphertext, kp.seed);
        } catch {
          throw new InvalidKeyError();
        }
      },
      // noble's X-Wing keeps nothing but the seed (it re-expands per decapsulation): wiping
      // the seed is the wipe; the mark makes every backend refuse the key pair.
      dispose: disposeKeyPair,
    },
  };
}

/** Private slot for the expanded ML-DSA secret key, so signing does not re-expand the seed. */
const EXPANDED = Symbol('pqmcp.mldsa.expanded');
