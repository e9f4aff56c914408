/**
 * Behaviour specific to the native backend (src/crypto/native.ts): the Ed25519 checks it
 * adds on top of OpenSSL (and the one documented difference from noble), the FIPS 203
 * modulus check, key caching, accepted secret-key forms, and that no Node Buffer escapes.
 */
import * as nodeCrypto from 'node:crypto';
import { ED25519_TORSION_SUBGROUP, ed25519 as nobleEd25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { PublicKeyCache, createNativeBackend, mlkem768ModulusCheck } from '../../src/crypto/native.js';
import type { CurveMode } from '../../src/crypto/native.js';
import { BackendUnavailableError, InvalidArgumentError, InvalidKeyError } from '../../src/errors.js';
import { BACKENDS, native, noble, pattern } from './backends.js';

const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function leToBigint(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}
function bigintToLe(n: bigint, length = 32): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}
const fromHex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

/** RFC 8032 challenge k = SHA-512(R || A || M) mod L. */
function challenge(r: Uint8Array, a: Uint8Array, m: Uint8Array): bigint {
  return leToBigint(noble.sha512(new Uint8Array([...r, ...a, ...m]))) % L;
}

describe('Ed25519 strictness beyond OpenSSL', () => {
  const identity = fromHex('0100000000000000000000000000000000000000000000000000000000000000');

  it('lists exactly the eight small-order points noble knows', () => {
    expect(ED25519_TORSION_SUBGROUP.length).toBe(8);
    for (const h of ED25519_TORSION_SUBGROUP) expect(nobleEd25519.Point.fromHex(h).isSmallOrder()).toBe(true);
  });

  it.each(BACKENDS)('$name rejects every small-order public key, even with a signature that satisfies the equation', ({ backend }) => {
    for (const a of ED25519_TORSION_SUBGROUP.map(fromHex)) {
      // R = identity, S = 0 satisfies S*B = R + k*A whenever k*A = identity (k = 0 mod 8 suffices).
      let msg: Uint8Array | undefined;
      for (let i = 0; i < 256 && !msg; i++) if (challenge(identity, a, Uint8Array.of(i)) % 8n === 0n) msg = Uint8Array.of(i);
      expect(msg).toBeDefined();
      const sig = new Uint8Array([...identity, ...new Uint8Array(32)]);
      expect(nobleEd25519.verify(sig, msg!, a, { zip215: true }), 'a lax (ZIP-215) verifier accepts it').toBe(true);
      expect(backend.ed25519.verify(a, msg!, sig)).toBe(false);
    }
  });

  it.each(BACKENDS)('$name rejects non-canonical public-key encodings', ({ backend }) => {
    const p = 2n ** 255n - 19n;
    const encodings = [
      bigintToLe(p), // y = p (= 0)
      bigintToLe(p + 1n), // y = p + 1 (= 1, the identity)
      bigintToLe(2n ** 255n - 1n),
      fromHex('0100000000000000000000000000000000000000000000000000000000000080'), // y = 1, x = 0, sign bit set
      fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'), // y = -1, x = 0, sign bit set
    ];
    for (const a of encodings) expect(backend.ed25519.verify(a, pattern(3), new Uint8Array(64))).toBe(false);
  });

  it('documented difference: a key holder can craft a torsion-R signature that noble (cofactored) accepts and native (cofactorless) rejects', () => {
    const seed = pattern(32, 3);
    const a = noble.ed25519.keygen(seed).publicKey;
    const { scalar } = nobleEd25519.utils.getExtendedPublicKey(seed);
    const torsion = nobleEd25519.Point.fromHex(ED25519_TORSION_SUBGROUP[1]!);
    const r = 1234567n;
    const rBytes = nobleEd25519.Point.BASE.multiply(r).add(torsion).toBytes();
    const msg = pattern(10);
    const s = (r + challenge(rBytes, a, msg) * scalar) % L;
    const sig = new Uint8Array([...rBytes, ...bigintToLe(s)]);
    expect(noble.ed25519.verify(a, msg, sig)).toBe(true);
    expect(native.ed25519.verify(a, msg, sig)).toBe(false);
  });
});

