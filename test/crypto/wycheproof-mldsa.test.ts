/**
 * ML-DSA-65 Wycheproof vectors on both backends:
 * - mldsa_65_verify_test: every case (invalid signatures, hint encodings, infinity norm,
 *   wrong lengths, contexts up to and over 255 bytes) must verify exactly as expected;
 * - mldsa_65_sign_seed_test: keys from 32-byte seeds give the published public key, and
 *   signing with the vector's rnd (all-zero unless given: the deterministic variant)
 *   reproduces the signature. Cases that give only mu (Sign_internal) do not fit the pure
 *   API and are counted as skipped; bad seed lengths and contexts must throw.
 * On the native backend an explicit rnd is served by noble, so we also check there that a
 * hedged native signature verifies under the vector's key and context.
 */
import { expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import type { Group, WycheproofFile, WycheproofTest } from '../helpers/vectors.js';
import { describeVectors, hex, readVectorJson, toHexString, thrownBy } from '../helpers/vectors.js';
import { BACKENDS } from './backends.js';

interface VerifyGroup extends Group<VerifyTest> {
  publicKey: string;
}
interface VerifyTest extends WycheproofTest {
  msg: string;
  sig: string;
  ctx?: string;
}
interface SignGroup extends Group<SignTest> {
  privateSeed: string;
  publicKey: string | null;
}
interface SignTest extends WycheproofTest {
  msg?: string;
  mu?: string;
  ctx?: string;
  rnd?: string;
  sig: string;
}

for (const { name, backend } of BACKENDS) {
  const dsa = backend.mldsa65;

  describeVectors(`Wycheproof ML-DSA-65 verify on ${name}`, ['wycheproof_mldsa_65_verify_test.json'], () => {
    it('every case verifies exactly as expected, without throwing', () => {
      const file = readVectorJson<WycheproofFile<VerifyGroup>>('wycheproof_mldsa_65_verify_test.json');
      expect(file.algorithm).toBe('ML-DSA-65');
      const failures: string[] = [];
      let valid = 0;
      let invalid = 0;
      let withContext = 0;
      for (const g of file.testGroups) {
        expect(g.type).toBe('MlDsaVerify');
        const pk = hex(g.publicKey);
        for (const t of g.tests) {
          expect(t.result).not.toBe('acceptable');
          if (t.result === 'valid') valid++;
          else invalid++;
          if (t.ctx !== undefined) withContext++;
          let ok: boolean;
          try {
            ok = dsa.verify(pk, hex(t.msg), hex(t.sig), hex(t.ctx ?? ''));
          } catch {
            failures.push(`tcId ${t.tcId}: verify threw`);
            continue;
          }
          if (ok !== (t.result === 'valid')) failures.push(`tcId ${t.tcId} (${t.flags?.join('+')}): got ${ok}`);
        }
      }
      expect(failures).toEqual([]);
      expect(valid).toBeGreaterThanOrEqual(75);
      expect(invalid).toBeGreaterThanOrEqual(125);
      expect(withContext).toBeGreaterThanOrEqual(8);
    });
  });

  describeVectors(`Wycheproof ML-DSA-65 sign from seed on ${name}`, ['wycheproof_mldsa_65_sign_seed_test.json'], () => {
    it('keys from seeds match and signatures with the given rnd are reproduced', () => {
      const file = readVectorJson<WycheproofFile<SignGroup>>('wycheproof_mldsa_65_sign_seed_test.json');
      expect(file.algorithm).toBe('ML-DSA-65');
      const failures: string[] = [];
      let signed = 0;
      let refused = 0;
      let internalOnly = 0;
      let hedgedChecked = 0;
      for (const g of file.testGroups) {
        expect(g.type).toBe('MlDsaSign');
        const seed = hex(g.privateSeed);
        if (seed.length !== 32) {
          // IncorrectPrivateKeyLength: the key cannot even be made.
          for (const t of g.tests) {
            expect(t.result).toBe('invalid');
            refused++;
            if (!(thrownBy(() => dsa.keygen(seed)) instanceof InvalidArgumentError)) failures.push(`tcId ${t.tcId}: bad seed length accepted`);
          }
          continue;
        }
        const kp = dsa.keygen(seed);
        if (g.publicKey !== null && toHexString(kp.publicKey) !== g.publicKey) failures.push(`seed ${g.privateSeed.slice(0, 8)}…: wrong public key`);
        for (const t of g.tests) {
          if (t.msg === undefined) {
            internalOnly++; // mu only: for Sign_internal, which the pure API does not expose
            continue;
          }
          const msg = hex(t.msg);
          const ctx = hex(t.ctx ?? '');
          const rnd = t.rnd !== undefined ? hex(t.rnd) : new Uint8Array(32);
          if (t.result === 'invalid') {
            refused++;
            expect(t.flags).toContain('InvalidContext'); // the only signable invalid kind here
            if (!(thrownBy(() => dsa.sign(kp, msg, ctx, rnd)) instanceof InvalidArgumentError)) failures.push(`tcId ${t.tcId}: over-long context accepted`);
            continue;
          }
          signed++;
          const sig = dsa.sign(kp, msg, ctx, rnd);
          if (toHexString(sig) !== t.sig) failures.push(`tcId ${t.tcId}: signature differs`);
          // Hedged signing (the native path on the native backend) on the cases with a context.
          if (t.ctx !== undefined) {
            hedgedChecked++;
            if (!dsa.verify(kp.publicKey, msg, dsa.sign(kp, msg, ctx), ctx)) failures.push(`tcId ${t.tcId}: hedged signature does not verify`);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(signed).toBeGreaterThanOrEqual(80);
      expect(refused).toBeGreaterThanOrEqual(4);
      expect(internalOnly).toBeGreaterThanOrEqual(10);
      expect(hedgedChecked).toBeGreaterThanOrEqual(3);
    });
  });
}
