/**
 * Record framing over a byte stream (docs/protocol.md, section 3.1).
 *
 * Sharp edges:
 * - The deframer judges a header the moment its 4 bytes are present (in `push` when they
 *   complete the header of the current record, else in the `next` that reaches it): an
 *   unknown type, an oversize or an undersize length throws before any of the body is
 *   awaited. Nothing is ever allocated from a declared length; a body is copied (once) only
 *   when it is complete and spans chunks, and is otherwise returned as a view.
 * - Returned `header` and `body` may be views into pushed chunks: do not reuse a chunk's
 *   memory after pushing it.
 * - Chunks are kept as a list with a read index, so many tiny chunks cost linear time.
 * - After it throws, the deframer is dead: every later `push` or `next` throws the same
 *   error, and everything buffered is dropped.
 * - `encodeRecord` is for local output: a body its own deframer would refuse is a
 *   programming error (InvalidArgumentError), not a peer-facing alert.
 */
import { DecodeError, InvalidArgumentError, RecordOverflowError, UnexpectedMessageError, toPqmcpError, type PqmcpError } from '../errors.js';
import { ALERT_BODY_LENGTH, HEADER_LENGTH, MAX_PLAINTEXT_HANDSHAKE, MAX_PROTECTED_BODY, MIN_PROTECTED_BODY, RecordType, type RecordTypeId } from './constants.js';

/** Write `type u8 || length u24` (big-endian) at the start of `out`. */
export function writeHeader(out: Uint8Array, type: number, length: number): void {
  out[0] = type;
  out[1] = length >>> 16;
  out[2] = (length >>> 8) & 0xff;
  out[3] = length & 0xff;
}

/**
 * Check a received header; throws the typed error a receiver raises (and alerts with).
 *
 *   0x16 handshake  1..8192          0x15 alert  exactly 2          0x17 protected  17..65553
 *
 * Anything else: UnexpectedMessageError. Above the maximum: RecordOverflowError. Below the
 * minimum (zero included): DecodeError.
 */
export function checkHeader(type: number, length: number): asserts type is RecordTypeId {
  let min: number;
  let max: number;
  if (type === RecordType.protected) [min, max] = [MIN_PROTECTED_BODY, MAX_PROTECTED_BODY];
  else if (type === RecordType.handshake) [min, max] = [1, MAX_PLAINTEXT_HANDSHAKE];
  else if (type === RecordType.alert) [min, max] = [ALERT_BODY_LENGTH, ALERT_BODY_LENGTH];
  else throw new UnexpectedMessageError(`unknown record type 0x${type.toString(16).padStart(2, '0')}`);
  if (length > max) throw new RecordOverflowError(`record of type 0x${type.toString(16)} declares ${length} bytes, above the maximum of ${max}`);
  if (length < min) throw new DecodeError(`record of type 0x${type.toString(16)} declares ${length} bytes, below the minimum of ${min}`);
}

/**
 * Encode one record.
 *
 *   Record := type u8 | length u24 (big-endian) | body[length]
 *
 *   type 0x16 HANDSHAKE  plaintext ClientHello / ServerHello       body length 1..8192
 *   type 0x15 ALERT      plaintext, before keys: body = code u16    body length exactly 2
 *   type 0x17 PROTECTED  AEAD ciphertext || tag                     body length 17..65553
 *
 * Protected records are normally built by CipherState.seal, which writes the header into its
 * own output; this function copies `body` once. Throws InvalidArgumentError for a type or
 * length the receiver would refuse.
 */
export function encodeRecord(type: number, body: Uint8Array): Uint8Array {
  try {
    checkHeader(type, body.length);
  } catch (err) {
    throw new InvalidArgumentError(`cannot encode record: ${(err as Error).message}`);
  }
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  writeHeader(out, type, body.length);
  out.set(body, HEADER_LENGTH);
  return out;
}

/** One framed record, as received. */
export interface RawRecord {
  type: RecordTypeId;
  /** The 4 header bytes exactly as received (the AAD of a protected record). */
  header: Uint8Array;
  body: Uint8Array;
}

/** Splits a byte stream, chunked in any way, into records. */
export class RecordDeframer {
  /** Pushed chunks; those before `first` are consumed (and replaced by EMPTY). */
  private chunks: Uint8Array[] = [];
  private first = 0;
  /** Bytes of chunks[first] already consumed. */
  private offset = 0;
  /** Unconsumed bytes in `chunks`. */
  private buffered = 0;
  /** The current record's header once checked; its type and body length. */
  private header: Uint8Array | undefined;
  private type: RecordTypeId = RecordType.protected;
  private length = 0;
  private failure: PqmcpError | undefined;

  /** Bytes received and not yet returned inside a record (a checked header included). */
  get bufferedBytes(): number {
    return this.buffered + (this.header ? HEADER_LENGTH : 0);
  }

  /** Add received bytes. Throws (and stays failed) if they complete an invalid header. */
  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.header === undefined && this.buffered >= HEADER_LENGTH) {
      try {
        this.readHeader();
      } catch (err) {
        throw this.fail(err);
      }
    }
  }

  /** The next complete record, or undefined until more bytes arrive. */
  next(): RawRecord | undefined {
    if (this.failure) throw this.failure;
    try {
      if (this.header === undefined) {
        if (this.buffered < HEADER_LENGTH) return undefined;
        this.readHeader();
      }
      if (this.buffered < this.length) return undefined;
      const record: RawRecord = { type: this.type, header: this.header!, body: this.take(this.length) };
      this.header = undefined;
      return record;
    } catch (err) {
      throw this.fail(err);
    }
  }

  private readHeader(): void {
    const h = this.take(HEADER_LENGTH);
    const type = h[0]!;
    const length = (h[1]! << 16) | (h[2]! << 8) | h[3]!;
    checkHeader(type, length);
    this.header = h;
    this.type = type;
    this.length = length;
  }

  /** Remove n buffered bytes (n <= buffered): a view if they sit in one chunk, else one copy. */
  private take(n: number): Uint8Array {
    const head = this.chunks[this.first]!;
    let out: Uint8Array;
    if (head.length - this.offset >= n) {
      out = head.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === head.length) this.dropHead();
    } else {
      out = new Uint8Array(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[this.first]!;
        const k = Math.min(c.length - this.offset, n - filled);
        out.set(c.subarray(this.offset, this.offset + k), filled);
        filled += k;
        this.offset += k;
        if (this.offset === c.length) this.dropHead();
      }
    }
    this.buffered -= n;
    return out;
  }

  /** Retire chunks[first]; compact the list once half of it is retired (amortized O(1)). */
  private dropHead(): void {
    this.chunks[this.first++] = EMPTY;
    this.offset = 0;
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first >= 64 && this.first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }

  private fail(err: unknown): PqmcpError {
    this.failure = toPqmcpError(err);
    this.chunks = [];
    this.first = this.offset = this.buffered = 0;
    this.header = undefined;
    return this.failure;
  }
}

const EMPTY = new Uint8Array(0);
