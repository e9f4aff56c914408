/**
 * XWing.dispose (review2 F1 follow-up) and X25519PrivateKey.dispose (review2 F5): a key pair
 * disposed of through any backend decapsulates on none, and what the backends hold of it
 * (the seed, the expanded ML-KEM secret key bytes, the portable X25519 copies) is zeroed;
 * node:crypto KeyObjects, which cannot be zeroed, are dropped. The native backend's X-Wing
 * caches the expanded key, so before this a key pair whose seed was wiped still decapsulated.
 *
 * The wipes are observed on real primitives: the combiner (xwing-combiner.ts) is built over
 * the portable backend's own ML-KEM and X25519, on @noble libraries whose X25519 call records
 * the secret-key arrays it is handed (the copies a key holds), as Node 20's native backend
 * is built over noble's ML-KEM.
 */
import { describe, expect, it } from 'vitest';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { gcm } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { nobleBackendFrom, type NobleLib } from '../../src/crypto/noble-core.js';
import { createXWing } from '../../src/crypto/xwing-combiner.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { BACKENDS, native, noble, pattern } from './backends.js';

const allZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

/** The portable backend over real @noble libraries; `secrets` gets every X25519 secret key array handed to noble. */
function recordingPortable() {
  const secrets: Uint8Array[] = [];
  const x: typeof x25519 = {
    ...x25519,
    getSharedSecret: (secretKey, publicKey) => {
      secrets.push(secretKey as Uint8Array);
      return x25519.getSharedSecret(secretKey, publicKey);
    },
  };
  const lib: NobleLib = { chacha20poly1305, gcm, ed25519, x25519: x, expand, extract, hmac, sha256, sha512, sha3_256, shake256, randomBytes, ml_kem768, ml_dsa65, ml_kem768_x25519 };
  return { backend: nobleBackendFrom(lib), secrets };
}

/** The X-Wing combiner over the portable primitives; `mlkemSecretKeys` gets each ML-KEM secret key it makes. */
function combinerOverPortable() {
  const { backend, secrets } = recordingPortable();
  const mlkemSecretKeys: Uint8Array[] = [];
  const xwing = createXWing({
    mlkem768: {
      ...backend.mlkem768,
      keygen(seed) {
        const kp = backend.mlkem768.keygen(seed);
        mlkemSecretKeys.push(kp.secretKey as Uint8Array);
        return kp;
      },
    },
    x25519: backend.x25519,
    sha3_256: backend.sha3_256,
    shake256: backend.shake256,
    randomBytes: backend.randomBytes,
  });
  return { xwing, secrets, mlkemSecretKeys };
}

const byName = { native, noble } as const;
const pairs = [
  ['native', 'native'],
  ['native', 'noble'],
  ['noble', 'native'],
  ['noble', 'noble'],
] as const;

