/**
 * One direction's record protection: an AEAD key, a base IV and an implicit sequence number
 * (docs/protocol.md, section 3.2). A key change is a new CipherState.
 *
 * Sharp edges:
 * - A failed `open` throws BadRecordMacError (constant message) and does NOT advance the
 *   sequence; the caller must treat it as fatal. Replay, reorder, drop and injection all
 *   surface as this failure, because seq is never sent. A header that does not frame `body`
 *   (wrong type or length) is the same failure: the header is the AAD.
 * - The sequence advances exactly when a record is sealed, or opens with a valid tag (even
 *   if its inner plaintext is then refused: that error is fatal too).
 * - Sealing or opening at seq >= sequenceLimit throws SequenceExhaustedError. The session
 *   updates keys long before (every 2^22 records by default); 2^48 is the hard ceiling.
 * - Content above 65536 bytes on `seal` is a local programming error (InvalidArgumentError,
 *   no alert); on `open` a body above 65553 bytes is the peer's RecordOverflowError.
 * - `wipe()` zeroes this object's copies of key and IV and drops the AEAD; the backend's
 *   internal key copy (a KeyObject, noble's closure) is left to the garbage collector.
 *   A wiped state throws ClosedError.
 * - Timing depends only on seq, lengths and the (public) header, and, after
 *   authentication, on the amount of padding (the zeros are scanned from the end, as in
 *   TLS 1.3); the inner type is read after authentication, where its validity is revealed
 *   by the outcome anyway.
 * - Padding (padding.ts) is zeros after the inner type; `open` strips any amount of it. An
 *   inner plaintext that is all zeros has no type: UnexpectedMessageError.
 * - The nonce and header buffers are reused between records: backends must consume them
 *   synchronously (both do; the Aead interface is synchronous).
 */
import { BadRecordMacError, ClosedError, DecodeError, InternalError, InvalidArgumentError, RecordOverflowError, SequenceExhaustedError, UnexpectedMessageError } from '../errors.js';
import type { Aead, AeadAlgorithm, CryptoBackend } from '../crypto/types.js';
import { DEFAULT_SEQUENCE_LIMIT, HEADER_LENGTH, InnerType, IV_LENGTH, KEY_LENGTH, MAX_CONTENT, MAX_PROTECTED_BODY, MIN_PROTECTED_BODY, RecordType, TAG_LENGTH, type InnerTypeId } from './constants.js';
import { writeHeader } from './framing.js';
import { writeNonce } from './_nonce.js';
import { copyBytes } from '../bytes.js';

/** The one-byte trailer (inner content type) of each unpadded inner plaintext, by type. */
const INNER_TYPE_BYTE: readonly Uint8Array[] = Array.from({ length: InnerType.applicationMulti + 1 }, (_, t) => Uint8Array.of(t));

/** The trailer of a padded inner plaintext: the type byte, then `padding` zeros. */
function paddedTrailer(innerType: InnerTypeId, padding: number): Uint8Array {
  if (padding === 0) return INNER_TYPE_BYTE[innerType]!;
  const trailer = new Uint8Array(1 + padding);
  trailer[0] = innerType;
  return trailer;
}

export interface CipherStateOptions {
  /** No record is sealed or opened at seq >= this (an integer in [1, 2^48]; default 2^48). */
  sequenceLimit?: number;
}

export interface OpenedRecord {
  innerType: InnerTypeId;
  /** A view into the decrypted inner plaintext. */
  content: Uint8Array;
}

export class CipherState {
  private aead: Aead | undefined;
  private readonly key: Uint8Array;
  private readonly iv: Uint8Array;
  private readonly nonce = new Uint8Array(IV_LENGTH);
  /** The header of the record being sealed (reused, like the nonce). */
  private readonly header = new Uint8Array(HEADER_LENGTH);
  private readonly limit: number;
  private seq = 0;

