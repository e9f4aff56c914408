/**
 * Application messages over records: a message of n bytes travels as ceil(n / 65536)
 * fragments, inner type 0x04 for all but the last, 0x05 for the last (an empty message is
 * one empty 0x05 fragment).
 *
 * Sharp edges:
 * - Every non-final fragment carries exactly 65536 bytes; the assembler refuses any other
 *   (DecodeError). Without this rule an authenticated peer could send millions of empty
 *   fragments that never reach maxMessageSize but each cost the receiver memory.
 * - The assembler refuses a message as soon as its running size passes maxMessageSize
 *   (MessageTooLargeError), before buffering the fragment that crosses the limit.
 * - Fragments are views into the input; nothing is copied until the final concatenation.
 */
import { DecodeError, InvalidArgumentError, MessageTooLargeError } from '../errors.js';
import { InnerType, MAX_CONTENT } from './constants.js';

export interface Fragment {
  innerType: typeof InnerType.applicationFragment | typeof InnerType.applicationFinal;
  content: Uint8Array;
}

export function fragmentMessage(payload: Uint8Array): Fragment[] {
  const maxFragment = MAX_CONTENT;
  const out: Fragment[] = [];
  let offset = 0;
  do {
    const end = Math.min(offset + maxFragment, payload.length);
    out.push({ innerType: end === payload.length ? InnerType.applicationFinal : InnerType.applicationFragment, content: payload.subarray(offset, end) });
    offset = end;
  } while (offset < payload.length);
  return out;
}

export class MessageAssembler {
  private parts: Uint8Array[] = [];
  private size = 0;

  constructor(readonly maxMessageSize: number) {
    if (!(maxMessageSize > 0)) throw new InvalidArgumentError('maxMessageSize must be positive');
  }

  /** True while a message is partly received. */
  get pending(): boolean {
    return this.parts.length > 0;
  }

  /** Add one fragment; returns the whole message on its final fragment. */
  add(innerType: number, content: Uint8Array): Uint8Array | undefined {
    if (innerType === InnerType.applicationFragment && content.length !== MAX_CONTENT) {
      this.parts = [];
      this.size = 0;
      throw new DecodeError(`non-final application fragment of ${content.length} bytes (must be ${MAX_CONTENT})`);
    }
    const size = this.size + content.length;
    if (size > this.maxMessageSize) {
      this.parts = [];
      this.size = 0;
      throw new MessageTooLargeError(size, this.maxMessageSize);
    }
    if (innerType === InnerType.applicationFragment) {
      this.parts.push(content);
      this.size = size;
      return undefined;
    }
    if (this.parts.length === 0) return content;
    this.parts.push(content);
    const out = new Uint8Array(size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    this.parts = [];
    this.size = 0;
    return out;
  }
}