describe('XWing.dispose', () => {
  it.each(pairs)('a key pair made on %s and disposed of on %s decapsulates on no backend, and its seed is zero', (makerName, disposerName) => {
    const maker = byName[makerName];
    const disposer = byName[disposerName];
    const kp = maker.xwing.keygen(pattern(32, 11, 5));
    const { ciphertext, sharedSecret } = maker.xwing.encapsulate(kp.publicKey);
    for (const { backend } of BACKENDS) expect(backend.xwing.decapsulate(kp, ciphertext)).toEqual(sharedSecret); // caches filled first
    disposer.xwing.dispose(kp);
    expect(allZero(kp.seed)).toBe(true);
    for (const { backend } of BACKENDS) {
      expect(() => backend.xwing.decapsulate(kp, ciphertext)).toThrow(InvalidArgumentError);
      expect(() => backend.xwing.decapsulate(kp, ciphertext)).toThrow(/disposed/);
    }
    disposer.xwing.dispose(kp); // idempotent
    // Writing a seed back does not revive it.
    kp.seed.set(pattern(32, 11, 5));
    for (const { backend } of BACKENDS) expect(() => backend.xwing.decapsulate(kp, ciphertext)).toThrow(InvalidArgumentError);
  });

  it('native: a seed wiped by hand leaves no cached key that decapsulates (the cache follows the seed)', () => {
    const kp = native.xwing.keygen(pattern(32, 21, 3));
    const { ciphertext, sharedSecret } = native.xwing.encapsulate(kp.publicKey);
    expect(native.xwing.decapsulate(kp, ciphertext)).toEqual(sharedSecret);
    kp.seed.fill(0); // the old "wipe"
    const after = native.xwing.decapsulate(kp, ciphertext); // the all-zero seed's key now, as on noble
    expect(after).not.toEqual(sharedSecret);
    expect(after).toEqual(noble.xwing.decapsulate(kp, ciphertext));
  });

  it('the combiner zeroes the expanded keys it can reach (ML-KEM secret key bytes, the X25519 copy) and refuses after', () => {
    const { xwing, secrets, mlkemSecretKeys } = combinerOverPortable();
    const kp = xwing.keygen(pattern(32, 31, 7));
    expect(kp.publicKey).toEqual(noble.xwing.keygen(pattern(32, 31, 7)).publicKey);
    const { ciphertext, sharedSecret } = noble.xwing.encapsulate(kp.publicKey);
    secrets.length = 0;
    expect(xwing.decapsulate(kp, ciphertext)).toEqual(sharedSecret);
    const skX = secrets.at(-1)!; // the copy the expanded key's X25519 private key holds
    expect(allZero(skX)).toBe(false);
    expect(mlkemSecretKeys).toHaveLength(1);
    expect(allZero(mlkemSecretKeys[0]!)).toBe(false);
    xwing.dispose(kp);
    expect(allZero(kp.seed)).toBe(true);
    expect(allZero(mlkemSecretKeys[0]!)).toBe(true);
    expect(allZero(skX)).toBe(true);
    expect(() => xwing.decapsulate(kp, ciphertext)).toThrow(InvalidArgumentError);
  });

  it('a key pair made elsewhere and expanded by the combiner on first use: dispose zeroes that expansion too', () => {
    const { xwing, mlkemSecretKeys } = combinerOverPortable();
    const kp = noble.xwing.keygen(pattern(32, 41, 9));
    const { ciphertext, sharedSecret } = noble.xwing.encapsulate(kp.publicKey);
    expect(xwing.decapsulate(kp, ciphertext)).toEqual(sharedSecret);
    expect(mlkemSecretKeys).toHaveLength(1);
    noble.xwing.dispose(kp); // disposed through the other backend
    expect(allZero(mlkemSecretKeys[0]!)).toBe(true);
    expect(() => xwing.decapsulate(kp, ciphertext)).toThrow(InvalidArgumentError);
  });

  it('encapsulate zeroes its ephemeral X25519 secret (ek_X) in the copy the X25519 key held, before it returns', () => {
    const { xwing, secrets } = combinerOverPortable();
    const pk = noble.xwing.keygen(pattern(32, 51)).publicKey;
    const r = pattern(64, 5, 7);
    secrets.length = 0;
    expect(xwing.encapsulate(pk, r)).toEqual(noble.xwing.encapsulate(pk, r));
    expect(secrets).toHaveLength(1);
    expect(allZero(secrets[0]!)).toBe(true);
    secrets.length = 0;
    xwing.encapsulate(pk); // drawn randomness
    expect(secrets).toHaveLength(1);
    expect(allZero(secrets[0]!)).toBe(true);
  });

  it('refuses what is not a key pair object', () => {
    for (const { backend } of BACKENDS) {
      expect(() => backend.xwing.dispose(undefined as never)).toThrow(InvalidArgumentError);
      expect(() => backend.xwing.dispose(null as never)).toThrow(InvalidArgumentError);
    }
  });
});

describe('X25519PrivateKey.dispose', () => {
  it.each(BACKENDS)('$name: agreements are refused after it; idempotent', ({ backend }) => {
    const key = backend.x25519.privateKey(pattern(32, 61));
    const peer = noble.x25519.publicKey(pattern(32, 62));
    expect(key.sharedSecret(peer)).toEqual(noble.x25519.sharedSecret(pattern(32, 61), peer));
    key.dispose();
    expect(() => key.sharedSecret(peer)).toThrow(InvalidArgumentError);
    key.dispose();
    expect(key.publicKey).toEqual(noble.x25519.publicKey(pattern(32, 61))); // public, kept
  });

  it('portable: the copy of the secret is zeroed', () => {
    const { backend, secrets } = recordingPortable();
    const key = backend.x25519.privateKey(pattern(32, 71));
    key.sharedSecret(noble.x25519.publicKey(pattern(32, 72)));
    const copy = secrets.at(-1)!;
    expect(copy).toEqual(pattern(32, 71));
    key.dispose();
    expect(allZero(copy)).toBe(true);
  });
});