  constructor(backend: CryptoBackend, algorithm: AeadAlgorithm, key: Uint8Array, iv: Uint8Array, options: CipherStateOptions = {}) {
    if (key.length !== KEY_LENGTH) throw new InvalidArgumentError(`record key must be ${KEY_LENGTH} bytes, got ${key.length}`);
    if (iv.length !== IV_LENGTH) throw new InvalidArgumentError(`record IV must be ${IV_LENGTH} bytes, got ${iv.length}`);
    const limit = options.sequenceLimit ?? DEFAULT_SEQUENCE_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > DEFAULT_SEQUENCE_LIMIT) throw new InvalidArgumentError('sequenceLimit must be an integer from 1 to 2^48');
    this.limit = limit;
    this.key = copyBytes(key);
    this.iv = copyBytes(iv);
    this.aead = backend.aead(algorithm, this.key);
  }

  /** Records sealed (or opened) under this key so far: the seq of the next record. */
  get sequence(): number {
    return this.seq;
  }

  /**
   * Protect `content` as one record and return it encoded, header included.
   *
   *   inner = content || inner_type u8 || zeros[padding]     |inner| <= 65537
   *   nonce = iv XOR (0x00000000 || seq u64 big-endian)
   *   aad   = 0x17 || length u24                             the record header
   *   Record = aad || AEAD-Seal(key, nonce, inner, aad)      length = |inner| + 16
   *
   * One record buffer (the backend's `sealFramed`): `out` when given (exactly the
   * record's length, HEADER_LENGTH + |content| + 1 + padding + TAG_LENGTH), else a new one,
   * holds the header and the inner plaintext, which is encrypted in place; the AEAD output
   * is copied once.
   */
  seal(innerType: InnerTypeId, content: Uint8Array, padding = 0, out?: Uint8Array): Uint8Array {
    const aead = this.ready();
    if (!(innerType >= InnerType.handshake && innerType <= InnerType.applicationMulti)) throw new InvalidArgumentError(`unknown inner content type ${innerType}`);
    if (content.length > MAX_CONTENT) throw new InvalidArgumentError(`record content of ${content.length} bytes exceeds ${MAX_CONTENT}`);
    if (!(Number.isSafeInteger(padding) && padding >= 0 && content.length + 1 + padding <= MAX_CONTENT + 1)) {
      throw new InvalidArgumentError(`padding of ${padding} bytes would make the inner plaintext exceed ${MAX_CONTENT + 1} bytes`);
    }
    const bodyLength = content.length + 1 + padding + TAG_LENGTH;
    writeHeader(this.header, RecordType.protected, bodyLength);
    const record = aead.sealFramed(writeNonce(this.nonce, this.iv, this.seq), this.header, content, paddedTrailer(innerType, padding), out);
    if (record.length !== HEADER_LENGTH + bodyLength) throw new InternalError('AEAD returned a body of the wrong length');
    this.seq++;
    return record;
  }

  /** Authenticate and decrypt the next record from its header (as received) and body. */
  open(header: Uint8Array, body: Uint8Array): OpenedRecord {
    const aead = this.ready();
    if (header.length !== HEADER_LENGTH) throw new InvalidArgumentError(`record header must be ${HEADER_LENGTH} bytes`);
    if (body.length > MAX_PROTECTED_BODY) throw new RecordOverflowError(`protected record of ${body.length} bytes exceeds ${MAX_PROTECTED_BODY}`);
    if (body.length < MIN_PROTECTED_BODY) throw new DecodeError(`protected record of ${body.length} bytes is shorter than ${MIN_PROTECTED_BODY}`);
    if (header[0] !== RecordType.protected || ((header[1]! << 16) | (header[2]! << 8) | header[3]!) !== body.length) throw new BadRecordMacError();
    const inner = aead.open(writeNonce(this.nonce, this.iv, this.seq), body, header);
    if (inner === undefined) throw new BadRecordMacError();
    this.seq++;
    // The content type is the last non-zero byte; the zeros after it are padding.
    let last = inner.length - 1;
    while (last >= 0 && inner[last] === 0) last--;
    if (last < 0) throw new UnexpectedMessageError('inner plaintext has no content type (all zero)');
    const innerType = inner[last]!;
    if (!(innerType >= InnerType.handshake && innerType <= InnerType.applicationMulti)) throw new UnexpectedMessageError(`unknown inner content type ${innerType}`);
    return { innerType: innerType as InnerTypeId, content: inner.subarray(0, last) };
  }

  /** Zero the key and IV copies held here; the state is unusable afterwards. */
  wipe(): void {
    this.key.fill(0);
    this.iv.fill(0);
    this.nonce.fill(0);
    this.aead = undefined;
  }

  /** The AEAD, if this key may protect one more record. */
  private ready(): Aead {
    if (this.aead === undefined) throw new ClosedError('record keys were wiped');
    if (this.seq >= this.limit) throw new SequenceExhaustedError();
    return this.aead;
  }
}
