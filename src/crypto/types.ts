/**
 * The one small interface behind which pqmcp's cryptography lives.
 *
 * Two backends implement it: `noble` (pure JS, runs anywhere, browsers included) and
 * `native` (node:crypto; ML-KEM-768 and ML-DSA-65 only where Node >= 24.7 has them,
 * otherwise that primitive falls back to noble). Every layer above this one receives a
 * `CryptoBackend` and never knows which one runs.
 *
 * Contract every backend must keep, byte for byte (the cross-backend tests check it):
 * - Key generation from a seed is deterministic and identical across backends.
 * - Given the same explicit randomness, encapsulation produces identical ciphertext and
 *   shared secret. Without explicit randomness the backend draws its own.
 * - AEAD, HKDF, HMAC and hashes are deterministic functions.
 * - Signatures may differ between backends when hedged, but each verifies on the other.
 *   With explicit `randomness` (the FIPS 204 `rnd`), signing is deterministic and identical.
 *
 * Sharp edges:
 * - `XWing.decapsulate` does not detect a tampered ML-KEM ciphertext: like ML-KEM it
 *   yields an unrelated secret (implicit rejection), and the handshake fails later, at the
 *   first AEAD record. It throws InvalidKeyError only when the ciphertext's X25519 part is
 *   a low-order point (all-zero DH output). `encapsulate` throws InvalidKeyError on a
 *   public key whose ML-KEM part fails the FIPS 203 modulus check or whose X25519 part is
 *   low order. Both are stricter than the X-Wing draft, which tolerates low-order points;
 *   TLS's X25519MLKEM768 refuses them, and so do we. Wrong lengths throw
 *   InvalidArgumentError (callers check lengths at the wire boundary first).
 * - `Aead.open` returns `undefined` on authentication failure; it never throws for a bad
 *   tag and never returns partial plaintext.
 * - Everything is synchronous: all supported primitives are synchronous on both backends.
 */

/** Backend names. */
export type BackendName = 'noble' | 'native';

/** Which implementation serves each primitive (the native backend may fall back). */
export interface BackendReport {
  name: BackendName;
  mlkem: BackendName;
  mldsa: BackendName;
  x25519: BackendName;
  ed25519: BackendName;
  aead: BackendName;
  hash: BackendName;
}

export type AeadAlgorithm = 'chacha20-poly1305' | 'aes-256-gcm';

