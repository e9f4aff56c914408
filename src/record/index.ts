/** The record layer: framing, per-direction AEAD protection, message fragments. */
export * from './constants.js';
export { RecordDeframer, encodeRecord, checkHeader, type RawRecord } from './framing.js';
export { CipherState, type CipherStateOptions } from './cipher-state.js';
export { MessageAssembler, fragmentMessage, type Fragment } from './fragments.js';
