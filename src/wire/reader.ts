/**
 * Bounded big-endian reader for PQMCP wire structures.
 *
 * Every read checks the remaining length first and throws DecodeError naming the field;
 * nothing allocates more than the bytes actually present, so a huge declared length costs
 * nothing before it is refused. Slices are views into the input, not copies.
 */
import { DecodeError } from '../errors.js';

// ignoreBOM: a leading U+FEFF is content, not a marker to drop (two encodings of one string
// would break canonical decoding).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class Reader {
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private take(n: number, field: string): Uint8Array {
    if (n > this.remaining) throw new DecodeError(`truncated ${field}: need ${n} bytes, have ${this.remaining}`);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(field: string): number {
    return this.take(1, field)[0]!;
  }

  u16(field: string): number {
    const b = this.take(2, field);
    return (b[0]! << 8) | b[1]!;
  }

  u24(field: string): number {
    const b = this.take(3, field);
    return (b[0]! << 16) | (b[1]! << 8) | b[2]!;
  }

  u32(field: string): number {
    const b = this.take(4, field);
    return ((b[0]! << 24) >>> 0) + ((b[1]! << 16) | (b[2]! << 8) | b[3]!);
  }

  /** u64 as a JS number; refuses values above 2^53 - 1 (not canonical for our timestamps). */
  u64(field: string): number {
    const hi = this.u32(field);
    const lo = this.u32(field);
    if (hi > 0x1fffff) throw new DecodeError(`${field} out of range`);
    return hi * 0x1_0000_0000 + lo;
  }

  /** Exactly n bytes. */
  fixed(n: number, field: string): Uint8Array {
    return this.take(n, field);
  }

  /** Bytes with a length prefix of `prefix` bytes (1, 2, 3 or 4), within [min, max]. */
  vector(prefix: 1 | 2 | 3 | 4, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): Uint8Array {
    const len = prefix === 1 ? this.u8(field) : prefix === 2 ? this.u16(field) : prefix === 3 ? this.u24(field) : this.u32(field);
    if (len < min || len > max) throw new DecodeError(`${field} length ${len} outside [${min}, ${max}]`);
    return this.take(len, field);
  }

  /** UTF-8 string with a length prefix; refuses invalid UTF-8 and NUL characters. */
  string(prefix: 1 | 2, field: string, min = 0, max = 0xffff): string {
    const raw = this.vector(prefix, field, min, max);
    let s: string;
    try {
      s = utf8.decode(raw);
    } catch {
      throw new DecodeError(`${field} is not valid UTF-8`);
    }
    if (s.includes('\u0000')) throw new DecodeError(`${field} contains a NUL character`);
    return s;
  }

  /** Throw unless every byte has been consumed. */
  end(what: string): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.remaining} trailing bytes after ${what}`);
  }
}