/** A keyed AEAD instance. Nonces are 12 bytes, tags 16 bytes, keys 32 bytes. */
export interface Aead {
  /** Returns ciphertext || tag. */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /**
   * The record form, in one new buffer: returns `aad || ciphertext || tag` where the
   * plaintext is `plaintext || trailer`. Byte for byte
   * `concat(aad, seal(nonce, concat(plaintext, trailer), aad))`, without the concatenations:
   * the inputs are only read, and the AEAD output is copied once, into the result.
   * With `out` (exactly the result's length, else InvalidArgumentError), the record is
   * written into it and `out` is returned: a caller can reuse record buffers.
   */
  sealFramed(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, trailer: Uint8Array, out?: Uint8Array): Uint8Array;
  /** Returns the plaintext, or undefined if the tag does not verify. */
  open(nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
}

/** X-Wing (draft-connolly-cfrg-xwing-kem): ML-KEM-768 + X25519 with the X-Wing combiner. */
export interface XWing {
  /** 1216 */
  readonly publicKeyLength: number;
  /** 1120 */
  readonly ciphertextLength: number;
  /** Decapsulation key from a 32-byte seed (the X-Wing private key). */
  keygen(seed: Uint8Array): XWingKeyPair;
  /**
   * Encapsulate to `publicKey`. `randomness` (64 bytes: 32 for ML-KEM's m, 32 for the
   * X25519 ephemeral secret, per the draft's derandomized encapsulation) makes it
   * deterministic; omit it in production.
   */
  encapsulate(publicKey: Uint8Array, randomness?: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  /** Throws InvalidArgumentError for a key pair that was disposed (by any backend). */
  decapsulate(keyPair: XWingKeyPair, ciphertext: Uint8Array): Uint8Array;
  /**
   * Done with `keyPair` (key-disposal.ts): its seed is wiped, any expanded decapsulation key
   * cached for it is wiped (bytes) or dropped (node:crypto KeyObjects, which cannot be
   * wiped), and every backend's decapsulate refuses it from now on. Idempotent. Wiping the
   * seed by hand is not enough on the native backend, whose cached expanded key would stay
   * until the key pair's next use.
   */
  dispose(keyPair: XWingKeyPair): void;
}

export interface XWingKeyPair {
  readonly publicKey: Uint8Array;
  /** The 32-byte X-Wing seed (secret). */
  readonly seed: Uint8Array;
}

/** ML-DSA-65 (FIPS 204), pure mode, with a context string. */
export interface MlDsa65 {
  /** 1952 / 3309 */
  readonly publicKeyLength: number;
  readonly signatureLength: number;
  keygen(seed: Uint8Array): MlDsaKeyPair;
  /** `randomness`: the 32-byte FIPS 204 rnd; omit for hedged signing with fresh randomness. */
  sign(keyPair: MlDsaKeyPair, message: Uint8Array, context: Uint8Array, randomness?: Uint8Array): Uint8Array;
  /** False on any invalid input (wrong lengths included); never throws. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, context: Uint8Array): boolean;
}

export interface MlDsaKeyPair {
  readonly publicKey: Uint8Array;
  /** The 32-byte ML-DSA seed xi (secret). */
  readonly seed: Uint8Array;
}

/**
 * Ed25519 (RFC 8032), strict verification: canonical encodings, small-order public keys
 * refused, no ZIP-215 leniency. The backends agree on every honest signature and every
 * Wycheproof case; on a signature its own key holder crafts with a torsion component, noble
 * (cofactored check) may accept what OpenSSL (cofactorless) refuses. Not a forgery: only the
 * key holder can build one.
 */
export interface Ed25519 {
  keygen(seed: Uint8Array): Ed25519KeyPair;
  sign(keyPair: Ed25519KeyPair, message: Uint8Array): Uint8Array;
  /** False on any invalid input; never throws. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

export interface Ed25519KeyPair {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
}

/** Raw primitives the X-Wing and composite constructions and the tests need. */
export interface X25519 {
  publicKey(secretKey: Uint8Array): Uint8Array;
  /** Throws InvalidKeyError for low-order points (an all-zero shared secret). */
  sharedSecret(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /**
   * The secret key taken in once (a copy: wiping `secretKey` afterwards changes nothing), for
   * its public key and agreements without a key import per use (X-Wing uses each twice).
   */
  privateKey(secretKey: Uint8Array): X25519PrivateKey;
}

export interface X25519PrivateKey {
  readonly publicKey: Uint8Array;
  /** As X25519.sharedSecret with this key: InvalidKeyError for low-order points; InvalidArgumentError once disposed. */
  sharedSecret(publicKey: Uint8Array): Uint8Array;
  /**
   * Done with the key: the portable backend wipes its copy of the secret, the native one
   * drops its KeyObject (which cannot be wiped). Idempotent.
   */
  dispose(): void;
}

export interface MlKem768 {
  /** Key pair from the 64-byte FIPS 203 seed d || z. */
  keygen(seed: Uint8Array): { publicKey: Uint8Array; secretKey: unknown };
  /** Throws InvalidKeyError when the public key fails the FIPS 203 modulus check; InvalidArgumentError on a wrong length. */
  encapsulate(publicKey: Uint8Array, m?: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(secretKey: unknown, ciphertext: Uint8Array): Uint8Array;
}

/** An incremental hash: `digest()` is the hash of everything so far, and updates may follow. */
export interface RunningHash {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

export interface CryptoBackend {
  readonly name: BackendName;
  readonly report: BackendReport;

  randomBytes(n: number): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  /** A running SHA-256 (the handshake transcript: each message hashed once, however often the hash is read). */
  sha256Running(): RunningHash;
  sha512(data: Uint8Array): Uint8Array;
  sha3_256(data: Uint8Array): Uint8Array;
  shake256(data: Uint8Array, outputLength: number): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-Extract with SHA-256 (RFC 5869). */
  hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array;
  /** HKDF-Expand with SHA-256 (RFC 5869); length <= 255 * 32. */
  hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  aead(algorithm: AeadAlgorithm, key: Uint8Array): Aead;

  readonly x25519: X25519;
  readonly ed25519: Ed25519;
  readonly mlkem768: MlKem768;
  readonly mldsa65: MlDsa65;
  readonly xwing: XWing;
}
