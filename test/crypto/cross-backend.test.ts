/**
 * The contract in src/crypto/types.ts, checked by comparing the two backends byte for
 * byte: keys from seeds, KEM secrets across backends (both directions), ML-DSA and
 * composite signatures (cross-verify; identical with explicit randomness), AEAD
 * ciphertexts for both algorithms, HKDF / HMAC / hashes, and that both throw the same
 * typed errors for the same misuse.
 */
import { describe, expect, it } from 'vitest';
import { compositeKeygen, compositeSign, compositeVerify } from '../../src/crypto/composite.js';
import type { AeadAlgorithm, CryptoBackend } from '../../src/crypto/types.js';
import { InvalidArgumentError, InvalidKeyError } from '../../src/errors.js';
import { BACKENDS, native, noble, pattern } from './backends.js';

const SEEDS32 = [new Uint8Array(32), new Uint8Array(32).fill(0xff), pattern(32, 1), pattern(32, 200, 37)];
const SEEDS64 = [new Uint8Array(64), new Uint8Array(64).fill(0xff), pattern(64, 3), pattern(64, 99, 13)];
const directions = [
  { from: 'noble', a: noble, to: 'native', b: native },
  { from: 'native', a: native, to: 'noble', b: noble },
] as const;

describe('keys from seeds are identical on both backends', () => {
  it('ML-KEM-768 (64-byte d || z)', () => {
    for (const s of SEEDS64) expect(native.mlkem768.keygen(s).publicKey).toEqual(noble.mlkem768.keygen(s).publicKey);
  });
  it('ML-DSA-65 (32-byte xi)', () => {
    for (const s of SEEDS32) {
      const a = noble.mldsa65.keygen(s);
      const b = native.mldsa65.keygen(s);
      expect(b.publicKey).toEqual(a.publicKey);
      expect(b.publicKey.length).toBe(1952);
      expect(b.seed).toEqual(a.seed);
    }
  });
  it('Ed25519', () => {
    for (const s of SEEDS32) expect(native.ed25519.keygen(s).publicKey).toEqual(noble.ed25519.keygen(s).publicKey);
  });
  it('X25519 (including secrets that need clamping)', () => {
    for (const s of SEEDS32) expect(native.x25519.publicKey(s)).toEqual(noble.x25519.publicKey(s));
  });
  it('X-Wing', () => {
    for (const s of SEEDS32) expect(native.xwing.keygen(s).publicKey).toEqual(noble.xwing.keygen(s).publicKey);
  });
  it('composite ML-DSA-65 + Ed25519', () => {
    const seed = pattern(64, 17);
    expect(compositeKeygen(native, seed).publicKey).toEqual(compositeKeygen(noble, seed).publicKey);
  });
});

describe.each(directions)('KEM secrets: encapsulate on $from, decapsulate on $to', ({ a, b }) => {
  it('ML-KEM-768 with fresh randomness', () => {
    for (const s of SEEDS64.slice(2)) {
      const kpB = b.mlkem768.keygen(s);
      const { ciphertext, sharedSecret } = a.mlkem768.encapsulate(kpB.publicKey);
      expect(ciphertext.length).toBe(1088);
      expect(b.mlkem768.decapsulate(kpB.secretKey, ciphertext)).toEqual(sharedSecret);
    }
  });
  it('X25519 Diffie-Hellman', () => {
    const [skA, skB] = [pattern(32, 5), pattern(32, 6, 3)];
    expect(a.x25519.sharedSecret(skA, b.x25519.publicKey(skB))).toEqual(b.x25519.sharedSecret(skB, a.x25519.publicKey(skA)));
  });
  it('X-Wing with fresh randomness', () => {
    const kpB = b.xwing.keygen(pattern(32, 8));
    const { ciphertext, sharedSecret } = a.xwing.encapsulate(kpB.publicKey);
    expect(b.xwing.decapsulate(kpB, ciphertext)).toEqual(sharedSecret);
  });
});

describe('derandomized KEMs are byte-identical', () => {
  it('ML-KEM-768 with explicit m', () => {
    const pk = noble.mlkem768.keygen(pattern(64, 4)).publicKey;
    for (const m of SEEDS32) expect(native.mlkem768.encapsulate(pk, m)).toEqual(noble.mlkem768.encapsulate(pk, m));
  });
  it('X-Wing with explicit randomness', () => {
    const pk = noble.xwing.keygen(pattern(32, 4)).publicKey;
    for (const r of SEEDS64) expect(native.xwing.encapsulate(pk, r)).toEqual(noble.xwing.encapsulate(pk, r));
  });
});

