/**
 * Composite ML-DSA-65 + Ed25519 signatures, following draft-ietf-lamps-pq-composite-sigs
 * (MLDSA65-Ed25519-SHA512), built on whichever backend is passed in.
 *
 * Construction (draft section "Composite-ML-DSA.Sign"):
 *   M' = Prefix || Label || len(ctx) || ctx || SHA-512(M)
 *   mldsaSig = ML-DSA-65.Sign(mldsaSK, M', ctx = Label)
 *   edSig    = Ed25519.Sign(edSK, M')
 *   signature = mldsaSig (3309) || edSig (64)            -> 3373 bytes
 *   publicKey = mldsaPK (1952) || edPK (32)              -> 1984 bytes
 *   seed      = mldsaSeed (32) || edSeed (32)            -> 64 bytes (the private key)
 *
 * Sharp edges:
 * - Verification requires BOTH halves to verify; it evaluates both before answering, so
 *   the time taken does not reveal which half failed, and it never says which.
 * - Ed25519 verification is RFC 8032 strict on both backends.
 * - `ctx` is at most 255 bytes (one length byte), as in the draft.
 * - Differences from the draft are listed in docs/protocol.md ("Composite signatures"):
 *   we carry no OIDs or ASN.1 (raw concatenated encodings only).
 */
import { concat, copyBytes, utf8Encode } from '../bytes.js';
import { InvalidArgumentError } from '../errors.js';
import type { CryptoBackend, Ed25519KeyPair, MlDsaKeyPair } from './types.js';

export const COMPOSITE_SEED_LENGTH = 64;
export const COMPOSITE_PUBLIC_KEY_LENGTH = 1952 + 32;
export const COMPOSITE_SIGNATURE_LENGTH = 3309 + 64;

/** ASCII "CompositeAlgorithmSignatures2025" (the draft's Prefix). */
export const COMPOSITE_PREFIX = utf8Encode('CompositeAlgorithmSignatures2025');
/** The draft's Label for MLDSA65-Ed25519-SHA512. */
export const COMPOSITE_LABEL = utf8Encode('COMPSIG-MLDSA65-Ed25519-SHA512');

export interface CompositeKeyPair {
  /** mldsaPK || edPK, 1984 bytes. */
  readonly publicKey: Uint8Array;
  /** mldsaSeed || edSeed, 64 bytes: the private key as stored. */
  readonly seed: Uint8Array;
  readonly mldsa: MlDsaKeyPair;
  readonly ed25519: Ed25519KeyPair;
}

export function compositeKeygen(backend: CryptoBackend, seed: Uint8Array): CompositeKeyPair {
  if (seed.length !== COMPOSITE_SEED_LENGTH) throw new InvalidArgumentError(`composite seed must be ${COMPOSITE_SEED_LENGTH} bytes, got ${seed.length}`);
  const mldsa = backend.mldsa65.keygen(seed.subarray(0, 32));
  const ed = backend.ed25519.keygen(seed.subarray(32, 64));
  return { publicKey: concat(mldsa.publicKey, ed.publicKey), seed: copyBytes(seed), mldsa, ed25519: ed };
}

/** M' of the draft. */
function representative(backend: CryptoBackend, message: Uint8Array, context: Uint8Array): Uint8Array {
  if (context.length > 255) throw new InvalidArgumentError('composite signature context must be at most 255 bytes');
  return concat(COMPOSITE_PREFIX, COMPOSITE_LABEL, Uint8Array.of(context.length), context, backend.sha512(message));
}

/**
 * Sign `message` under `context`. `randomness` (32 bytes) is passed to ML-DSA as its
 * FIPS 204 `rnd` to make the signature reproducible in known-answer tests; omit it in
 * production for hedged signing. Ed25519 is deterministic either way.
 */
export function compositeSign(
  backend: CryptoBackend,
  key: CompositeKeyPair,
  message: Uint8Array,
  context: Uint8Array,
  randomness?: Uint8Array,
): Uint8Array {
  const mPrime = representative(backend, message, context);
  const mldsaSig = backend.mldsa65.sign(key.mldsa, mPrime, COMPOSITE_LABEL, randomness);
  const edSig = backend.ed25519.sign(key.ed25519, mPrime);
  return concat(mldsaSig, edSig);
}

/** True only if both halves verify. Never throws on malformed input. */
export function compositeVerify(
  backend: CryptoBackend,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  context: Uint8Array,
): boolean {
  if (publicKey.length !== COMPOSITE_PUBLIC_KEY_LENGTH || signature.length !== COMPOSITE_SIGNATURE_LENGTH || context.length > 255) return false;
  const mPrime = representative(backend, message, context);
  const mldsaOk = backend.mldsa65.verify(publicKey.subarray(0, 1952), mPrime, signature.subarray(0, 3309), COMPOSITE_LABEL);
  const edOk = backend.ed25519.verify(publicKey.subarray(1952), mPrime, signature.subarray(3309));
  return mldsaOk && edOk;
}
