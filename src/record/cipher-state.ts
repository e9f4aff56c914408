/**
 * One direction's record protection: an AEAD key, a base IV and an implicit sequence
 * number (docs/protocol.md, section 3.2).
 *
 *   inner_plaintext = content || inner_type u8
 *   nonce           = iv XOR (0x00000000 || seq u64)
 *   aad             = type 0x17 || length u24  (the record header)
 *   body            = AEAD-Seal(key, nonce, inner_plaintext, aad)
 *
 * Sharp edges:
 * - `open` failing (BadRecordMacError, constant message) does not advance the sequence; the
 *   caller must treat it as fatal. There is no retry: replay, reorder and drops all surface
 *   as this failure.
 * - Sealing or opening at seq >= sequenceLimit throws SequenceExhaustedError; the session
 *   updates keys long before (2^24 records by default, the limit is 2^48).
 * - A key change is a new CipherState; `wipe()` zeroes this one's copies of key and IV.
 */
import { BadRecordMacError, DecodeError, InvalidArgumentError, RecordOverflowError, SequenceExhaustedError, UnexpectedMessageError } from '../errors.js';
import type { Aead, AeadAlgorithm, CryptoBackend } from '../crypto/types.js';
import { DEFAULT_SEQUENCE_LIMIT, HEADER_LENGTH, InnerType, MAX_CONTENT, RecordType, TAG_LENGTH, type InnerTypeId } from './constants.js';
import { writeHeader } from './framing.js';

export interface CipherStateOptions {
  /** Records this key may protect (default 2^48). */
  sequenceLimit?: number;
}

export class CipherState {
  private readonly aead: Aead;
  private readonly key: Uint8Array;
  private readonly iv: Uint8Array;
  private readonly nonce = new Uint8Array(12);
  private readonly limit: number;
  private seq = 0;

  constructor(backend: CryptoBackend, algorithm: AeadAlgorithm, key: Uint8Array, iv: Uint8Array, options: CipherStateOptions = {}) {
    if (key.length !== 32) throw new InvalidArgumentError('record key must be 32 bytes');
    if (iv.length !== 12) throw new InvalidArgumentError('record IV must be 12 bytes');
    this.key = key.slice();
    this.iv = iv.slice();
    this.aead = backend.aead(algorithm, this.key);
    this.limit = options.sequenceLimit ?? DEFAULT_SEQUENCE_LIMIT;
    if (!Number.isSafeInteger(this.limit) || this.limit < 1 || this.limit > DEFAULT_SEQUENCE_LIMIT) {
      throw new InvalidArgumentError(`sequenceLimit must be an integer in [1, 2^48]`);
    }
  }

  /** Records processed under this key. */
  get sequence(): number {
    return this.seq;
  }

  /** Protect `content` as one record; returns header || body. */
  seal(innerType: InnerTypeId, content: Uint8Array): Uint8Array {
    if (content.length > MAX_CONTENT) throw new RecordOverflowError(`record content of ${content.length} bytes exceeds ${MAX_CONTENT}`);
    const inner = new Uint8Array(content.length + 1);
    inner.set(content);
    inner[content.length] = innerType;
    const header = new Uint8Array(HEADER_LENGTH);
    writeHeader(header, RecordType.protected, inner.length + TAG_LENGTH);
    const body = this.aead.seal(this.nextNonce(), inner, header);
    const out = new Uint8Array(HEADER_LENGTH + body.length);
    out.set(header);
    out.set(body, HEADER_LENGTH);
    return out;
  }

  /** Authenticate and decrypt the next record (header as received, body). */
  open(header: Uint8Array, body: Uint8Array): { innerType: InnerTypeId; content: Uint8Array } {
    const nonce = this.peekNonce();
    const inner = this.aead.open(nonce, body, header);
    if (!inner) throw new BadRecordMacError();
    this.seq++;
    if (inner.length === 0) throw new DecodeError('empty inner plaintext');
    const innerType = inner[inner.length - 1]!;
    if (innerType < InnerType.handshake || innerType > InnerType.applicationFinal) {
      throw new UnexpectedMessageError(`unknown inner content type ${innerType}`);
    }
    return { innerType: innerType as InnerTypeId, content: inner.subarray(0, inner.length - 1) };
  }

  wipe(): void {
    this.key.fill(0);
    this.iv.fill(0);
    this.nonce.fill(0);
  }

  private nextNonce(): Uint8Array {
    const n = this.peekNonce();
    this.seq++;
    return n;
  }

  /** iv XOR (0^32 || seq u64), for the current seq; refuses an exhausted sequence. */
  private peekNonce(): Uint8Array {
    if (this.seq >= this.limit) throw new SequenceExhaustedError();
    const hi = Math.floor(this.seq / 0x1_0000_0000);
    const lo = this.seq >>> 0;
    const n = this.nonce;
    n.set(this.iv);
    n[4]! ^= hi >>> 24;
    n[5]! ^= (hi >>> 16) & 0xff;
    n[6]! ^= (hi >>> 8) & 0xff;
    n[7]! ^= hi & 0xff;
    n[8]! ^= lo >>> 24;
    n[9]! ^= (lo >>> 16) & 0xff;
    n[10]! ^= (lo >>> 8) & 0xff;
    n[11]! ^= lo & 0xff;
    return n.slice();
  }
}
