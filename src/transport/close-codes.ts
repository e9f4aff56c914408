/**
 * WebSocket close codes used by the pqmcp transports (the private-use range 4000-4999 of
 * RFC 6455 section 7.4.2), and the map from pqmcp error codes to them.
 *
 *   close code  meaning                                    error codes
 *   1000        normal: the authenticated close completed  (none)
 *   4000        protocol violation                         ERR_DECODE, ERR_UNEXPECTED_MESSAGE (incl. a text frame),
 *                                                          ERR_RECORD_OVERFLOW, ERR_CONNECTION, ERR_TRUNCATED
 *   4001        negotiation failed                         ERR_UNSUPPORTED_VERSION, ERR_UNSUPPORTED_SUITE
 *   4002        authentication failed                      ERR_BAD_RECORD_MAC, ERR_BAD_SIGNATURE, ERR_BAD_FINISHED,
 *                                                          ERR_INVALID_KEY, ERR_CREDENTIAL_*, ERR_UNTRUSTED_ISSUER,
 *                                                          ERR_UNEXPECTED_PEER
 *   4003        limit exceeded                             ERR_MESSAGE_TOO_LARGE, ERR_SEQUENCE_EXHAUSTED,
 *                                                          ERR_READ_PAUSE_TIMEOUT
 *   4004        handshake timeout                          ERR_HANDSHAKE_TIMEOUT
 *   4005        keepalive timeout                          ERR_KEEPALIVE_TIMEOUT
 *   4006        server busy, try again later               ERR_SERVER_BUSY
 *   4007        the peer aborted (we answer its alert)     ERR_PEER_ALERT
 *   4008        cancelled by the application               ERR_CLOSED
 *   4009        internal error                             ERR_INTERNAL, ERR_BACKEND_UNAVAILABLE, ERR_INVALID_ARGUMENT
 *   4020        too many sessions for this agent           ERR_SESSION_LIMIT
 *   4021        session expired (credential or lifetime)   ERR_SESSION_EXPIRED
 *   4022        peer no longer trusted (trust changed)     ERR_SESSION_UNTRUSTED
 *   4030        wrong endpoint (ClientHello endpoint)      ERR_ENDPOINT_MISMATCH
 *   4031        bad application message (not one JSON-RPC) ERR_BAD_APPLICATION_MESSAGE
 *   (also: ERR_UNSUPPORTED_EXTENSION -> 4001; ERR_CREDENTIAL_USAGE, ERR_NAME_CONSTRAINT -> 4002;
 *    ERR_PEER_ABORTED -> 4007)
 *
 * Sharp edges:
 * - Close frames are NOT protected by pqmcp (they belong to the WebSocket, which is plain
 *   unless it runs over TLS). So the codes are deliberately coarse: one code for every
 *   authentication failure. The precise reason travels in the pqmcp alert, which is
 *   encrypted once handshake keys exist.
 * - A close code is a hint, never proof: an on-path attacker can forge one. The receiving
 *   transport trusts only the authenticated close_notify for a clean end; any other end
 *   of the stream is an error (ServerBusyError for 4006, ConnectionError for other 4xxx
 *   codes, otherwise TruncationError).
 */
import type { ErrorCode, PqmcpError } from '../errors.js';
import { ConnectionError, ServerBusyError } from '../errors.js';

export const CloseCode = {
  normal: 1000,
  protocolError: 4000,
  negotiationFailed: 4001,
  authenticationFailed: 4002,
  limitExceeded: 4003,
  handshakeTimeout: 4004,
  keepAliveTimeout: 4005,
  serverBusy: 4006,
  peerAborted: 4007,
  cancelled: 4008,
  internalError: 4009,
  // Session limits and expiry (issue 10): 4020-4029.
  sessionLimit: 4020,
  sessionExpired: 4021,
  sessionUntrusted: 4022,
  // protocol revision (issue 11): 4030-4039
  endpointMismatch: 4030,
  badApplicationMessage: 4031,
} as const;
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

