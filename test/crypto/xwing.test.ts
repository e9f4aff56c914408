/**
 * X-Wing (draft-connolly-cfrg-xwing-kem) on both backends: the draft's own vectors and
 * noble's hybrid vectors (keygen, derandomized encapsulation, decapsulation), round trips,
 * cross-backend interop, and the refusals the pqmcp contract adds (low-order X25519
 * points, ML-KEM keys failing the modulus check, wrong lengths).
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, InvalidKeyError } from '../../src/errors.js';
import { describeVectors, hex, readVectorJson } from '../helpers/vectors.js';
import { BACKENDS, native, noble, pattern } from './backends.js';

interface DraftVector {
  seed: string;
  sk: string;
  pk: string;
  eseed: string;
  ct: string;
  ss: string;
}

interface NobleVector {
  seed: string;
  sk: string;
  pk: string;
  randomness: string;
  ct: string;
  ss: string;
}

/** A low-order X25519 point (order 8), from RFC 7748 / the Wycheproof low-order list. */
const LOW_ORDER_X25519 = hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800');

describe.each(BACKENDS)('X-Wing on the $name backend', ({ backend }) => {
  const xw = backend.xwing;

  describeVectors('draft-connolly-cfrg-xwing-kem vectors', ['xwing_draft_spec_test-vectors.json'], () => {
    it('keygen, derandomized encapsulation and decapsulation match every vector', () => {
      const vectors = readVectorJson<DraftVector[]>('xwing_draft_spec_test-vectors.json');
      expect(vectors.length).toBe(3);
      for (const [i, v] of vectors.entries()) {
        expect(v.sk, `vector ${i}: sk is the seed`).toBe(v.seed);
        const kp = xw.keygen(hex(v.seed));
        expect(kp.publicKey, `vector ${i} pk`).toEqual(hex(v.pk));
        const enc = xw.encapsulate(hex(v.pk), hex(v.eseed));
        expect(enc.ciphertext, `vector ${i} ct`).toEqual(hex(v.ct));
        expect(enc.sharedSecret, `vector ${i} ss (encaps)`).toEqual(hex(v.ss));
        expect(xw.decapsulate(kp, hex(v.ct)), `vector ${i} ss (decaps)`).toEqual(hex(v.ss));
      }
    });
  });

  describeVectors('noble MLKEM768X25519 vectors', ['noble_MLKEM768X25519.json'], () => {
    it('match every vector', () => {
      const vectors = readVectorJson<NobleVector[]>('noble_MLKEM768X25519.json');
      expect(vectors.length).toBeGreaterThanOrEqual(10);
      for (const [i, v] of vectors.entries()) {
        const kp = xw.keygen(hex(v.seed));
        expect(kp.publicKey, `vector ${i} pk`).toEqual(hex(v.pk));
        const enc = xw.encapsulate(hex(v.pk), hex(v.randomness));
        expect(enc.ciphertext, `vector ${i} ct`).toEqual(hex(v.ct));
        expect(enc.sharedSecret, `vector ${i} ss`).toEqual(hex(v.ss));
        expect(xw.decapsulate(xw.keygen(hex(v.sk)), hex(v.ct)), `vector ${i} decaps`).toEqual(hex(v.ss));
      }
    });
  });

  it('declares the X-Wing lengths', () => {
    expect(xw.publicKeyLength).toBe(1216);
    expect(xw.ciphertextLength).toBe(1120);
  });

  it('round-trips with fresh randomness, and two encapsulations differ', () => {
    const kp = xw.keygen(pattern(32, 7));
    const a = xw.encapsulate(kp.publicKey);
    const b = xw.encapsulate(kp.publicKey);
    expect(a.ciphertext.length).toBe(1120);
    expect(a.sharedSecret.length).toBe(32);
    expect(xw.decapsulate(kp, a.ciphertext)).toEqual(a.sharedSecret);
    expect(xw.decapsulate(kp, a.ciphertext)).toEqual(a.sharedSecret); // cached keys give the same answer
    expect(a.ciphertext).not.toEqual(b.ciphertext);
    expect(a.sharedSecret).not.toEqual(b.sharedSecret);
  });

  it('keygen copies the seed and returns plain Uint8Arrays', () => {
    const seed = pattern(32, 1);
    const kp = xw.keygen(seed);
    seed.fill(0);
    expect(kp.seed).toEqual(pattern(32, 1));
    expect(kp.publicKey.constructor).toBe(Uint8Array);
  });

  it('a tampered ML-KEM ciphertext yields an unrelated secret (implicit rejection), no error', () => {
    const kp = xw.keygen(pattern(32, 9));
    const { ciphertext, sharedSecret } = xw.encapsulate(kp.publicKey);
    const bad = ciphertext.slice();
    bad[10]! ^= 1;
    const ss = xw.decapsulate(kp, bad);
    expect(ss.length).toBe(32);
    expect(ss).not.toEqual(sharedSecret);
  });

  it('a tampered X25519 ciphertext part changes the secret', () => {
    const kp = xw.keygen(pattern(32, 10));
    const { ciphertext, sharedSecret } = xw.encapsulate(kp.publicKey);
    const bad = ciphertext.slice();
    bad[1100]! ^= 1;
    expect(xw.decapsulate(kp, bad)).not.toEqual(sharedSecret);
  });

  it('refuses a low-order X25519 point in the public key (encapsulate) with InvalidKeyError', () => {
    const pk = xw.keygen(pattern(32, 11)).publicKey.slice();
    pk.set(LOW_ORDER_X25519, 1184);
    expect(() => xw.encapsulate(pk)).toThrow(InvalidKeyError);
    expect(() => xw.encapsulate(pk, pattern(64, 3))).toThrow(InvalidKeyError);
    pk.fill(0, 1184); // the zero point
    expect(() => xw.encapsulate(pk)).toThrow(InvalidKeyError);
  });

  it('refuses a low-order X25519 point in the ciphertext (decapsulate) with InvalidKeyError', () => {
    const kp = xw.keygen(pattern(32, 12));
    const ct = xw.encapsulate(kp.publicKey).ciphertext.slice();
    ct.set(LOW_ORDER_X25519, 1088);
    expect(() => xw.decapsulate(kp, ct)).toThrow(InvalidKeyError);
    ct.fill(0, 1088);
    expect(() => xw.decapsulate(kp, ct)).toThrow(InvalidKeyError);
  });

  it('refuses an ML-KEM public key failing the modulus check with InvalidKeyError', () => {
    const pk = xw.keygen(pattern(32, 13)).publicKey.slice();
    pk[0] = 0xff; // first 12-bit coefficient = 0x?ff | (pk[1] & 0xf) << 8 >= 3329
    pk[1] = pk[1]! | 0x0f;
    expect(() => xw.encapsulate(pk)).toThrow(InvalidKeyError);
    expect(() => xw.encapsulate(pk, pattern(64, 4))).toThrow(InvalidKeyError);
  });

  it('throws InvalidArgumentError on wrong lengths', () => {
    const kp = xw.keygen(pattern(32, 14));
    expect(() => xw.keygen(new Uint8Array(31))).toThrow(InvalidArgumentError);
    expect(() => xw.keygen(new Uint8Array(64))).toThrow(InvalidArgumentError);
    expect(() => xw.encapsulate(kp.publicKey.subarray(0, 1215))).toThrow(InvalidArgumentError);
    expect(() => xw.encapsulate(new Uint8Array(1217))).toThrow(InvalidArgumentError);
    expect(() => xw.encapsulate(kp.publicKey, new Uint8Array(63))).toThrow(InvalidArgumentError);
    expect(() => xw.encapsulate(kp.publicKey, new Uint8Array(32))).toThrow(InvalidArgumentError);
    expect(() => xw.decapsulate(kp, new Uint8Array(1119))).toThrow(InvalidArgumentError);
    expect(() => xw.decapsulate(kp, new Uint8Array(1121))).toThrow(InvalidArgumentError);
  });
});