describe('FIPS 203 modulus check', () => {
  const pk = noble.mlkem768.keygen(pattern(64, 1)).publicKey;

  it('passes real keys', () => {
    for (let i = 0; i < 4; i++) expect(mlkem768ModulusCheck(noble.mlkem768.keygen(pattern(64, i, 5)).publicKey)).toBe(true);
  });

  /** Set 12-bit coefficient `j` of t-hat to `v`. */
  function withCoefficient(j: number, v: number): Uint8Array {
    const ek = pk.slice();
    const i = (j >> 1) * 3;
    if (j % 2 === 0) {
      ek[i] = v & 0xff;
      ek[i + 1] = (ek[i + 1]! & 0xf0) | (v >> 8);
    } else {
      ek[i + 1] = (ek[i + 1]! & 0x0f) | ((v & 0x0f) << 4);
      ek[i + 2] = v >> 4;
    }
    return ek;
  }

  it('draws the line at q = 3329 for even and odd coefficients, first and last', () => {
    for (const j of [0, 1, 500, 767]) {
      expect(mlkem768ModulusCheck(withCoefficient(j, 3328)), `coefficient ${j} = 3328`).toBe(true);
      expect(mlkem768ModulusCheck(withCoefficient(j, 3329)), `coefficient ${j} = 3329`).toBe(false);
      expect(mlkem768ModulusCheck(withCoefficient(j, 4095)), `coefficient ${j} = 4095`).toBe(false);
    }
  });

  it.each(BACKENDS)('$name refuses a key with one coefficient = q, with and without explicit m', ({ backend }) => {
    const bad = withCoefficient(767, 3329);
    expect(() => backend.mlkem768.encapsulate(bad)).toThrow(InvalidKeyError);
    expect(() => backend.mlkem768.encapsulate(bad, new Uint8Array(32))).toThrow(InvalidKeyError);
    expect(() => backend.mlkem768.encapsulate(withCoefficient(767, 3328))).not.toThrow();
  });

  it.skipIf(native.report.mlkem !== 'native')('OpenSSL itself also refuses such a key at import (defence in depth)', () => {
    const importRaw = (key: Uint8Array) =>
      nodeCrypto.createPublicKey({ key, format: 'raw-public', asymmetricKeyType: 'ml-kem-768' } as unknown as nodeCrypto.PublicKeyInput);
    expect(() => importRaw(withCoefficient(767, 3328))).not.toThrow();
    expect(() => importRaw(withCoefficient(767, 3329))).toThrow();
  });
});

describe('native key handling', () => {
  it('decapsulate accepts noble’s expanded ML-KEM secret key, and refuses foreign objects', () => {
    const seed = pattern(64, 9);
    const nobleKp = noble.mlkem768.keygen(seed);
    const { ciphertext, sharedSecret } = native.mlkem768.encapsulate(nobleKp.publicKey);
    expect(native.mlkem768.decapsulate(nobleKp.secretKey, ciphertext)).toEqual(sharedSecret);
    if (native.report.mlkem === 'native') {
      expect(() => native.mlkem768.decapsulate({}, ciphertext)).toThrow(InvalidArgumentError);
      const wrongType = nodeCrypto.generateKeyPairSync('x25519').privateKey;
      expect(() => native.mlkem768.decapsulate(wrongType, ciphertext)).toThrow(InvalidArgumentError);
    }
  });

  it('signs with key pairs it did not create (keys derived from the seed and cached)', () => {
    const seed = pattern(32, 21);
    const msg = pattern(5);
    const made = native.ed25519.keygen(seed);
    const foreign = { seed: made.seed.slice(), publicKey: made.publicKey.slice() };
    expect(native.ed25519.sign(foreign, msg)).toEqual(native.ed25519.sign(made, msg));
    expect(native.ed25519.sign(foreign, msg)).toEqual(noble.ed25519.sign(made, msg));
    const dsa = noble.mldsa65.keygen(seed);
    const sig = native.mldsa65.sign({ seed: dsa.seed, publicKey: dsa.publicKey }, msg, new Uint8Array(0));
    expect(noble.mldsa65.verify(dsa.publicKey, msg, sig, new Uint8Array(0))).toBe(true);
  });

  it('a spread copy with another seed signs with that seed, not the cached key', () => {
    const a = native.ed25519.keygen(pattern(32, 1));
    const b = native.ed25519.keygen(pattern(32, 2));
    const copy = { ...a, seed: b.seed, publicKey: b.publicKey };
    expect(native.ed25519.sign(copy, pattern(4))).toEqual(native.ed25519.sign(b, pattern(4)));
  });

  it('keygen copies the seed', () => {
    const seed = pattern(32, 4);
    const kp = native.mldsa65.keygen(seed);
    seed.fill(0);
    expect(kp.seed).toEqual(pattern(32, 4));
    expect(native.mldsa65.verify(kp.publicKey, pattern(2), native.mldsa65.sign(kp, pattern(2), new Uint8Array(0)), new Uint8Array(0))).toBe(true);
  });
});