describe('signatures', () => {
  const seed = pattern(32, 50);
  const msg = new TextEncoder().encode('transcript hash stand-in');
  const ctx = new TextEncoder().encode('pqmcp test context');

  it.each(directions)('ML-DSA-65: hedged signature from $from verifies on $to (and not under another context)', ({ a, b }) => {
    const sig = a.mldsa65.sign(a.mldsa65.keygen(seed), msg, ctx);
    const pk = b.mldsa65.keygen(seed).publicKey;
    expect(sig.length).toBe(3309);
    expect(b.mldsa65.verify(pk, msg, sig, ctx)).toBe(true);
    expect(b.mldsa65.verify(pk, msg, sig, new Uint8Array(0))).toBe(false);
    expect(b.mldsa65.verify(pk, msg.subarray(1), sig, ctx)).toBe(false);
  });

  it('ML-DSA-65: explicit randomness gives identical signatures (zero rnd = deterministic variant)', () => {
    for (const rnd of [new Uint8Array(32), pattern(32, 9)]) {
      const a = noble.mldsa65.sign(noble.mldsa65.keygen(seed), msg, ctx, rnd);
      const b = native.mldsa65.sign(native.mldsa65.keygen(seed), msg, ctx, rnd);
      expect(b).toEqual(a);
    }
  });

  it('ML-DSA-65: an empty context equals no context on both', () => {
    const sig = native.mldsa65.sign(native.mldsa65.keygen(seed), msg, new Uint8Array(0));
    expect(noble.mldsa65.verify(noble.mldsa65.keygen(seed).publicKey, msg, sig, new Uint8Array(0))).toBe(true);
  });

  it('Ed25519 signatures are identical (deterministic) and cross-verify', () => {
    for (const s of SEEDS32) {
      const a = noble.ed25519.sign(noble.ed25519.keygen(s), msg);
      const b = native.ed25519.sign(native.ed25519.keygen(s), msg);
      expect(b).toEqual(a);
      expect(native.ed25519.verify(noble.ed25519.keygen(s).publicKey, msg, a)).toBe(true);
      expect(noble.ed25519.verify(native.ed25519.keygen(s).publicKey, msg, b)).toBe(true);
    }
  });

  it.each(directions)('composite: signature from $from verifies on $to', ({ a, b }) => {
    const cseed = pattern(64, 60);
    const sig = compositeSign(a, compositeKeygen(a, cseed), msg, ctx);
    expect(compositeVerify(b, compositeKeygen(b, cseed).publicKey, msg, sig, ctx)).toBe(true);
  });

  it('composite: explicit randomness gives identical signatures', () => {
    const cseed = pattern(64, 61);
    const rnd = pattern(32, 2);
    expect(compositeSign(native, compositeKeygen(native, cseed), msg, ctx, rnd)).toEqual(compositeSign(noble, compositeKeygen(noble, cseed), msg, ctx, rnd));
  });
});