describe('X-Wing across backends', () => {
  const pairs = [
    ['noble', noble, 'native', native],
    ['native', native, 'noble', noble],
  ] as const;

  it.each(pairs)('encapsulate on %s, decapsulate on %s: same secret', (_a, enc, _b, dec) => {
    for (let i = 0; i < 4; i++) {
      const seed = pattern(32, 40 + i, 3);
      const kpDec = dec.xwing.keygen(seed);
      expect(enc.xwing.keygen(seed).publicKey).toEqual(kpDec.publicKey);
      const { ciphertext, sharedSecret } = enc.xwing.encapsulate(kpDec.publicKey);
      expect(dec.xwing.decapsulate(kpDec, ciphertext)).toEqual(sharedSecret);
    }
  });

  it('derandomized encapsulation is byte-identical on both backends', () => {
    const pk = noble.xwing.keygen(pattern(32, 77)).publicKey;
    const r = pattern(64, 5, 7);
    expect(native.xwing.encapsulate(pk, r)).toEqual(noble.xwing.encapsulate(pk, r));
  });

  it.each(pairs)('a key pair made by %s decapsulates on %s (keys re-derived from the seed)', (_a, maker, _b, user) => {
    const kp = maker.xwing.keygen(pattern(32, 90));
    const { ciphertext, sharedSecret } = user.xwing.encapsulate(kp.publicKey);
    expect(user.xwing.decapsulate(kp, ciphertext)).toEqual(sharedSecret);
    expect(user.xwing.decapsulate({ seed: kp.seed, publicKey: kp.publicKey }, ciphertext)).toEqual(sharedSecret);
  });

  it('a spread copy of a key pair with another seed does not reuse the cached keys', () => {
    const kp = native.xwing.keygen(pattern(32, 91));
    const other = native.xwing.keygen(pattern(32, 92));
    const copy = { ...kp, seed: other.seed, publicKey: other.publicKey };
    const { ciphertext, sharedSecret } = native.xwing.encapsulate(other.publicKey);
    expect(native.xwing.decapsulate(copy, ciphertext)).toEqual(sharedSecret);
  });
});
