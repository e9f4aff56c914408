/** Record-layer constants (docs/protocol.md, sections 3 and 8). */

/** Outer record types (the first header byte). */
export const RecordType = {
  alert: 0x15,
  handshake: 0x16,
  protected: 0x17,
} as const;
export type RecordTypeId = (typeof RecordType)[keyof typeof RecordType];

/** Inner content types of a protected record (the last byte of the inner plaintext). */
export const InnerType = {
  handshake: 0x01,
  alert: 0x02,
  keyUpdate: 0x03,
  /** Application message fragment; more fragments of the same message follow. */
  applicationFragment: 0x04,
  /** Last (or only) fragment of an application message. */
  applicationFinal: 0x05,
  /** Several whole application messages, each length-prefixed (multi.ts; docs/protocol.md section 3.6). */
  applicationMulti: 0x06,
} as const;
export type InnerTypeId = (typeof InnerType)[keyof typeof InnerType];

/** type u8 || length u24. */
export const HEADER_LENGTH = 4;
export const TAG_LENGTH = 16;
export const KEY_LENGTH = 32;
export const IV_LENGTH = 12;

/** Largest content of one protected record. */
export const MAX_CONTENT = 65536;
/** Largest protected body: content, the inner type byte and the AEAD tag (65553). */
export const MAX_PROTECTED_BODY = MAX_CONTENT + 1 + TAG_LENGTH;
/** Smallest protected body: the inner type byte and the tag (17). */
export const MIN_PROTECTED_BODY = 1 + TAG_LENGTH;
/** Largest plaintext handshake record body (ClientHello / ServerHello). */
export const MAX_PLAINTEXT_HANDSHAKE = 8192;
/** A plaintext alert body is exactly its u16 code. */
export const ALERT_BODY_LENGTH = 2;

/** Hard per-key record limit: no record is sealed or opened at seq >= 2^48. */
export const DEFAULT_SEQUENCE_LIMIT = 2 ** 48;
/** Default bound on one reassembled application message (64 MiB). */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
