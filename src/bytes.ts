/**
 * Byte helpers shared by every layer. The constant-time comparison and hex codecs are
 * @noble/ciphers' own (audited); this module only gives them one import path.
 */
export { bytesToHex as toHex, concatBytes as concat, equalBytes, hexToBytes as fromHex } from '@noble/ciphers/utils.js';

export const utf8Encode = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * An independent copy of `bytes` in a plain Uint8Array with its own memory. Never
 * `bytes.slice()`: on a Node Buffer that is a view on the same memory, so wiping the
 * original would wipe the "copy" (and a transport reusing its buffer would change it).
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Overwrite secret bytes once they are no longer needed (best effort in JS). */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

const NodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(n: number): Uint8Array } }).Buffer;

/**
 * A plain Uint8Array of n bytes with its own ArrayBuffer, for a caller that writes every
 * byte before anyone reads it: on Node, from 4 KiB up, not zero-filled (Buffer.allocUnsafeSlow,
 * never Buffer's shared pool); elsewhere, and below 4 KiB where skipping the fill does not
 * pay, an ordinary zero-filled array.
 */
export function uninitialised(n: number): Uint8Array {
  if (NodeBuffer === undefined || n < 4096) return new Uint8Array(n);
  return new Uint8Array(NodeBuffer.allocUnsafeSlow(n).buffer, 0, n);
}