describe('public key cache', () => {
  it('keeps at most its bound, evicts the least recently used, keys by the exact bytes, and does not cache failed imports', () => {
    const cache = new PublicKeyCache(3);
    let loads = 0;
    const load = (tag: string) => () => {
      loads++;
      return nodeCrypto.createSecretKey(Buffer.from(tag)) as unknown as nodeCrypto.KeyObject;
    };
    const k = (i: number) => Uint8Array.of(i, 0, 255);
    const a = cache.get('t', k(1), load('a'));
    cache.get('t', k(2), load('b'));
    cache.get('t', k(3), load('c'));
    expect(loads).toBe(3);
    expect(cache.get('t', Uint8Array.of(1, 0, 255), load('x'))).toBe(a); // same bytes, another array
    expect(cache.get('t', new Uint8Array([9, 1, 0, 255]).subarray(1), load('x'))).toBe(a); // a view
    expect(loads).toBe(3);
    cache.get('u', k(1), load('other type')); // same bytes, another key type: its own entry; evicts 2
    expect(loads).toBe(4);
    expect(cache.size).toBe(3);
    cache.get('t', k(3), load('x'));
    cache.get('t', k(1), load('x'));
    expect(loads).toBe(4);
    cache.get('t', k(2), load('b again'));
    expect(loads).toBe(5);
    expect(() => cache.get('t', k(7), () => { throw new InvalidKeyError(); })).toThrow(InvalidKeyError);
    expect(cache.size).toBe(3);
    cache.get('t', k(7), load('now it loads'));
    expect(loads).toBe(6);
  });

  it('verification stays exact with many keys (more than the cache holds) and with keys refused before import', () => {
    const b = createNativeBackend();
    const msg = pattern(40);
    const ctx = pattern(3);
    const pairs = Array.from({ length: 70 }, (_, i) => ({ ed: b.ed25519.keygen(pattern(32, i)), ml: i % 10 === 0 ? b.mldsa65.keygen(pattern(32, i)) : undefined }));
    for (let round = 0; round < 2; round++) {
      for (const [i, { ed, ml }] of pairs.entries()) {
        const other = pairs[(i + 1) % pairs.length]!.ed;
        const sig = b.ed25519.sign(ed, msg);
        expect(b.ed25519.verify(ed.publicKey, msg, sig)).toBe(true);
        expect(b.ed25519.verify(other.publicKey, msg, sig)).toBe(false);
        if (ml) {
          const s = b.mldsa65.sign(ml, msg, ctx);
          expect(b.mldsa65.verify(ml.publicKey, msg, s, ctx)).toBe(true);
          expect(b.mldsa65.verify(pairs[(i + 10) % pairs.length]!.ml!.publicKey, msg, s, ctx)).toBe(false);
        }
      }
    }
    // A small-order key is refused every time, before and after the cache has seen others.
    const smallOrder = fromHex('0100000000000000000000000000000000000000000000000000000000000000');
    for (let i = 0; i < 2; i++) expect(b.ed25519.verify(smallOrder, msg, new Uint8Array(64))).toBe(false);
  });
});