describe('AEAD ciphertexts are identical', () => {
  const algorithms: AeadAlgorithm[] = ['chacha20-poly1305', 'aes-256-gcm'];
  const sizes = [0, 1, 15, 16, 17, 64, 1000, 70_000];

  it.each(algorithms)('%s: seal on one backend = seal on the other; each opens the other’s', (alg) => {
    const key = pattern(32, 11);
    const a = noble.aead(alg, key);
    const b = native.aead(alg, key);
    for (const [i, n] of sizes.entries()) {
      const nonce = pattern(12, i);
      const aad = pattern(i * 3, 100);
      const pt = pattern(n, i, 7);
      const ct = a.seal(nonce, pt, aad);
      expect(ct.length).toBe(n + 16);
      expect(b.seal(nonce, pt, aad)).toEqual(ct);
      expect(b.open(nonce, ct, aad)).toEqual(pt);
      expect(a.open(nonce, ct, aad)).toEqual(pt);
    }
  });

  it.each(algorithms)('%s: sealFramed = aad || seal(plaintext || trailer), identical on both backends, inputs untouched', (alg) => {
    const key = pattern(32, 14);
    const sealers = [noble.aead(alg, key), native.aead(alg, key)];
    for (const [i, n] of sizes.entries()) {
      const nonce = pattern(12, i, 3);
      const aad = pattern(i % 5, 50);
      const pt = pattern(n, i, 9);
      const trailer = pattern(i % 3, 77);
      const expected = noble.aead(alg, key).seal(nonce, Uint8Array.from([...pt, ...trailer]), aad);
      for (const s of sealers) {
        const [aadCopy, ptCopy, trailerCopy] = [aad.slice(), pt.slice(), trailer.slice()];
        const framed = s.sealFramed(nonce, aad, pt, trailer);
        expect(framed.constructor).toBe(Uint8Array);
        expect(framed.length).toBe(aad.length + n + trailer.length + 16);
        expect(framed.subarray(0, aad.length)).toEqual(aad);
        expect(framed.subarray(aad.length)).toEqual(expected);
        expect([aad, pt, trailer]).toEqual([aadCopy, ptCopy, trailerCopy]);
      }
    }
    expect(() => sealers[1]!.sealFramed(new Uint8Array(8), pattern(4), pattern(1), pattern(1))).toThrow(InvalidArgumentError);
    expect(() => sealers[0]!.sealFramed(new Uint8Array(8), pattern(4), pattern(1), pattern(1))).toThrow(InvalidArgumentError);
  });

  it.each(algorithms)('%s: sealFramed into a given buffer writes the same record there, and refuses a buffer of the wrong length', (alg) => {
    const key = pattern(32, 15);
    const sealers = [noble.aead(alg, key), native.aead(alg, key)];
    for (const [i, n] of sizes.entries()) {
      const nonce = pattern(12, i, 5);
      const aad = pattern(4, 60);
      const pt = pattern(n, i, 11);
      const trailer = pattern(1 + (i % 3), 78);
      for (const s of sealers) {
        const expected = s.sealFramed(nonce, aad, pt, trailer);
        const backing = new Uint8Array(expected.length + 9).fill(0xee); // old contents are overwritten, nothing past the end is touched
        const into = backing.subarray(0, expected.length);
        expect(s.sealFramed(nonce, aad, pt, trailer, into)).toBe(into);
        expect(into).toEqual(expected);
        expect(backing.subarray(expected.length).every((b) => b === 0xee)).toBe(true);
        expect(() => s.sealFramed(nonce, aad, pt, trailer, new Uint8Array(expected.length - 1))).toThrow(InvalidArgumentError);
        expect(() => s.sealFramed(nonce, aad, pt, trailer, new Uint8Array(expected.length + 1))).toThrow(InvalidArgumentError);
      }
    }
  });

  it.each(algorithms)('%s: both refuse the same forgeries with undefined', (alg) => {
    const key = pattern(32, 12);
    const nonce = pattern(12, 1);
    const aad = pattern(5);
    const ct = noble.aead(alg, key).seal(nonce, pattern(40), aad);
    const forgeries: [Uint8Array, Uint8Array, Uint8Array][] = [];
    for (const pos of [0, 39, 40, 55]) {
      const bad = ct.slice();
      bad[pos]! ^= 0x80;
      forgeries.push([nonce, bad, aad]);
    }
    forgeries.push([nonce, ct, pattern(5, 1)]); // other AAD
    forgeries.push([pattern(12, 2), ct, aad]); // other nonce
    forgeries.push([nonce, ct.subarray(0, 15), aad]); // shorter than a tag
    forgeries.push([nonce, ct.subarray(0, ct.length - 1), aad]); // truncated
    forgeries.push([nonce.subarray(0, 11), ct, aad]); // bad nonce length
    for (const { backend } of BACKENDS) {
      const aead = backend.aead(alg, key);
      for (const [n, c, d] of forgeries) expect(aead.open(n, c, d)).toBeUndefined();
    }
  });

  it('both keep their own copy of the key', () => {
    for (const alg of algorithms) {
      const key = pattern(32, 13);
      const sealers = BACKENDS.map(({ backend }) => backend.aead(alg, key));
      const expected = noble.aead(alg, pattern(32, 13)).seal(new Uint8Array(12), pattern(10), new Uint8Array(0));
      key.fill(0);
      for (const s of sealers) expect(s.seal(new Uint8Array(12), pattern(10), new Uint8Array(0))).toEqual(expected);
    }
  });
});

