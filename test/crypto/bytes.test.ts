/** src/bytes.ts: our toHex (flat strings) agrees with noble's bytesToHex and fromHex, byte for byte. */
import { bytesToHex } from '@noble/ciphers/utils.js';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/bytes.js';

describe('toHex', () => {
  it('encodes every byte value as noble does, lowercase, and round-trips through fromHex', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(toHex(all)).toBe(bytesToHex(all));
    expect(toHex(all)).toMatch(/^[0-9a-f]{512}$/);
    expect(fromHex(toHex(all))).toEqual(all);
    for (let n = 0; n < 70; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 151 + n * 7) & 0xff);
      expect(toHex(b)).toBe(bytesToHex(b));
    }
  });

  it('reads views at their offset, and refuses what is not bytes', () => {
    const b = Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 0x01);
    expect(toHex(b.subarray(1, 4))).toBe('adbeef');
    expect(toHex(Buffer.from([0x0a]))).toBe('0a');
    expect(() => toHex('00' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => toHex([1, 2] as unknown as Uint8Array)).toThrow(TypeError);
  });
});
