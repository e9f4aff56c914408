/**
 * How a Session (session.ts) seals this side's records under its current sending key
 * (traffic-keys.ts): application messages (runs of small ones coalesced into multi-message
 * records, docs/protocol.md section 3.6; larger ones fragmented; the last record of each
 * message or batch padded per `applicationPadding`), protected handshake messages (a
 * Credential padded to its bucket: identity hiding by length) and alerts (plaintext while
 * there is no sending key). A KeyUpdate owed to the peer, or due at the interval, is sealed
 * first. Pure: records out, nothing written.
 */
import { CREDENTIAL_PADDING_BLOCK, InnerType, RecordType, eachPacked, encodeRecord, fragmentMessage, paddingFor } from '../record/index.js';
import type { InnerTypeId } from '../record/index.js';
import { HEADER_LENGTH, MAX_CONTENT, TAG_LENGTH } from '../record/constants.js';
import { MsgType, encodeAlert } from '../wire/messages.js';
import type { TrafficKeys } from './traffic-keys.js';

/** Where large application records are sealed into (a transport's reused buffers; Session.recordBuffers). */
export interface RecordBufferSource {
  take(n: number): Uint8Array | undefined;
}

/**
 * Seal `messages` in order into `out`: runs of small ones as multi-message records, the
 * others as fragments. The last record of each message (or batch) is padded per `padding`.
 */
export function sealMessages(keys: TrafficKeys, messages: readonly Uint8Array[], out: Uint8Array[], padding: number, buffers: RecordBufferSource | undefined): void {
  if (keys.owed) keys.send(false, out);
  // A multi-message content is encoded into the shared scratch and sealed (copied into
  // its record) before the next is encoded.
  eachPacked(messages, (packed) => {
    if ('multi' in packed) {
      keys.maybeUpdate(out);
      out.push(sealApplication(keys, InnerType.applicationMulti, packed.multi, padding, buffers));
      return;
    }
    if (packed.single.length <= MAX_CONTENT) {
      // One record, as fragmentMessage would cut it (without its list).
      keys.maybeUpdate(out);
      out.push(sealApplication(keys, InnerType.applicationFinal, packed.single, padding, buffers));
      return;
    }
    for (const frag of fragmentMessage(packed.single)) {
      keys.maybeUpdate(out);
      out.push(sealApplication(keys, frag.innerType, frag.content, padding, buffers));
    }
  }, multiScratch());
}

function sealApplication(keys: TrafficKeys, innerType: InnerTypeId, content: Uint8Array, block: number, buffers: RecordBufferSource | undefined): Uint8Array {
  const padding = innerType === InnerType.applicationFragment ? 0 : paddingFor(content.length, block);
  const out = buffers?.take(HEADER_LENGTH + content.length + 1 + padding + TAG_LENGTH);
  return keys.tx.cipher!.seal(innerType, content, padding, out);
}

/** A protected handshake message; a Credential is padded to its bucket (identity hiding by length). */
export function sealHandshake(keys: TrafficKeys, message: Uint8Array): Uint8Array {
  const padding = message[0] === MsgType.credential ? paddingFor(message.length, CREDENTIAL_PADDING_BLOCK) : 0;
  return keys.tx.cipher!.seal(InnerType.handshake, message, padding);
}

/** An alert record: protected once there is a sending key, else plaintext (unauthenticated). */
export function alertRecord(keys: TrafficKeys, code: number): Uint8Array {
  if (keys.tx.cipher) return keys.tx.cipher.seal(InnerType.alert, encodeAlert(code));
  return encodeRecord(RecordType.alert, encodeAlert(code));
}

/**
 * Where every Session encodes a multi-message content just before sealing it (one per
 * process, made on first use): sealing copies the content into the record at once, so
 * nothing keeps it, and JavaScript runs one seal at a time. It holds the last content
 * until the next overwrites it, as a freed buffer would until reused (application
 * plaintext is not wiped anywhere).
 */
let scratch: Uint8Array | undefined;
function multiScratch(): Uint8Array {
  return (scratch ??= new Uint8Array(MAX_CONTENT));
}