describe('native outputs are plain Uint8Arrays, never Buffers', () => {
  const isPlain = (b: Uint8Array) => b.constructor === Uint8Array && !Buffer.isBuffer(b);

  it('for every primitive', () => {
    const b = native;
    const kem = b.mlkem768.keygen(pattern(64));
    const enc = b.mlkem768.encapsulate(kem.publicKey);
    const dsa = b.mldsa65.keygen(pattern(32));
    const ed = b.ed25519.keygen(pattern(32));
    const xw = b.xwing.keygen(pattern(32));
    const xenc = b.xwing.encapsulate(xw.publicKey);
    const aead = b.aead('chacha20-poly1305', pattern(32));
    const big = pattern(1 << 20);
    const sealed = aead.seal(new Uint8Array(12), big, new Uint8Array(0));
    const outputs: Uint8Array[] = [
      b.randomBytes(8),
      b.sha256(pattern(3)),
      b.sha512(pattern(3)),
      b.sha3_256(pattern(3)),
      b.shake256(pattern(3), 64),
      b.hmacSha256(pattern(3), pattern(3)),
      b.hkdfExtract(pattern(3), pattern(3)),
      b.hkdfExpand(pattern(32), pattern(3), 40),
      b.x25519.publicKey(pattern(32)),
      b.x25519.sharedSecret(pattern(32), b.x25519.publicKey(pattern(32, 1))),
      ed.publicKey,
      b.ed25519.sign(ed, pattern(3)),
      kem.publicKey,
      enc.ciphertext,
      enc.sharedSecret,
      b.mlkem768.decapsulate(kem.secretKey, enc.ciphertext),
      dsa.publicKey,
      b.mldsa65.sign(dsa, pattern(3), new Uint8Array(0)),
      xw.publicKey,
      xenc.ciphertext,
      xenc.sharedSecret,
      b.xwing.decapsulate(xw, xenc.ciphertext),
      sealed,
      aead.open(new Uint8Array(12), sealed, new Uint8Array(0))!,
      aead.open(new Uint8Array(12), aead.seal(new Uint8Array(12), pattern(5), new Uint8Array(0)), new Uint8Array(0))!,
    ];
    for (const [i, o] of outputs.entries()) expect(isPlain(o), `output ${i}`).toBe(true);
    // A small output must not expose a shared Buffer pool behind it.
    expect(b.sha256(pattern(3)).buffer.byteLength).toBe(32);
  });
});

describe('every way X25519 / Ed25519 keys cross into node:crypto gives the same bytes', () => {
  const modes: CurveMode[] = ['raw', 'jwk', 'der'];
  const available = modes.filter((curveMode) => {
    try {
      createNativeBackend({ curveMode });
      return true;
    } catch (e) {
      if (e instanceof BackendUnavailableError) return false;
      throw e;
    }
  });

  it('DER always works; raw works where node:crypto has raw key formats', () => {
    expect(available).toContain('der');
    let hasRaw = true;
    try {
      nodeCrypto.createPrivateKey({ key: Buffer.alloc(32, 1), format: 'raw-private', asymmetricKeyType: 'x25519' } as unknown as nodeCrypto.PrivateKeyInput);
    } catch {
      hasRaw = false;
    }
    expect(available.includes('raw')).toBe(hasRaw);
  });

  for (const curveMode of modes) {
    it.skipIf(!available.includes(curveMode))(`${curveMode} mode`, () => {
      const b = createNativeBackend({ curveMode });
      for (let i = 0; i < 4; i++) {
        const s1 = pattern(32, i * 50, 7);
        const s2 = pattern(32, i * 50 + 1, 11);
        expect(b.x25519.publicKey(s1)).toEqual(noble.x25519.publicKey(s1));
        expect(b.x25519.sharedSecret(s1, noble.x25519.publicKey(s2))).toEqual(noble.x25519.sharedSecret(s2, noble.x25519.publicKey(s1)));
        const kp = b.ed25519.keygen(s1);
        expect(kp.publicKey).toEqual(noble.ed25519.keygen(s1).publicKey);
        const sig = b.ed25519.sign(kp, pattern(9));
        expect(sig).toEqual(noble.ed25519.sign(kp, pattern(9)));
        expect(b.ed25519.verify(kp.publicKey, pattern(9), sig)).toBe(true);
        expect(b.ed25519.verify(kp.publicKey, pattern(8), sig)).toBe(false);
      }
      expect(() => b.x25519.sharedSecret(pattern(32), new Uint8Array(32))).toThrow(InvalidKeyError);
    });
  }
});
