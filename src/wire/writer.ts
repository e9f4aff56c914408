/**
 * Big-endian writer, the mirror of Reader. Length prefixes are checked against their
 * width so an encoder can never emit a structure its own decoder would refuse.
 */
import { InvalidArgumentError } from '../errors.js';

const utf8 = new TextEncoder();

export class Writer {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): this {
    this.chunks.push(b);
    this.size += b.length;
    return this;
  }

  u8(v: number): this {
    return this.push(Uint8Array.of(v & 0xff));
  }

  u16(v: number): this {
    if (v < 0 || v > 0xffff) throw new InvalidArgumentError(`u16 out of range: ${v}`);
    return this.push(Uint8Array.of(v >>> 8, v & 0xff));
  }

  u24(v: number): this {
    if (v < 0 || v > 0xffffff) throw new InvalidArgumentError(`u24 out of range: ${v}`);
    return this.push(Uint8Array.of(v >>> 16, (v >>> 8) & 0xff, v & 0xff));
  }

  u32(v: number): this {
    if (v < 0 || v > 0xffffffff) throw new InvalidArgumentError(`u32 out of range: ${v}`);
    return this.push(Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff));
  }

  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`u64 out of range: ${v}`);
    return this.u32(Math.floor(v / 0x1_0000_0000)).u32(v >>> 0);
  }

  bytes(b: Uint8Array): this {
    return this.push(b);
  }

  vector(prefix: 1 | 2 | 3 | 4, b: Uint8Array): this {
    const max = 2 ** (8 * prefix) - 1;
    if (b.length > max) throw new InvalidArgumentError(`vector of ${b.length} bytes exceeds a ${prefix}-byte length prefix`);
    if (prefix === 1) this.u8(b.length);
    else if (prefix === 2) this.u16(b.length);
    else if (prefix === 3) this.u24(b.length);
    else this.u32(b.length);
    return this.push(b);
  }

  string(prefix: 1 | 2, s: string): this {
    return this.vector(prefix, utf8.encode(s));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}