describe('hashes, HMAC and HKDF are identical', () => {
  const inputs = [new Uint8Array(0), pattern(1), pattern(55), pattern(64), pattern(136), pattern(1000, 3)];
  const fns: [string, (b: CryptoBackend, d: Uint8Array) => Uint8Array][] = [
    ['sha256', (b, d) => b.sha256(d)],
    ['sha512', (b, d) => b.sha512(d)],
    ['sha3_256', (b, d) => b.sha3_256(d)],
    ['shake256/32', (b, d) => b.shake256(d, 32)],
    ['shake256/96', (b, d) => b.shake256(d, 96)],
    ['shake256/1', (b, d) => b.shake256(d, 1)],
    ['hmacSha256 (short key)', (b, d) => b.hmacSha256(pattern(16), d)],
    ['hmacSha256 (long key)', (b, d) => b.hmacSha256(pattern(100), d)],
    ['hmacSha256 (empty key)', (b, d) => b.hmacSha256(new Uint8Array(0), d)],
    ['hkdfExtract', (b, d) => b.hkdfExtract(pattern(32, 5), d)],
    ['hkdfExtract (empty salt)', (b, d) => b.hkdfExtract(new Uint8Array(0), d)],
    ['hkdfExpand 1', (b, d) => b.hkdfExpand(pattern(32, 6), d, 1)],
    ['hkdfExpand 32', (b, d) => b.hkdfExpand(pattern(32, 6), d, 32)],
    ['hkdfExpand 33', (b, d) => b.hkdfExpand(pattern(32, 6), d, 33)],
    ['hkdfExpand 8160', (b, d) => b.hkdfExpand(pattern(32, 6), d, 255 * 32)],
  ];
  it.each(fns)('%s', (_name, f) => {
    for (const d of inputs) {
      const a = f(noble, d);
      const b = f(native, d);
      expect(b).toEqual(a);
      expect(b.constructor).toBe(Uint8Array);
    }
  });

  it('known answers (FIPS 180-4 / FIPS 202 "abc")', () => {
    const abc = new TextEncoder().encode('abc');
    for (const { backend } of BACKENDS) {
      expect(Buffer.from(backend.sha256(abc)).toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      expect(Buffer.from(backend.sha3_256(abc)).toString('hex')).toBe('3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532');
    }
  });
});

describe.each(BACKENDS)('$name backend: misuse gets the same typed errors', ({ backend: b }) => {
  it('wrong lengths throw InvalidArgumentError', () => {
    expect(() => b.mlkem768.keygen(new Uint8Array(63))).toThrow(InvalidArgumentError);
    expect(() => b.mlkem768.encapsulate(new Uint8Array(1183))).toThrow(InvalidArgumentError);
    const kem = b.mlkem768.keygen(pattern(64));
    expect(() => b.mlkem768.encapsulate(kem.publicKey, new Uint8Array(31))).toThrow(InvalidArgumentError);
    expect(() => b.mlkem768.decapsulate(kem.secretKey, new Uint8Array(1087))).toThrow(InvalidArgumentError);
    expect(() => b.mldsa65.keygen(new Uint8Array(33))).toThrow(InvalidArgumentError);
    const dsa = b.mldsa65.keygen(pattern(32));
    expect(() => b.mldsa65.sign(dsa, pattern(3), new Uint8Array(256))).toThrow(InvalidArgumentError);
    expect(() => b.mldsa65.sign(dsa, pattern(3), new Uint8Array(0), new Uint8Array(31))).toThrow(InvalidArgumentError);
    expect(() => b.ed25519.keygen(new Uint8Array(31))).toThrow(InvalidArgumentError);
    expect(() => b.x25519.publicKey(new Uint8Array(31))).toThrow(InvalidArgumentError);
    expect(() => b.x25519.sharedSecret(new Uint8Array(31), pattern(32))).toThrow(InvalidArgumentError);
    expect(() => b.x25519.sharedSecret(pattern(32), new Uint8Array(33))).toThrow(InvalidArgumentError);
    expect(() => b.aead('chacha20-poly1305', new Uint8Array(16))).toThrow(InvalidArgumentError);
    expect(() => b.aead('aes-256-gcm', new Uint8Array(33))).toThrow(InvalidArgumentError);
    expect(() => b.aead('aes-128-gcm' as AeadAlgorithm, new Uint8Array(32))).toThrow(InvalidArgumentError);
    expect(() => b.aead('chacha20-poly1305', new Uint8Array(32)).seal(new Uint8Array(8), pattern(1), new Uint8Array(0))).toThrow(InvalidArgumentError);
    expect(() => b.hkdfExpand(pattern(32), new Uint8Array(0), 255 * 32 + 1)).toThrow(InvalidArgumentError);
    expect(() => b.hkdfExpand(pattern(32), new Uint8Array(0), -1)).toThrow(InvalidArgumentError);
  });

  it('verify returns false, never throws, on malformed input', () => {
    const dsa = b.mldsa65.keygen(pattern(32));
    const sig = b.mldsa65.sign(dsa, pattern(3), new Uint8Array(0), new Uint8Array(32));
    expect(b.mldsa65.verify(dsa.publicKey.subarray(1), pattern(3), sig, new Uint8Array(0))).toBe(false);
    expect(b.mldsa65.verify(dsa.publicKey, pattern(3), sig.subarray(1), new Uint8Array(0))).toBe(false);
    expect(b.mldsa65.verify(dsa.publicKey, pattern(3), sig, new Uint8Array(256))).toBe(false);
    expect(b.ed25519.verify(new Uint8Array(31), pattern(3), new Uint8Array(64))).toBe(false);
    expect(b.ed25519.verify(new Uint8Array(32), pattern(3), new Uint8Array(63))).toBe(false);
    expect(b.ed25519.verify(new Uint8Array(32).fill(0xff), pattern(3), new Uint8Array(64))).toBe(false);
  });

  it('a spread copy of an ML-DSA key pair with another seed signs with that seed', () => {
    const a = b.mldsa65.keygen(pattern(32, 1));
    const other = b.mldsa65.keygen(pattern(32, 2));
    const copy = { ...a, seed: other.seed, publicKey: other.publicKey };
    const rnd = new Uint8Array(32);
    expect(b.mldsa65.sign(copy, pattern(3), new Uint8Array(0), rnd)).toEqual(b.mldsa65.sign(other, pattern(3), new Uint8Array(0), rnd));
  });

  it('X25519 refuses the all-zero output with InvalidKeyError', () => {
    expect(() => b.x25519.sharedSecret(pattern(32), new Uint8Array(32))).toThrow(InvalidKeyError);
  });

  it('randomBytes gives fresh plain Uint8Arrays of the asked length', () => {
    const a = b.randomBytes(32);
    expect(a.constructor).toBe(Uint8Array);
    expect(a.length).toBe(32);
    expect(b.randomBytes(32)).not.toEqual(a);
    expect(b.randomBytes(0).length).toBe(0);
    expect(b.randomBytes(65_536).length).toBe(65_536); // noble (crypto.getRandomValues) caps one call at 64 KiB
  });
});

describe('issue 12: an X25519 key taken in once, and a running SHA-256', () => {
  it('X25519 privateKey(): the same public key and agreements as publicKey() / sharedSecret(), a copy of the secret, low order refused', () => {
    for (const { backend: b } of BACKENDS) {
      for (const s of SEEDS32) {
        const secret = s.slice();
        const key = b.x25519.privateKey(secret);
        const peer = pattern(32, 77);
        const expected = noble.x25519.sharedSecret(s, noble.x25519.publicKey(peer));
        secret.fill(0); // wiping the input changes nothing: the key holds its own copy
        expect(key.publicKey).toEqual(noble.x25519.publicKey(s));
        expect(key.sharedSecret(noble.x25519.publicKey(peer))).toEqual(expected);
        expect(key.sharedSecret(noble.x25519.publicKey(peer))).toEqual(expected); // reusable
        expect(() => key.sharedSecret(new Uint8Array(32))).toThrow(InvalidKeyError); // u = 0: low order
        expect(() => key.sharedSecret(new Uint8Array(31))).toThrow(InvalidArgumentError);
      }
      expect(() => b.x25519.privateKey(new Uint8Array(31))).toThrow(InvalidArgumentError);
    }
  });

  it('sha256Running(): each digest is SHA-256 of everything so far, updates go on after it, both backends agree', () => {
    const parts = [pattern(1200, 1), new Uint8Array(0), pattern(7000, 2), pattern(3, 3)];
    for (const { backend: b } of BACKENDS) {
      const running = b.sha256Running();
      const seen: Uint8Array[] = [];
      expect(running.digest()).toEqual(noble.sha256(new Uint8Array(0)));
      for (const p of parts) {
        running.update(p);
        seen.push(p);
        const all = new Uint8Array(seen.reduce((n, x) => n + x.length, 0));
        let off = 0;
        for (const x of seen) all.set(x, (off += x.length) - x.length);
        expect(running.digest()).toEqual(noble.sha256(all));
        expect(running.digest()).toEqual(native.sha256(all)); // reading does not consume
      }
    }
  });
});
