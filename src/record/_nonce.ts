/**
 * Per-record nonce (docs/protocol.md, section 3.2), as in TLS 1.3 (RFC 8446 section 5.3):
 *
 *   nonce = iv XOR (0x00000000 || seq u64 big-endian)      12 bytes
 *
 * `seq` is a JS number below 2^53 (the record layer caps it at 2^48), so its high 32 bits are
 * exact. Runs in time independent of iv; only seq (public) selects the bytes written.
 */

/** Write iv XOR seq into `out` (12 bytes) and return `out`. */
export function writeNonce(out: Uint8Array, iv: Uint8Array, seq: number): Uint8Array {
  const hi = Math.floor(seq / 0x1_0000_0000);
  const lo = seq >>> 0;
  out.set(iv);
  out[4]! ^= hi >>> 24;
  out[5]! ^= (hi >>> 16) & 0xff;
  out[6]! ^= (hi >>> 8) & 0xff;
  out[7]! ^= hi & 0xff;
  out[8]! ^= lo >>> 24;
  out[9]! ^= (lo >>> 16) & 0xff;
  out[10]! ^= (lo >>> 8) & 0xff;
  out[11]! ^= lo & 0xff;
  return out;
}
