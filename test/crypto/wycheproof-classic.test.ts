/**
 * Wycheproof (C2SP/wycheproof testvectors_v1) for the classical primitives each backend
 * wraps: X25519, Ed25519 (RFC 8032 strict), ChaCha20-Poly1305 and AES-256-GCM (12-byte
 * nonce, 16-byte tag, 32-byte key cases only: the only shape our API has) and
 * HKDF-SHA256 (extract + expand). Every suite counts the cases it ran, so a parsing
 * mistake that silently skips cases fails the test.
 */
import { expect, it } from 'vitest';
import { InvalidArgumentError, InvalidKeyError } from '../../src/errors.js';
import type { Group, WycheproofFile, WycheproofTest } from '../helpers/vectors.js';
import { describeVectors, hex, readVectorJson, thrownBy } from '../helpers/vectors.js';
import { BACKENDS } from './backends.js';

interface XdhTest extends WycheproofTest {
  public: string;
  private: string;
  shared: string;
}
interface EddsaGroup extends Group<EddsaTest> {
  publicKey: { pk: string; curve: string };
}
interface EddsaTest extends WycheproofTest {
  msg: string;
  sig: string;
}
interface AeadGroup extends Group<AeadTest> {
  ivSize: number;
  keySize: number;
  tagSize: number;
}
interface AeadTest extends WycheproofTest {
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
}
interface HkdfTest extends WycheproofTest {
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
}

