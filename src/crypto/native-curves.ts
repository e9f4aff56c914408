/**
 * X25519 (RFC 7748) and Ed25519 (RFC 8032) on node:crypto, for the native backend
 * (native.ts); keys cross in and out through native-keys.ts.
 *
 * Sharp edges:
 * - Ed25519 verification: OpenSSL checks the cofactorless equation and rejects s >= L.
 *   Before calling it we refuse, as noble's strict mode does, a public key whose encoding
 *   is non-canonical (y >= p, or x = 0 with the sign bit set) or that is one of the eight
 *   small-order points (OpenSSL 3.0, i.e. Node 20, accepts those). noble checks the
 *   cofactored equation instead, so a signature crafted by a key holder with a small-order
 *   component in R (or a mixed-order public key) verifies on noble but not here. Honest
 *   signatures, and every Wycheproof case, verify identically on both.
 * - X25519 refuses the all-zero output of a low-order point (InvalidKeyError), as X-Wing
 *   and TLS require. `privateKey()` imports the secret once; its `dispose()` drops the
 *   KeyObject (which cannot be wiped from JavaScript), after which it refuses to agree.
 * - Private Ed25519 KeyObjects are cached per key pair (KeyCache); verification keys in
 *   the backend's PublicKeyCache, and only keys that pass the checks are ever imported.
 */
import type { KeyObject } from 'node:crypto';
import { InvalidArgumentError, InvalidKeyError } from '../errors.js';
import { copyBytes } from '../bytes.js';
import { checkLength, isAllZero } from './_checks.js';
import { KeyCache, type PublicKeyCache } from './native-key-cache.js';
import { u8, type Keys, type NodeCryptoModule } from './native-keys.js';
import type { Ed25519, Ed25519KeyPair, X25519 } from './types.js';

export function nativeX25519(c: NodeCryptoModule, keys: Keys): X25519 {
  /** X25519 with an imported private key; refuses the all-zero output of a low-order point (RFC 7748 6.1). */
  const agree = (privateKey: KeyObject, publicKey: Uint8Array): Uint8Array => {
    checkLength(publicKey, 32, 'X25519 public key');
    let out: Uint8Array;
    try {
      out = u8(c.diffieHellman({ privateKey, publicKey: keys.curvePublic('x25519', publicKey) }));
    } catch {
      throw new InvalidKeyError(); // OpenSSL refuses an all-zero result itself
    }
    if (isAllZero(out)) throw new InvalidKeyError();
    return out;
  };
  const importPrivate = (secretKey: Uint8Array): KeyObject => keys.curvePrivate('x25519', checkLength(secretKey, 32, 'X25519 secret key'));
  return {
    publicKey: (secretKey) => keys.curvePublicBytes(importPrivate(secretKey)),
    sharedSecret: (secretKey, publicKey) => agree(importPrivate(secretKey), publicKey),
    privateKey(secretKey) {
      let key: KeyObject | undefined = importPrivate(secretKey); // imported once (~35 us on Node 24), used for both
      return {
        publicKey: keys.curvePublicBytes(key),
        sharedSecret(publicKey) {
          if (key === undefined) throw new InvalidArgumentError('X25519 private key was disposed');
          return agree(key, publicKey);
        },
        dispose: () => void (key = undefined), // a KeyObject cannot be wiped, only dropped
      };
    },
  };
}

const P_25519 = (1n << 255n) - 19n;

/** The eight small-order points of edwards25519, canonical encodings (hex). */
const ED25519_SMALL_ORDER = new Set([
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
]);

/**
 * The public-key checks noble's strict mode makes and OpenSSL 3.0 does not: RFC 8032
 * section 5.1.3 decoding (y < p; x = 0 with the sign bit set is invalid) and no
 * small-order key. Public data only, so no constant-time care is needed.
 */
function ed25519PublicKeyAcceptable(pk: Uint8Array): boolean {
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(pk[i]! & (i === 31 ? 0x7f : 0xff));
  if (y >= P_25519) return false;
  const signBit = (pk[31]! & 0x80) !== 0;
  if (signBit && (y === 1n || y === P_25519 - 1n)) return false; // x = 0 exactly when y = +-1
  let hex = '';
  for (const b of pk) hex += b.toString(16).padStart(2, '0');
  return !ED25519_SMALL_ORDER.has(hex);
}

export function nativeEd25519(c: NodeCryptoModule, keys: Keys, publicKeys: PublicKeyCache): Ed25519 {
  const cache = new KeyCache<Ed25519KeyPair, KeyObject>((kp) => keys.curvePrivate('ed25519', checkLength(kp.seed, 32, 'Ed25519 seed')));
  return {
    keygen(seed): Ed25519KeyPair {
      checkLength(seed, 32, 'Ed25519 seed');
      const priv = keys.curvePrivate('ed25519', seed);
      return cache.attach({ seed: copyBytes(seed), publicKey: keys.curvePublicBytes(priv) }, priv);
    },
    sign: (kp, msg) => u8(c.sign(null, msg, cache.get(kp))),
    verify(pk, msg, sig) {
      if (!(pk instanceof Uint8Array) || !(sig instanceof Uint8Array) || pk.length !== 32 || sig.length !== 64) return false;
      try {
        // Only keys that pass the checks are imported, so only those are ever cached.
        const key = publicKeys.get('ed25519', pk, () => {
          if (!ed25519PublicKeyAcceptable(pk)) throw new InvalidKeyError();
          return keys.curvePublic('ed25519', pk);
        });
        return c.verify(null, msg, key, sig);
      } catch {
        return false;
      }
    },
  };
}
