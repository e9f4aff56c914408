/**
 * Composite ML-DSA-65 + Ed25519 signatures (src/crypto/composite.ts) on both backends:
 * round trip, and every way a signature must fail — wrong message, wrong context, either
 * half zeroed or swapped for another key's, halves mixed from two keys, wrong lengths
 * (false, never a throw).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  COMPOSITE_PUBLIC_KEY_LENGTH,
  COMPOSITE_SIGNATURE_LENGTH,
  compositeKeygen,
  compositeSign,
  compositeVerify,
} from '../../src/crypto/composite.js';
import type { CompositeKeyPair } from '../../src/crypto/composite.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { BACKENDS, pattern } from './backends.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe.each(BACKENDS)('composite signatures on the $name backend', ({ backend }) => {
  const msg = utf8('the transcript hash');
  const ctx = utf8('pqmcp/1 CertificateVerify');
  let keyA: CompositeKeyPair;
  let keyB: CompositeKeyPair;
  let sigA: Uint8Array;
  let sigB: Uint8Array;

  beforeAll(() => {
    keyA = compositeKeygen(backend, pattern(64, 1));
    keyB = compositeKeygen(backend, pattern(64, 2));
    sigA = compositeSign(backend, keyA, msg, ctx);
    sigB = compositeSign(backend, keyB, msg, ctx);
  });

  const verify = (pk: Uint8Array, m: Uint8Array, s: Uint8Array, c: Uint8Array) => compositeVerify(backend, pk, m, s, c);

  it('signs and verifies; lengths are as declared', () => {
    expect(keyA.publicKey.length).toBe(COMPOSITE_PUBLIC_KEY_LENGTH);
    expect(sigA.length).toBe(COMPOSITE_SIGNATURE_LENGTH);
    expect(verify(keyA.publicKey, msg, sigA, ctx)).toBe(true);
    expect(verify(keyB.publicKey, msg, sigB, ctx)).toBe(true);
  });

  it('verifies with an empty message and an empty or 255-byte context', () => {
    for (const c of [new Uint8Array(0), pattern(255)]) {
      const s = compositeSign(backend, keyA, new Uint8Array(0), c);
      expect(verify(keyA.publicKey, new Uint8Array(0), s, c)).toBe(true);
    }
  });

  it('rejects a wrong message', () => {
    expect(verify(keyA.publicKey, utf8('the transcript hasH'), sigA, ctx)).toBe(false);
    expect(verify(keyA.publicKey, new Uint8Array(0), sigA, ctx)).toBe(false);
  });

  it('rejects a wrong context', () => {
    expect(verify(keyA.publicKey, msg, sigA, utf8('pqmcp/1 CertificateVerifY'))).toBe(false);
    expect(verify(keyA.publicKey, msg, sigA, new Uint8Array(0))).toBe(false);
  });

  it('rejects the other key', () => {
    expect(verify(keyB.publicKey, msg, sigA, ctx)).toBe(false);
  });

  it('rejects a signature with either half zeroed', () => {
    const mldsaZeroed = sigA.slice();
    mldsaZeroed.fill(0, 0, 3309);
    const edZeroed = sigA.slice();
    edZeroed.fill(0, 3309);
    expect(verify(keyA.publicKey, msg, mldsaZeroed, ctx)).toBe(false);
    expect(verify(keyA.publicKey, msg, edZeroed, ctx)).toBe(false);
  });

  it('rejects a public key with either half zeroed', () => {
    const pk1 = keyA.publicKey.slice();
    pk1.fill(0, 0, 1952);
    const pk2 = keyA.publicKey.slice();
    pk2.fill(0, 1952);
    expect(verify(pk1, msg, sigA, ctx)).toBe(false);
    expect(verify(pk2, msg, sigA, ctx)).toBe(false);
  });

  it('rejects halves taken from two different keys (ML-DSA from A, Ed25519 from B, and vice versa)', () => {
    const mixedSig1 = new Uint8Array([...sigA.subarray(0, 3309), ...sigB.subarray(3309)]);
    const mixedSig2 = new Uint8Array([...sigB.subarray(0, 3309), ...sigA.subarray(3309)]);
    const mixedPk1 = new Uint8Array([...keyA.publicKey.subarray(0, 1952), ...keyB.publicKey.subarray(1952)]);
    const mixedPk2 = new Uint8Array([...keyB.publicKey.subarray(0, 1952), ...keyA.publicKey.subarray(1952)]);
    for (const pk of [keyA.publicKey, keyB.publicKey]) {
      expect(verify(pk, msg, mixedSig1, ctx)).toBe(false);
      expect(verify(pk, msg, mixedSig2, ctx)).toBe(false);
    }
    // A key assembled from the two halves verifies only the signature assembled the same way.
    expect(verify(mixedPk1, msg, mixedSig1, ctx)).toBe(true);
    expect(verify(mixedPk1, msg, sigA, ctx)).toBe(false);
    expect(verify(mixedPk2, msg, sigB, ctx)).toBe(false);
  });

  it('rejects each half signed directly (without the composite prefix and label)', () => {
    const mldsa = backend.mldsa65.sign(keyA.mldsa, msg, ctx);
    const ed = backend.ed25519.sign(keyA.ed25519, msg);
    expect(verify(keyA.publicKey, msg, new Uint8Array([...mldsa, ...ed]), ctx)).toBe(false);
  });

  it('wrong lengths return false without throwing', () => {
    const cases: [Uint8Array, Uint8Array, Uint8Array][] = [
      [keyA.publicKey.subarray(1), sigA, ctx],
      [new Uint8Array([...keyA.publicKey, 0]), sigA, ctx],
      [keyA.publicKey, sigA.subarray(1), ctx],
      [keyA.publicKey, new Uint8Array([...sigA, 0]), ctx],
      [keyA.publicKey, new Uint8Array(0), ctx],
      [new Uint8Array(0), sigA, ctx],
      [keyA.publicKey, sigA, new Uint8Array(256)],
    ];
    for (const [pk, sig, c] of cases) expect(verify(pk, msg, sig, c)).toBe(false);
  });

  it('refuses bad seeds and over-long contexts when signing', () => {
    expect(() => compositeKeygen(backend, new Uint8Array(63))).toThrow(InvalidArgumentError);
    expect(() => compositeSign(backend, keyA, msg, new Uint8Array(256))).toThrow(InvalidArgumentError);
  });

  it('explicit randomness makes signing deterministic', () => {
    const rnd = pattern(32, 5);
    expect(compositeSign(backend, keyA, msg, ctx, rnd)).toEqual(compositeSign(backend, keyA, msg, ctx, rnd));
  });
});
