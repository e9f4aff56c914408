/**
 * X-Wing (draft-connolly-cfrg-xwing-kem) composed from a backend's own primitives:
 * ML-KEM-768, X25519, SHA3-256 and SHAKE256. The native backend uses it so that X-Wing
 * runs on node:crypto's X25519 and hashes (and on OpenSSL's ML-KEM where Node has it);
 * the noble backend keeps noble's `ml_kem768_x25519`, an independent implementation the
 * cross-backend tests compare against.
 *
 * Construction (draft sections "Key derivation", "Combiner", "Encapsulation",
 * "Decapsulation"):
 *   expanded  = SHAKE256(seed, 96)
 *   (pk_M, sk_M) = ML-KEM-768.KeyGen_internal(d = expanded[0:32], z = expanded[32:64])
 *   sk_X = expanded[64:96], pk_X = X25519(sk_X, 9)
 *   pk   = pk_M || pk_X                                  (1184 + 32 = 1216 bytes)
 *   encaps randomness eseed (64 B): m = eseed[0:32], ek_X = eseed[32:64]
 *   ct   = ct_M || ct_X                                  (1088 + 32 = 1120 bytes)
 *   ss   = SHA3-256(ss_M || ss_X || ct_X || pk_X || XWingLabel), XWingLabel = 5c2e2f2f5e5c
 *
 * Sharp edges:
 * - Stricter than the draft, as the `XWing` contract in types.ts says: a low-order X25519
 *   point (all-zero DH output) throws InvalidKeyError in encapsulate and in decapsulate,
 *   and an ML-KEM public key failing the FIPS 203 modulus check throws InvalidKeyError
 *   (both come from the underlying primitives). Wrong lengths throw InvalidArgumentError.
 * - A tampered ML-KEM ciphertext is NOT detected here (implicit rejection): decapsulate
 *   returns an unrelated secret and the handshake fails at the first record.
 * - The expanded secret keys are cached per key pair object (key-disposal.ts: one
 *   process-wide WeakMap, filled by keygen or by the first decapsulation of a key pair made
 *   elsewhere), so repeated decapsulation does not re-run ML-KEM key generation. The cache
 *   holds secret key material for as long as the key pair object lives, or until
 *   `dispose(keyPair)`, which wipes the seed and wipes (Uint8Arrays) or drops (node:crypto
 *   KeyObjects) the expanded keys; a disposed key pair is refused by decapsulate. Wiping the
 *   seed by hand is not disposal: the cached keys are then dropped at the next decapsulation
 *   (each use checks, in constant time, that the seed is still the one they came from), and
 *   the key pair decapsulates as the seed it now holds.
 * - encapsulate's ephemeral X25519 secret (ek_X) is wiped, in both its forms, before it returns.
 * - No node:crypto import here: it is portable code over whatever primitives it is given.
 */
import { concat, copyBytes, equalBytes } from '../bytes.js';
import { checkLength } from './_checks.js';
import { cacheExpansion, cachedExpansion, checkNotDisposed, disposeKeyPair } from './key-disposal.js';
import type { MlKem768, X25519, X25519PrivateKey, XWing, XWingKeyPair } from './types.js';

/** The primitives X-Wing is built from. */
export interface XWingParts {
  readonly mlkem768: MlKem768;
  readonly x25519: X25519;
  sha3_256(data: Uint8Array): Uint8Array;
  shake256(data: Uint8Array, outputLength: number): Uint8Array;
  randomBytes(n: number): Uint8Array;
}

/** The draft's XWingLabel: the ASCII art `\.//^\`. */
export const XWING_LABEL = Uint8Array.of(0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c);

const SEED_LENGTH = 32;
const PK_M_LENGTH = 1184;
const CT_M_LENGTH = 1088;
const X_LENGTH = 32;
const PUBLIC_KEY_LENGTH = PK_M_LENGTH + X_LENGTH;
const CIPHERTEXT_LENGTH = CT_M_LENGTH + X_LENGTH;

/** The decapsulation key expanded from the 32-byte seed. */
interface Expanded {
  /** The seed it was expanded from (a copy): a key pair whose seed changed no longer matches. */
  readonly seed: Uint8Array;
  /** node:crypto KeyObject (dropped on wipe) or noble's secret key bytes (zeroed on wipe). */
  skM: unknown;
  readonly pkM: Uint8Array;
  /** sk_X, taken in by the X25519 implementation once (no import per decapsulation). */
  readonly skX: X25519PrivateKey;
  readonly pkX: Uint8Array;
  wipe(): void;
}

