/**
 * Application messages over records (docs/protocol.md, section 3.2): a message of n bytes
 * travels as max(1, ceil(n / 65536)) fragments, inner type 0x04 for all but the last and
 * 0x05 for the last; an empty message is one empty 0x05 fragment.
 *
 * Sharp edges:
 * - Every 0x04 fragment carries exactly 65536 bytes, and the assembler refuses any other
 *   (DecodeError): otherwise an authenticated peer could send endless empty fragments that
 *   never reach maxMessageSize but each cost the receiver memory. Hence no smaller
 *   fragment size can be chosen.
 * - `fragmentMessage` returns views into the payload, never copies: the caller must not
 *   modify the payload until the fragments are sealed.
 * - The assembler throws MessageTooLargeError as soon as the running size would exceed
 *   maxMessageSize, before it keeps the fragment that crosses the limit, so it never holds
 *   more than maxMessageSize bytes. After any error it stays failed (the rest of that
 *   message would otherwise be taken for a new one): every later `add` throws the same error.
 * - It keeps views of the fragments it is given; a single-fragment message is returned as
 *   that same view, a multi-fragment one is concatenated once, on its final fragment.
 */
import { uninitialised } from '../bytes.js';
import { DecodeError, InvalidArgumentError, MessageTooLargeError, type PqmcpError } from '../errors.js';
import { DEFAULT_MAX_MESSAGE_SIZE, InnerType, MAX_CONTENT } from './constants.js';

export type FragmentType = typeof InnerType.applicationFragment | typeof InnerType.applicationFinal;

export interface Fragment {
  innerType: FragmentType;
  content: Uint8Array;
}

/** Split `payload` into 65536-byte fragments (views into it), the last one shorter or empty. */
export function fragmentMessage(payload: Uint8Array): Fragment[] {
  const out: Fragment[] = [];
  let offset = 0;
  do {
    const end = Math.min(offset + MAX_CONTENT, payload.length);
    out.push({ innerType: end === payload.length ? InnerType.applicationFinal : InnerType.applicationFragment, content: payload.subarray(offset, end) });
    offset = end;
  } while (offset < payload.length);
  return out;
}

/** Reassembles fragments into messages, bounded by maxMessageSize. */
export class MessageAssembler {
  private parts: Uint8Array[] = [];
  private size = 0;
  private failure: PqmcpError | undefined;

  constructor(readonly maxMessageSize: number = DEFAULT_MAX_MESSAGE_SIZE) {
    if (!Number.isSafeInteger(maxMessageSize) || maxMessageSize < 0) throw new InvalidArgumentError('maxMessageSize must be a non-negative integer');
  }

  /** True while a message is partly received. */
  get pending(): boolean {
    return this.parts.length > 0;
  }

  /** Bytes held for the message partly received. */
  get pendingBytes(): number {
    return this.size;
  }

  /** Drop the partial message (the session ended): its memory is freed at once. */
  discard(): void {
    this.parts = [];
    this.size = 0;
  }

  /** Add one fragment (inner type 0x04 or 0x05); returns the whole message on its final fragment. */
  add(innerType: number, content: Uint8Array): Uint8Array | undefined {
    if (this.failure) throw this.failure;
    if (innerType !== InnerType.applicationFragment && innerType !== InnerType.applicationFinal) throw new InvalidArgumentError(`inner type ${innerType} is not an application fragment`);
    if (innerType === InnerType.applicationFragment && content.length !== MAX_CONTENT) {
      throw this.fail(new DecodeError(`non-final application fragment of ${content.length} bytes (must be ${MAX_CONTENT})`));
    }
    const size = this.size + content.length;
    if (size > this.maxMessageSize) throw this.fail(new MessageTooLargeError(size, this.maxMessageSize));
    if (innerType === InnerType.applicationFragment) {
      this.parts.push(content);
      this.size = size;
      return undefined;
    }
    if (this.parts.length === 0) return content;
    const out = uninitialised(size); // every byte is written below
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    out.set(content, o);
    this.parts = [];
    this.size = 0;
    return out;
  }

  private fail(error: PqmcpError): PqmcpError {
    this.parts = [];
    this.size = 0;
    return (this.failure = error);
  }
}
