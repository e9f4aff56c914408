/**
 * Byte helpers shared by every layer. The constant-time comparison and the hex decoder are
 * @noble/ciphers' own (audited); this module only gives them one import path.
 *
 * Sharp edge: toHex is ours, because a string built by `+=` per byte (noble's bytesToHex)
 * stays in V8 as a rope of one 32-byte cell per byte: a 32-byte fingerprint kept for the
 * life of a session (peer fingerprints, serials, cache keys) cost ~2 KiB instead of ~80 B.
 * join() returns a flat string.
 */
export { concatBytes as concat, equalBytes, hexToBytes as fromHex } from '@noble/ciphers/utils.js';

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lowercase hex of `bytes`, as one flat string. */
export function toHex(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('toHex expects a Uint8Array');
  const parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) parts[i] = HEX_BYTE[bytes[i]!]!;
  return parts.join('');
}

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
