/**
 * Byte helpers shared by every layer. The constant-time comparison and hex codecs are
 * @noble/ciphers' own (audited); this module only gives them one import path.
 */
export { bytesToHex as toHex, concatBytes as concat, equalBytes, hexToBytes as fromHex } from '@noble/ciphers/utils.js';

export const utf8Encode = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Overwrite secret bytes once they are no longer needed (best effort in JS). */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}
