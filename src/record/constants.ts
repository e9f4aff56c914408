/** Record-layer constants (docs/protocol.md, section 3). */

/** Outer record types. */
export const RecordType = {
  alert: 0x15,
  handshake: 0x16,
  protected: 0x17,
} as const;
export type RecordTypeId = (typeof RecordType)[keyof typeof RecordType];

/** Inner content types of a protected record (last byte of the inner plaintext). */
export const InnerType = {
  handshake: 0x01,
  alert: 0x02,
  keyUpdate: 0x03,
  applicationFragment: 0x04,
  applicationFinal: 0x05,
} as const;
export type InnerTypeId = (typeof InnerType)[keyof typeof InnerType];

export const HEADER_LENGTH = 4;
export const TAG_LENGTH = 16;
/** Largest content of one protected record. */
export const MAX_CONTENT = 65536;
/** Largest protected body: content, the inner type byte and the AEAD tag. */
export const MAX_PROTECTED_BODY = MAX_CONTENT + 1 + TAG_LENGTH;
/** Smallest protected body: an inner type byte and the tag. */
export const MIN_PROTECTED_BODY = 1 + TAG_LENGTH;
export const MAX_PLAINTEXT_HANDSHAKE = 8192;
export const ALERT_BODY_LENGTH = 2;
export const DEFAULT_SEQUENCE_LIMIT = 2 ** 48;
