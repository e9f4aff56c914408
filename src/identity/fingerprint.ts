/**
 * Key fingerprints: the stable, public name of a composite identity key.
 *
 *   fingerprint = SHA-256( utf8("PQMCP/1 key fingerprint") || u16 key_algorithm || public_key )
 *
 * with key_algorithm = 0x0001 (MLDSA65-Ed25519 composite) and the 1984-byte composite public
 * key (mldsaPK || edPK). The label has a fixed length, so the input is unambiguous.
 *
 * Sharp edges:
 * - This is what servers see as the peer's token (`authInfo.token`) and what trust stores pin
 *   and revoke. Changing the construction renames every identity: don't.
 * - Only the composite algorithm exists; any other public key length is InvalidArgumentError.
 * - Hex output is lowercase, 64 characters. Compare raw fingerprints with `equalBytes`.
 */
import { concat, toHex, utf8Encode } from '../bytes.js';
import { COMPOSITE_PUBLIC_KEY_LENGTH } from '../crypto/composite.js';
import type { CryptoBackend } from '../crypto/types.js';
import { InvalidArgumentError } from '../errors.js';

/** key_algorithm / signature_algorithm code of MLDSA65-Ed25519 composite keys and signatures. */
export const KEY_ALGORITHM_MLDSA65_ED25519 = 0x0001;
export const FINGERPRINT_LENGTH = 32;
export const FINGERPRINT_LABEL = utf8Encode('PQMCP/1 key fingerprint');

export function keyFingerprint(backend: CryptoBackend, publicKey: Uint8Array): Uint8Array {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== COMPOSITE_PUBLIC_KEY_LENGTH) {
    throw new InvalidArgumentError(`public key must be a ${COMPOSITE_PUBLIC_KEY_LENGTH}-byte composite key`);
  }
  const algorithm = Uint8Array.of(KEY_ALGORITHM_MLDSA65_ED25519 >>> 8, KEY_ALGORITHM_MLDSA65_ED25519 & 0xff);
  return backend.sha256(concat(FINGERPRINT_LABEL, algorithm, publicKey));
}

/** keyFingerprint as lowercase hex (64 characters). */
export function fingerprintHex(backend: CryptoBackend, publicKey: Uint8Array): string {
  return toHex(keyFingerprint(backend, publicKey));
}
