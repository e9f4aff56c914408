/** The record layer: framing, per-direction AEAD protection, message fragments. Pure: no I/O, no timers. */
export * from './constants.js';
export { RecordDeframer, checkHeader, encodeRecord, type RawRecord } from './framing.js';
export { CipherState, type CipherStateOptions, type OpenedRecord } from './cipher-state.js';
export { MessageAssembler, fragmentMessage, type Fragment, type FragmentType } from './fragments.js';
export { CREDENTIAL_PADDING_BLOCK, MAX_INNER_PLAINTEXT, checkPaddingBlock, paddingFor } from './padding.js';
export { MAX_COALESCED, MAX_MESSAGES_PER_RECORD, decodeMessages, eachPacked, encodeMessages, packMessages, type Packed } from './multi.js';