export function createXWing(parts: XWingParts): XWing {
  /** Draft "expandDecapsulationKey". */
  function expand(seed: Uint8Array): Expanded {
    const expanded = parts.shake256(seed, 96);
    let skX: X25519PrivateKey;
    let keys: { publicKey: Uint8Array; secretKey: unknown };
    try {
      keys = parts.mlkem768.keygen(expanded.subarray(0, 64));
      skX = parts.x25519.privateKey(expanded.subarray(64, 96)); // a copy
    } finally {
      expanded.fill(0);
    }
    const ex: Expanded = {
      seed: copyBytes(seed),
      skM: keys.secretKey,
      pkM: keys.publicKey,
      skX,
      pkX: skX.publicKey,
      wipe() {
        ex.seed.fill(0);
        if (ex.skM instanceof Uint8Array) ex.skM.fill(0);
        ex.skM = undefined;
        ex.skX.dispose();
      },
    };
    return ex;
  }

  /** The cached expansion of the key pair's current seed (re-expanded if the seed changed). */
  function expandedFor(kp: XWingKeyPair): Expanded {
    checkNotDisposed(kp);
    checkLength(kp.seed, SEED_LENGTH, 'X-Wing seed');
    const cached = cachedExpansion<Expanded>(kp);
    if (cached !== undefined && equalBytes(cached.seed, kp.seed)) return cached;
    const fresh = expand(kp.seed);
    cacheExpansion(kp, fresh); // wipes the stale one
    return fresh;
  }

  /** Draft "Combiner". */
  function combine(ssM: Uint8Array, ssX: Uint8Array, ctX: Uint8Array, pkX: Uint8Array): Uint8Array {
    const input = concat(ssM, ssX, ctX, pkX, XWING_LABEL);
    const ss = parts.sha3_256(input);
    input.fill(0);
    return ss;
  }

  return {
    publicKeyLength: PUBLIC_KEY_LENGTH,
    ciphertextLength: CIPHERTEXT_LENGTH,

    /** Draft "GenerateKeyPairDerand" (the seed is the private key). */
    keygen(seed: Uint8Array): XWingKeyPair {
      checkLength(seed, SEED_LENGTH, 'X-Wing seed');
      const ex = expand(seed);
      const kp: XWingKeyPair = { seed: copyBytes(seed), publicKey: concat(ex.pkM, ex.pkX) };
      cacheExpansion(kp, ex); // keyed by this object: a spread copy does not inherit it
      return kp;
    },

    /** Draft "Encapsulate" / "EncapsulateDerand". */
    encapsulate(publicKey: Uint8Array, randomness?: Uint8Array) {
      checkLength(publicKey, PUBLIC_KEY_LENGTH, 'X-Wing public key');
      if (randomness !== undefined) checkLength(randomness, 64, 'X-Wing encapsulation randomness');
      const pkM = publicKey.subarray(0, PK_M_LENGTH);
      const pkX = publicKey.subarray(PK_M_LENGTH);
      const m = randomness?.subarray(0, 32);
      const ekXBytes = randomness ? copyBytes(randomness.subarray(32, 64)) : parts.randomBytes(X_LENGTH);
      let ekX: X25519PrivateKey;
      try {
        ekX = parts.x25519.privateKey(ekXBytes); // one import for ct_X and ss_X
      } finally {
        ekXBytes.fill(0);
      }
      const ctX = ekX.publicKey;
      let ssX: Uint8Array;
      try {
        ssX = ekX.sharedSecret(pkX); // InvalidKeyError on low order
      } finally {
        ekX.dispose(); // its own copy of ek_X (review2 F5)
      }
      let ctM: Uint8Array;
      let ssM: Uint8Array;
      try {
        ({ ciphertext: ctM, sharedSecret: ssM } = parts.mlkem768.encapsulate(pkM, m)); // InvalidKeyError on modulus failure
      } catch (err) {
        ssX.fill(0);
        throw err;
      }
      const sharedSecret = combine(ssM, ssX, ctX, pkX);
      ssM.fill(0);
      ssX.fill(0);
      return { ciphertext: concat(ctM, ctX), sharedSecret };
    },

    /** Draft "Decapsulate". */
    decapsulate(keyPair: XWingKeyPair, ciphertext: Uint8Array): Uint8Array {
      checkLength(ciphertext, CIPHERTEXT_LENGTH, 'X-Wing ciphertext');
      const ex = expandedFor(keyPair);
      const ctM = ciphertext.subarray(0, CT_M_LENGTH);
      const ctX = ciphertext.subarray(CT_M_LENGTH);
      const ssX = ex.skX.sharedSecret(ctX); // InvalidKeyError on low order
      const ssM = parts.mlkem768.decapsulate(ex.skM, ctM);
      const ss = combine(ssM, ssX, ctX, ex.pkX);
      ssM.fill(0);
      ssX.fill(0);
      return ss;
    },

    dispose: disposeKeyPair,
  };
}