const BY_ERROR: Record<ErrorCode, CloseCodeValue> = {
  ERR_DECODE: CloseCode.protocolError,
  ERR_UNEXPECTED_MESSAGE: CloseCode.protocolError,
  ERR_RECORD_OVERFLOW: CloseCode.protocolError,
  ERR_CONNECTION: CloseCode.protocolError,
  ERR_TRUNCATED: CloseCode.protocolError,
  ERR_UNSUPPORTED_VERSION: CloseCode.negotiationFailed,
  ERR_UNSUPPORTED_SUITE: CloseCode.negotiationFailed,
  ERR_BAD_RECORD_MAC: CloseCode.authenticationFailed,
  ERR_BAD_SIGNATURE: CloseCode.authenticationFailed,
  ERR_BAD_FINISHED: CloseCode.authenticationFailed,
  ERR_INVALID_KEY: CloseCode.authenticationFailed,
  ERR_CREDENTIAL_INVALID: CloseCode.authenticationFailed,
  ERR_CREDENTIAL_EXPIRED: CloseCode.authenticationFailed,
  ERR_CREDENTIAL_NOT_YET_VALID: CloseCode.authenticationFailed,
  ERR_CREDENTIAL_REVOKED: CloseCode.authenticationFailed,
  ERR_UNTRUSTED_ISSUER: CloseCode.authenticationFailed,
  ERR_UNEXPECTED_PEER: CloseCode.authenticationFailed,
  ERR_MESSAGE_TOO_LARGE: CloseCode.limitExceeded,
  ERR_SEQUENCE_EXHAUSTED: CloseCode.limitExceeded,
  ERR_READ_PAUSE_TIMEOUT: CloseCode.limitExceeded,
  ERR_HANDSHAKE_TIMEOUT: CloseCode.handshakeTimeout,
  ERR_KEEPALIVE_TIMEOUT: CloseCode.keepAliveTimeout,
  ERR_SERVER_BUSY: CloseCode.serverBusy,
  ERR_PEER_ALERT: CloseCode.peerAborted,
  ERR_CLOSED: CloseCode.cancelled,
  ERR_INTERNAL: CloseCode.internalError,
  ERR_BACKEND_UNAVAILABLE: CloseCode.internalError,
  ERR_INVALID_ARGUMENT: CloseCode.internalError,
  // message hooks: a hook failure refuses one message, it never closes the session
  ERR_MESSAGE_HOOK: CloseCode.internalError,
  ERR_RESPONSE_ID_MISMATCH: CloseCode.internalError,
  ERR_REQUEST_ID_REUSED: CloseCode.internalError,
  ERR_MALFORMED_REQUEST: CloseCode.internalError,
  ERR_TOO_MANY_IN_FLIGHT: CloseCode.internalError,
  ERR_TOO_MANY_BYTES_IN_FLIGHT: CloseCode.internalError,
  ERR_SESSION_LIMIT: CloseCode.sessionLimit,
  ERR_SESSION_EXPIRED: CloseCode.sessionExpired,
  ERR_SESSION_UNTRUSTED: CloseCode.sessionUntrusted,
  // resumption: a bad binder fails authentication; ticket refusals never close a connection
  // (the server falls back to a full handshake), listed for completeness
  ERR_BAD_BINDER: CloseCode.authenticationFailed,
  ERR_TICKET_INVALID: CloseCode.authenticationFailed,
  ERR_TICKET_UNKNOWN_KEY: CloseCode.authenticationFailed,
  ERR_TICKET_EXPIRED: CloseCode.authenticationFailed,
  ERR_TICKET_REPLAYED: CloseCode.authenticationFailed,
  ERR_TICKET_ENDPOINT: CloseCode.authenticationFailed,
  ERR_TICKET_MISMATCH: CloseCode.authenticationFailed,
  ERR_TICKET_REPLAY_FULL: CloseCode.authenticationFailed,
  // authorization and quotas: local configuration errors, never a session's fault
  ERR_POLICY_INVALID: CloseCode.internalError,
  ERR_POLICY_ENGINE_UNAVAILABLE: CloseCode.internalError,
  // protocol revision (issue 11)
  ERR_UNSUPPORTED_EXTENSION: CloseCode.negotiationFailed,
  ERR_PEER_ABORTED: CloseCode.peerAborted,
  ERR_BAD_APPLICATION_MESSAGE: CloseCode.badApplicationMessage,
  ERR_ENDPOINT_MISMATCH: CloseCode.endpointMismatch,
  ERR_CREDENTIAL_USAGE: CloseCode.authenticationFailed,
  ERR_NAME_CONSTRAINT: CloseCode.authenticationFailed,
  // identity files: local errors loading files, never a session's
  ERR_FILE_NOT_FOUND: CloseCode.internalError,
  ERR_FILE_READ: CloseCode.internalError,
  ERR_FILE_FORMAT: CloseCode.internalError,
  // PROXY protocol: refused before any HTTP or WebSocket exists, never a close frame; listed for completeness
  ERR_PROXY_PROTOCOL: CloseCode.protocolError,
  ERR_KEY_PERMISSIONS: CloseCode.internalError,
  // a second writer on an audit directory: local, at AuditLog.open, never a session's
  ERR_AUDIT_LOCKED: CloseCode.internalError,
};

const REASONS: Record<CloseCodeValue, string> = {
  1000: 'normal closure',
  4000: 'protocol violation',
  4001: 'negotiation failed',
  4002: 'authentication failed',
  4003: 'limit exceeded',
  4004: 'handshake timeout',
  4005: 'keepalive timeout',
  4006: 'server busy, try again later',
  4007: 'peer aborted',
  4008: 'cancelled',
  4009: 'internal error',
  4020: 'too many sessions for this agent',
  4021: 'session expired',
  4022: 'peer no longer trusted',
  4030: 'wrong endpoint',
  4031: 'bad application message',
};

/** The close code to send when this side ends the connection because of `error`. */
export function closeCodeFor(error: PqmcpError): CloseCodeValue {
  return BY_ERROR[error.code] ?? CloseCode.internalError;
}

/** The short, constant reason phrase sent with a close code (never error details). */
export function closeReason(code: number): string {
  return REASONS[code as CloseCodeValue] ?? 'unknown';
}

/**
 * The error to report when the peer closed the WebSocket with `code` and no pqmcp alert
 * or close_notify explained it; undefined when the caller should treat the end of the
 * stream as truncation.
 */
export function errorForPeerClose(code: number): PqmcpError | undefined {
  if (code === CloseCode.serverBusy) return new ServerBusyError();
  if (code >= 4000 && code <= 4999) return new ConnectionError(`peer closed the connection: ${closeReason(code)} (close code ${code})`);
  return undefined;
}