for (const { name, backend } of BACKENDS) {
  describeVectors(`Wycheproof X25519 on ${name}`, ['wycheproof_x25519_test.json'], () => {
    it('valid cases match; zero shared secrets (low-order points) throw InvalidKeyError', () => {
      const file = readVectorJson<WycheproofFile<Group<XdhTest>>>('wycheproof_x25519_test.json');
      expect(file.algorithm).toBe('XDH');
      const failures: string[] = [];
      let matched = 0;
      let refused = 0;
      for (const g of file.testGroups) {
        expect(g.type).toBe('XdhComp');
        for (const t of g.tests) {
          const zero = /^(00)+$/.test(t.shared);
          if (zero) {
            const err = thrownBy(() => backend.x25519.sharedSecret(hex(t.private), hex(t.public)));
            if (err instanceof InvalidKeyError) refused++;
            else failures.push(`tcId ${t.tcId}: zero shared secret not refused with InvalidKeyError`);
            continue;
          }
          // 'valid' and 'acceptable' (twist points, non-canonical u) both have a defined RFC 7748 result.
          const out = backend.x25519.sharedSecret(hex(t.private), hex(t.public));
          if (Buffer.from(out).toString('hex') === t.shared) matched++;
          else failures.push(`tcId ${t.tcId} (${t.result}): wrong shared secret`);
        }
      }
      expect(failures).toEqual([]);
      expect(matched).toBeGreaterThanOrEqual(480);
      expect(refused).toBeGreaterThanOrEqual(25);
      expect(matched + refused).toBe(file.numberOfTests);
    });
  });

  describeVectors(`Wycheproof Ed25519 on ${name}`, ['wycheproof_ed25519_test.json'], () => {
    it('every case verifies exactly as expected (RFC 8032 strict)', () => {
      const file = readVectorJson<WycheproofFile<EddsaGroup>>('wycheproof_ed25519_test.json');
      expect(file.algorithm).toBe('EDDSA');
      const failures: string[] = [];
      let ran = 0;
      for (const g of file.testGroups) {
        expect(g.type).toBe('EddsaVerify');
        expect(g.publicKey.curve).toBe('edwards25519');
        const pk = hex(g.publicKey.pk);
        for (const t of g.tests) {
          ran++;
          expect(t.result).not.toBe('acceptable'); // none in this file; if that changes, decide explicitly
          let ok: boolean;
          try {
            ok = backend.ed25519.verify(pk, hex(t.msg), hex(t.sig));
          } catch {
            failures.push(`tcId ${t.tcId}: verify threw`);
            continue;
          }
          if (ok !== (t.result === 'valid')) failures.push(`tcId ${t.tcId} (${t.result}, ${t.comment}): got ${ok}`);
        }
      }
      expect(failures).toEqual([]);
      expect(ran).toBe(file.numberOfTests);
      expect(ran).toBeGreaterThanOrEqual(150);
    });

    it('tcId 151 (R = y 1 with the x sign bit set) is rejected', () => {
      const file = readVectorJson<WycheproofFile<EddsaGroup>>('wycheproof_ed25519_test.json');
      const hits = file.testGroups.flatMap((g) => g.tests.filter((t) => t.tcId === 151).map((t) => ({ g, t })));
      expect(hits.length).toBe(1);
      const { g, t } = hits[0]!;
      expect(t.result).toBe('invalid');
      expect(backend.ed25519.verify(hex(g.publicKey.pk), hex(t.msg), hex(t.sig))).toBe(false);
    });
  });

  for (const [file, algorithm, alg] of [
    ['wycheproof_chacha20_poly1305_test.json', 'CHACHA20-POLY1305', 'chacha20-poly1305'],
    ['wycheproof_aes_gcm_test.json', 'AES-GCM', 'aes-256-gcm'],
  ] as const) {
    describeVectors(`Wycheproof ${algorithm} on ${name}`, [file], () => {
      it('valid cases seal and open to the expected bytes; invalid ones open to undefined', () => {
        const data = readVectorJson<WycheproofFile<AeadGroup>>(file);
        expect(data.algorithm).toBe(algorithm);
        const failures: string[] = [];
        let valid = 0;
        let invalid = 0;
        let skipped = 0;
        for (const g of data.testGroups) {
          expect(g.type).toBe('AeadTest');
          // Our AEAD API: 32-byte key, 12-byte nonce, 16-byte tag. Other shapes do not apply.
          if (g.keySize !== 256 || g.ivSize !== 96 || g.tagSize !== 128) {
            skipped += g.tests.length;
            continue;
          }
          for (const t of g.tests) {
            const aead = backend.aead(alg, hex(t.key));
            const sealed = new Uint8Array([...hex(t.ct), ...hex(t.tag)]);
            const opened = aead.open(hex(t.iv), sealed, hex(t.aad));
            if (t.result === 'valid') {
              valid++;
              if (!opened || Buffer.compare(opened, hex(t.msg)) !== 0) failures.push(`tcId ${t.tcId}: open failed`);
              if (Buffer.compare(aead.seal(hex(t.iv), hex(t.msg), hex(t.aad)), sealed) !== 0) failures.push(`tcId ${t.tcId}: seal differs`);
            } else {
              invalid++;
              if (opened !== undefined) failures.push(`tcId ${t.tcId} (${t.comment}): invalid case opened`);
            }
          }
        }
        expect(failures).toEqual([]);
        expect(valid).toBeGreaterThanOrEqual(alg === 'chacha20-poly1305' ? 250 : 39);
        expect(invalid).toBeGreaterThanOrEqual(alg === 'chacha20-poly1305' ? 60 : 27);
        expect(valid + invalid + skipped).toBe(data.numberOfTests);
      });
    });
  }

  describeVectors(`Wycheproof HKDF-SHA256 on ${name}`, ['wycheproof_hkdf_sha256_test.json'], () => {
    it('extract + expand give the expected OKM; oversize requests throw InvalidArgumentError', () => {
      const file = readVectorJson<WycheproofFile<Group<HkdfTest>>>('wycheproof_hkdf_sha256_test.json');
      expect(file.algorithm).toBe('HKDF-SHA-256');
      const failures: string[] = [];
      let valid = 0;
      let invalid = 0;
      for (const g of file.testGroups) {
        expect(g.type).toBe('HkdfTest');
        for (const t of g.tests) {
          if (t.result === 'valid') {
            valid++;
            const prk = backend.hkdfExtract(hex(t.salt), hex(t.ikm));
            const okm = backend.hkdfExpand(prk, hex(t.info), t.size);
            if (Buffer.from(okm).toString('hex') !== t.okm) failures.push(`tcId ${t.tcId}: wrong OKM`);
          } else {
            invalid++;
            expect(t.size, `tcId ${t.tcId}`).toBeGreaterThan(255 * 32); // the only invalid kind in this file
            const prk = backend.hkdfExtract(hex(t.salt), hex(t.ikm));
            if (!(thrownBy(() => backend.hkdfExpand(prk, hex(t.info), t.size)) instanceof InvalidArgumentError)) failures.push(`tcId ${t.tcId}: oversize not refused`);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(valid).toBeGreaterThanOrEqual(80);
      expect(invalid).toBeGreaterThanOrEqual(3);
      expect(valid + invalid).toBe(file.numberOfTests);
    });
  });
}
