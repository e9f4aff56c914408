/**
 * What a Session (session.ts) is configured with and what it hands back: its options, its
 * events and output, its states, the limits' defaults, and the small rules on them (the
 * key-update interval in force for a suite, a suite's AEAD, the per-call caps' check).
 * session.ts re-exports all of it: import from there.
 */
import { InvalidArgumentError, type PqmcpError } from '../errors.js';
import type { ClientTicket } from '../resumption/client-tickets.js';
import type { CryptoRequest, HandshakeConfig, HandshakeResult } from '../handshake/types.js';
import { Suite } from '../wire/messages.js';
import type { AeadAlgorithm } from '../crypto/types.js';
import { utf8Encode } from '../bytes.js';
import type { KeyUpdateRate } from './key-update-budget.js';

export interface SessionOptions extends HandshakeConfig {
  /** Largest application message accepted or sent, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /**
   * Records sent under one key before an automatic key update. Default 2^22. Must be below
   * sequenceLimit. With AES-256-GCM it is clamped to 2^22 whatever is configured (the AEAD's
   * data limit, docs/protocol.md section 3.4).
   */
  keyUpdateInterval?: number;
  /** Hard per-key record limit (tests force it small). Default 2^48. */
  sequenceLimit?: number;
  /**
   * Pad the last record of each application message so that its inner plaintext is a
   * multiple of this many bytes (docs/protocol.md, section 3.2): an observer then learns
   * message sizes only to this granularity. 0 (default): no application padding. Credential
   * records are always padded (to 1024).
   */
  applicationPadding?: number;
  /**
   * KeyUpdates processed per receive()/resume()/drain() call; past it, `stalled` is true
   * and the rest waits for drain(). Default: no cap.
   */
  maxKeyUpdatesPerCall?: number;
  /**
   * Application messages emitted per receive()/resume()/drain() call; past it, `stalled` is
   * true and the rest waits for drain(). Default: no cap.
   */
  maxMessagesPerCall?: number;
  /**
   * Ration the peer's KeyUpdates beyond its automatic ones (key-update-budget.ts); past
   * it, `stalled` is true until `keyUpdateWaitMs` has passed. Default: no ration.
   */
  keyUpdateRate?: KeyUpdateRate;
}

export type SessionEvent =
  | { type: 'handshake'; result: HandshakeResult }
  /** Client: the server sent a resumption ticket (keep it for a later connection). None for one too long to offer in a ClientHello like this session's. */
  | { type: 'ticket'; ticket: ClientTicket }
  | { type: 'message'; data: Uint8Array }
  | { type: 'close' }
  | { type: 'error'; error: PqmcpError }
  /** deferCrypto: compute this, then call resume() with the result (or abort()). */
  | { type: 'compute'; request: CryptoRequest };

export interface SessionOutput {
  /** Bytes to write to the peer, in order. */
  send: Uint8Array[];
  events: SessionEvent[];
}

export type SessionState = 'handshaking' | 'established' | 'closed' | 'failed';

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
/**
 * 2^22 records of at most 2^16 bytes is 2^38 bytes per key: the AES-GCM budget TLS 1.3 uses
 * (2^24.5 records of 2^14 bytes), and far inside ChaCha20-Poly1305's.
 */
export const DEFAULT_KEY_UPDATE_INTERVAL = 2 ** 22;
/** KeyUpdates accepted from the peer with no application data in between (BoringSSL's kMaxKeyUpdates). */
export const MAX_KEY_UPDATES_IN_A_ROW = 32;
/** The most records one AES-256-GCM key may protect here (2^22 x 2^16 bytes = 2^38 bytes). */
export const AES_GCM_MAX_KEY_UPDATE_INTERVAL = 2 ** 22;

/** The key-update interval in force for `suite`: the configured one, clamped for AES-GCM. */
export function effectiveKeyUpdateInterval(suite: number, configured: number): number {
  return suite === Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 ? Math.min(configured, AES_GCM_MAX_KEY_UPDATE_INTERVAL) : configured;
}

/** A per-call cap option: a positive integer, or unset for none (Infinity). */
export function perCallCap(value: number | undefined, name: string): number {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return value;
}

/** The AEAD of a suite. */
export function aeadFor(suite: number): AeadAlgorithm {
  return suite === Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 ? 'aes-256-gcm' : 'chacha20-poly1305';
}

/** Label for the MCP transports' channel-binding export. */
export const CHANNEL_BINDING_LABEL = 'EXPORTER-pqmcp-channel-binding';
export const EMPTY_CONTEXT = utf8Encode('');
