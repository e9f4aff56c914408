/**
 * ML-KEM-768 known-answer and edge-case vectors on both backends:
 * - Wycheproof mlkem_768_test (decapsulation from 64-byte seeds, incl. CCTV strcmp, and
 *   malformed seed / ciphertext lengths),
 * - Wycheproof mlkem_768_encaps_test (derandomized encapsulation; keys failing the
 *   FIPS 203 modulus check and wrong-length keys must be refused),
 * - CCTV ML-KEM/modulus (780 keys, one bad coefficient each) and ML-KEM/strcmp (an
 *   expanded decapsulation key).
 * On the native backend an explicit `m` is served by noble (OpenSSL cannot take it), so
 * invalid keys are also tried WITHOUT `m` there, which exercises the native path.
 */
import { expect, it } from 'vitest';
import { mlkem768ModulusCheck } from '../../src/crypto/native.js';
import { InvalidArgumentError, InvalidKeyError } from '../../src/errors.js';
import type { Group, WycheproofFile, WycheproofTest } from '../helpers/vectors.js';
import { describeVectors, hex, readVectorJson, readVectorText, toHexString, thrownBy } from '../helpers/vectors.js';
import { BACKENDS } from './backends.js';

interface DecapsTest extends WycheproofTest {
  seed: string;
  ek?: string;
  c: string;
  K?: string;
}
interface EncapsTest extends WycheproofTest {
  ek: string;
  m: string;
  c?: string;
  K?: string;
}
interface KemGroup<T> extends Group<T> {
  parameterSet: string;
  source: { name: string };
}

