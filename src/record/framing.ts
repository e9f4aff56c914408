/**
 * Record framing over a byte stream.
 *
 *   Record := type u8 | length u24 | body[length]
 *
 * | type | body                               | length        |
 * |------|------------------------------------|---------------|
 * | 0x16 | one framed handshake message       | 1..8192       |
 * | 0x15 | alert code u16                     | exactly 2     |
 * | 0x17 | AEAD ciphertext || tag             | 17..65553     |
 *
 * Sharp edges:
 * - The deframer judges each header the moment its 4 bytes are present: an unknown type, an
 *   oversize or undersize length fails before any of the body is buffered, so a peer
 *   declaring 16 MiB costs nothing.
 * - Any split of the stream gives the same records (chunks are kept as a list and copied
 *   once per record, so many tiny chunks are not quadratic).
 * - After an error the deframer is dead: every later call throws the same error.
 */
import { DecodeError, RecordOverflowError, UnexpectedMessageError, type PqmcpError } from '../errors.js';
import { ALERT_BODY_LENGTH, HEADER_LENGTH, MAX_PLAINTEXT_HANDSHAKE, MAX_PROTECTED_BODY, MIN_PROTECTED_BODY, RecordType } from './constants.js';

export function writeHeader(out: Uint8Array, type: number, length: number): void {
  out[0] = type;
  out[1] = length >>> 16;
  out[2] = (length >>> 8) & 0xff;
  out[3] = length & 0xff;
}

/** Check a header's type and length; throws the typed error a receiver must raise. */
export function checkHeader(type: number, length: number): void {
  switch (type) {
    case RecordType.handshake:
      if (length > MAX_PLAINTEXT_HANDSHAKE) throw new RecordOverflowError(`handshake record of ${length} bytes exceeds ${MAX_PLAINTEXT_HANDSHAKE}`);
      if (length < 1) throw new DecodeError('empty handshake record');
      return;
    case RecordType.alert:
      if (length > ALERT_BODY_LENGTH) throw new RecordOverflowError(`alert record of ${length} bytes exceeds ${ALERT_BODY_LENGTH}`);
      if (length < ALERT_BODY_LENGTH) throw new DecodeError(`alert record of ${length} bytes, expected ${ALERT_BODY_LENGTH}`);
      return;
    case RecordType.protected:
      if (length > MAX_PROTECTED_BODY) throw new RecordOverflowError(`protected record of ${length} bytes exceeds ${MAX_PROTECTED_BODY}`);
      if (length < MIN_PROTECTED_BODY) throw new DecodeError(`protected record of ${length} bytes is shorter than ${MIN_PROTECTED_BODY}`);
      return;
    default:
      throw new UnexpectedMessageError(`unknown record type 0x${type.toString(16).padStart(2, '0')}`);
  }
}

/** Encode one plaintext record (handshake or alert). */
export function encodeRecord(type: number, body: Uint8Array): Uint8Array {
  checkHeader(type, body.length);
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  writeHeader(out, type, body.length);
  out.set(body, HEADER_LENGTH);
  return out;
}

export interface RawRecord {
  type: number;
  /** The 4 header bytes (the AAD of a protected record). */
  header: Uint8Array;
  body: Uint8Array;
}

export class RecordDeframer {
  private chunks: Uint8Array[] = [];
  /** Offset into chunks[0] already consumed. */
  private head = 0;
  private buffered = 0;
  private failure: PqmcpError | undefined;
  private pendingHeader: { type: number; length: number } | undefined;

  /** Bytes received and not yet returned as records. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete record, or undefined until more bytes arrive. */
  next(): RawRecord | undefined {
    if (this.failure) throw this.failure;
    try {
      if (!this.pendingHeader) {
        if (this.buffered < HEADER_LENGTH) return undefined;
        const h = this.take(HEADER_LENGTH);
        const type = h[0]!;
        const length = (h[1]! << 16) | (h[2]! << 8) | h[3]!;
        checkHeader(type, length);
        this.pendingHeader = { type, length };
      }
      const { type, length } = this.pendingHeader;
      if (this.buffered < length) return undefined;
      this.pendingHeader = undefined;
      const header = new Uint8Array(HEADER_LENGTH);
      writeHeader(header, type, length);
      return { type, header, body: this.take(length) };
    } catch (err) {
      this.failure = err as PqmcpError;
      this.chunks = [];
      this.buffered = 0;
      throw err;
    }
  }

  /** Remove exactly n buffered bytes (n <= buffered); one copy at most. */
  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const avail = c.length - this.head;
      const k = Math.min(avail, n - filled);
      out.set(c.subarray(this.head, this.head + k), filled);
      filled += k;
      this.head += k;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.buffered -= n;
    return out;
  }
}
