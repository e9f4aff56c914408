/**
 * Multi-message records (docs/protocol.md, section 3.6): several whole application messages
 * in the content of one protected record of inner type 0x06, so that everything a sender
 * produces in one turn costs one AEAD call, one record header and one tag.
 *
 *   content  = entry[count]                               count 2..MAX_MESSAGES_PER_RECORD
 *   entry    = length u16 (big-endian, 1..65535) || message[length]
 *   |content| = sum(2 + length) <= 65536                   consumed exactly
 *
 * Sharp edges:
 * - The receiver refuses (DecodeError, alert decode_error) a length of zero, a length that
 *   runs past the content, fewer than two or more than MAX_MESSAGES_PER_RECORD entries, and
 *   trailing bytes: one message has exactly one encoding (a single message, or an empty one,
 *   is a 0x05 record), and nothing is skipped silently.
 * - Padding is the record's (zeros after the inner type, stripped by CipherState.open
 *   before this code sees the content): it never appears between or after entries.
 * - `decodeMessages` returns views into the content, never copies; a message above the
 *   receiver's maxMessageSize is MessageTooLargeError, as for a fragmented one.
 * - `MessagePacker` decides what a sender coalesces: messages of 1..MAX_COALESCED bytes,
 *   in order, while they fit in one record's content. Larger or empty messages, and a batch
 *   that ends up with a single message, go out as ordinary 0x05/0x04 records.
 */
import { uninitialised } from '../bytes.js';
import { DecodeError, MessageTooLargeError } from '../errors.js';
import { MAX_CONTENT } from './constants.js';

/** Bytes of the length prefix in front of each message. */
export const ENTRY_HEADER = 2;
/** Most messages in one multi-message record (bounds the receiver's per-record work). */
export const MAX_MESSAGES_PER_RECORD = 1024;
/**
 * Largest message a sender coalesces with others. Above it the copy into a shared record
 * costs about what the saved AEAD call does, so the message keeps records of its own.
 */
export const MAX_COALESCED = 16 * 1024;

/**
 * Encode `messages` (2..MAX_MESSAGES_PER_RECORD, each 1..65535 bytes, fitting in 65536) as
 * one content of `size` bytes: into the start of `scratch` when given, else a new buffer.
 */
export function encodeMessages(messages: readonly Uint8Array[], size: number, scratch?: Uint8Array): Uint8Array {
  const out = scratch ? scratch.subarray(0, size) : uninitialised(size); // every byte is written below
  let o = 0;
  for (const m of messages) {
    out[o] = m.length >>> 8;
    out[o + 1] = m.length & 0xff;
    out.set(m, o + ENTRY_HEADER);
    o += ENTRY_HEADER + m.length;
  }
  return out;
}

/** The messages of a received 0x06 content, as views; throws the typed error a receiver alerts with. */
export function decodeMessages(content: Uint8Array, maxMessageSize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let o = 0;
  while (o < content.length) {
    if (out.length === MAX_MESSAGES_PER_RECORD) throw new DecodeError(`multi-message record carries more than ${MAX_MESSAGES_PER_RECORD} messages`);
    if (content.length - o < ENTRY_HEADER) throw new DecodeError('multi-message record ends inside a length prefix');
    const length = (content[o]! << 8) | content[o + 1]!;
    o += ENTRY_HEADER;
    if (length === 0) throw new DecodeError('multi-message record carries an empty message');
    if (length > content.length - o) throw new DecodeError(`multi-message record entry of ${length} bytes runs past the record (${content.length - o} left)`);
    if (length > maxMessageSize) throw new MessageTooLargeError(length, maxMessageSize);
    out.push(content.subarray(o, o + length));
    o += length;
  }
  if (out.length < 2) throw new DecodeError(`multi-message record carries ${out.length} message${out.length === 1 ? '' : 's'} (at least 2)`);
  return out;
}

/** One record's worth of output from MessagePacker: a whole message alone, or several packed. */
export type Packed = { single: Uint8Array } | { multi: Uint8Array };

/**
 * Cuts a sequence of messages, in order, into records: runs of small messages become
 * multi-message contents, everything else stays a message of its own.
 */
export function packMessages(messages: readonly Uint8Array[]): Packed[] {
  const out: Packed[] = [];
  eachPacked(messages, (p) => void out.push(p));
  return out;
}

/**
 * packMessages, one record's worth at a time, in order: `emit` is called for each. With
 * `scratch` (at least MAX_CONTENT bytes), a multi-message content is encoded into it and is
 * valid only until `emit` returns (a sealer copies it into the record): no new buffer per
 * record.
 */
export function eachPacked(messages: readonly Uint8Array[], emit: (packed: Packed) => void, scratch?: Uint8Array): void {
  let start = 0; // messages[start, i) is the current run
  let size = 0;
  for (let i = 0; i <= messages.length; i++) {
    const m = messages[i];
    const alone = m !== undefined && (m.length === 0 || m.length > MAX_COALESCED);
    // The run ends here: at the end, before a message that goes alone, or when full.
    if (m === undefined || alone || size + ENTRY_HEADER + m.length > MAX_CONTENT || i - start === MAX_MESSAGES_PER_RECORD) {
      if (i - start === 1) emit({ single: messages[start]! });
      else if (i - start > 1) emit({ multi: encodeMessages(messages.slice(start, i), size, scratch) });
      start = alone ? i + 1 : i;
      size = 0;
      if (alone) emit({ single: m });
      if (alone || m === undefined) continue;
    }
    size += ENTRY_HEADER + m.length;
  }
}