for (const { name, backend } of BACKENDS) {
  const kem = backend.mlkem768;

  describeVectors(`Wycheproof ML-KEM-768 decapsulation on ${name}`, ['wycheproof_mlkem_768_test.json'], () => {
    it('valid seeds give the expected ek and K; bad seed / ciphertext lengths throw InvalidArgumentError', () => {
      const file = readVectorJson<WycheproofFile<KemGroup<DecapsTest>>>('wycheproof_mlkem_768_test.json');
      expect(file.algorithm).toBe('ML-KEM');
      const failures: string[] = [];
      let valid = 0;
      let invalid = 0;
      let strcmp = 0;
      for (const g of file.testGroups) {
        expect(g.type).toBe('MLKEMTest');
        expect(g.parameterSet).toBe('ML-KEM-768');
        for (const t of g.tests) {
          const seed = hex(t.seed);
          const c = hex(t.c);
          if (t.result === 'valid') {
            valid++;
            if (t.flags?.includes('Strcmp')) strcmp++;
            const kp = kem.keygen(seed);
            if (t.ek !== undefined && toHexString(kp.publicKey) !== t.ek) failures.push(`tcId ${t.tcId}: wrong ek`);
            if (toHexString(kem.decapsulate(kp.secretKey, c)) !== t.K) failures.push(`tcId ${t.tcId}: wrong K`);
            continue;
          }
          invalid++;
          // The invalid cases of this file are all malformed lengths (seed or ciphertext).
          if (seed.length !== 64) {
            if (!(thrownBy(() => kem.keygen(seed)) instanceof InvalidArgumentError)) failures.push(`tcId ${t.tcId}: bad seed length accepted`);
          } else if (c.length !== 1088) {
            const kp = kem.keygen(seed);
            if (!(thrownBy(() => kem.decapsulate(kp.secretKey, c)) instanceof InvalidArgumentError)) failures.push(`tcId ${t.tcId}: bad ciphertext length accepted`);
          } else {
            failures.push(`tcId ${t.tcId}: unexpected kind of invalid case (${t.comment}); decide how to test it`);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(valid).toBeGreaterThanOrEqual(150);
      expect(invalid).toBeGreaterThanOrEqual(40);
      expect(strcmp).toBeGreaterThanOrEqual(1);
      expect(valid + invalid).toBe(file.numberOfTests);
    });
  });

  describeVectors(`Wycheproof ML-KEM-768 encapsulation on ${name}`, ['wycheproof_mlkem_768_encaps_test.json'], () => {
    it('derandomized encapsulation matches; modulus failures throw InvalidKeyError, wrong lengths InvalidArgumentError', () => {
      const file = readVectorJson<WycheproofFile<KemGroup<EncapsTest>>>('wycheproof_mlkem_768_encaps_test.json');
      expect(file.algorithm).toBe('ML-KEM');
      const failures: string[] = [];
      let valid = 0;
      let modulus = 0;
      let lengths = 0;
      for (const g of file.testGroups) {
        expect(g.type).toBe('MLKEMEncapsTest');
        expect(g.parameterSet).toBe('ML-KEM-768');
        for (const t of g.tests) {
          const ek = hex(t.ek);
          const m = hex(t.m);
          if (t.result === 'valid') {
            valid++;
            const out = kem.encapsulate(ek, m);
            if (toHexString(out.ciphertext) !== t.c || toHexString(out.sharedSecret) !== t.K) failures.push(`tcId ${t.tcId}: wrong c or K`);
            // Fresh randomness takes the native path on the native backend.
            const fresh = kem.encapsulate(ek);
            if (fresh.ciphertext.length !== 1088 || fresh.sharedSecret.length !== 32) failures.push(`tcId ${t.tcId}: bad output lengths`);
            continue;
          }
          if (ek.length !== 1184) {
            lengths++;
            if (!(thrownBy(() => kem.encapsulate(ek, m)) instanceof InvalidArgumentError)) failures.push(`tcId ${t.tcId}: wrong-length key not refused`);
            if (!(thrownBy(() => kem.encapsulate(ek)) instanceof InvalidArgumentError)) failures.push(`tcId ${t.tcId}: wrong-length key not refused (fresh m)`);
          } else {
            modulus++; // "ModulusOverflow" and "Public key not reduced"
            if (mlkem768ModulusCheck(ek)) failures.push(`tcId ${t.tcId}: modulus check passes an unreduced key`);
            if (!(thrownBy(() => kem.encapsulate(ek, m)) instanceof InvalidKeyError)) failures.push(`tcId ${t.tcId}: unreduced key not refused`);
            if (!(thrownBy(() => kem.encapsulate(ek)) instanceof InvalidKeyError)) failures.push(`tcId ${t.tcId}: unreduced key not refused (fresh m)`);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(valid).toBeGreaterThanOrEqual(130);
      expect(modulus).toBeGreaterThanOrEqual(110);
      expect(lengths).toBeGreaterThanOrEqual(15);
      expect(valid + modulus + lengths).toBe(file.numberOfTests);
    });
  });

  describeVectors(`CCTV ML-KEM-768 modulus keys on ${name}`, ['cctv_mlkem768_modulus.txt.gz'], () => {
    it('all 780 keys are refused with InvalidKeyError', () => {
      const keys = readVectorText('cctv_mlkem768_modulus.txt.gz')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0);
      expect(keys.length).toBe(780);
      const failures: number[] = [];
      for (const [i, line] of keys.entries()) {
        const ek = hex(line);
        expect(ek.length).toBe(1184);
        if (!(thrownBy(() => kem.encapsulate(ek)) instanceof InvalidKeyError)) failures.push(i);
        if (!(thrownBy(() => kem.encapsulate(ek, new Uint8Array(32))) instanceof InvalidKeyError)) failures.push(i);
      }
      expect(failures).toEqual([]);
    });
  });

  describeVectors(`CCTV ML-KEM-768 strcmp vector on ${name}`, ['cctv_mlkem768_strcmp.txt'], () => {
    it('decapsulates with the expanded key to K (implicit rejection taken)', () => {
      const fields = Object.fromEntries(
        readVectorText('cctv_mlkem768_strcmp.txt')
          .trim()
          .split('\n')
          .map((l) => l.split(' = ') as [string, string]),
      );
      expect(Object.keys(fields).sort()).toEqual(['K', 'c', 'dk']);
      const dk = hex(fields.dk!);
      expect(dk.length).toBe(2400); // the expanded FIPS 203 decapsulation key, not a seed
      // Both backends accept noble's expanded secret key (the native one hands it to noble).
      expect(toHexString(kem.decapsulate(dk, hex(fields.c!)))).toBe(fields.K);
    });
  });
}
