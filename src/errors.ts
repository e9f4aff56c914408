/**
 * Typed errors for every pqmcp failure.
 *
 * Every error carries a stable string `code` (safe to match on, never changes between
 * releases) and, where the failure can be reported to the peer, the numeric wire `alert`
 * it maps to (docs/protocol.md, "Alerts").
 *
 * Sharp edges:
 * - Cryptographic failures (bad MAC, bad signature, bad Finished, failed decryption) use
 *   constant messages. They never say which byte, which half of a composite signature, or
 *   which key failed: an attacker learns only that the step failed.
 * - No error message ever contains key material, plaintext or ciphertext. Identifiers that
 *   are public (agent ids, issuer ids, serial numbers in hex) may appear.
 */

/** Wire alert codes (u16). 0 is the authenticated close, not an error. */
export const Alert = {
  closeNotify: 0,
  unexpectedMessage: 10,
  badRecordMac: 20,
  recordOverflow: 22,
  handshakeFailure: 40,
  badCredential: 42,
  credentialRevoked: 44,
  credentialExpired: 45,
  unknownIssuer: 48,
  decodeError: 50,
  decryptError: 51,
  protocolVersion: 70,
  insufficientSecurity: 71,
  internalError: 80,
  userCanceled: 90,
  unexpectedPeer: 91,
  messageTooLarge: 92,
  sequenceExhausted: 93,
  // Session limits and expiry (issue 10): 140-149.
  tooManySessions: 140,
  sessionLifetimeExceeded: 141,
  // Resumption (120-129).
  /** The ClientHello's PSK binder did not verify: the sender does not hold the ticket's PSK. */
  pskBinderInvalid: 120,
  // protocol revision (issue 11): 100-119
  endpointMismatch: 100,
  wrongCredentialUsage: 101,
  nameConstraintViolation: 102,
  badApplicationMessage: 103,
  unsupportedExtension: 110,
  // Edge admission (130-139).
  /** The server is overloaded and refused this handshake before any expensive work; retry later. */
  serverBusy: 130,
} as const;
export type AlertCode = (typeof Alert)[keyof typeof Alert];

/** Stable error codes. */
export type ErrorCode =
  | 'ERR_DECODE'
  | 'ERR_UNEXPECTED_MESSAGE'
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_UNSUPPORTED_SUITE'
  | 'ERR_BAD_RECORD_MAC'
  | 'ERR_RECORD_OVERFLOW'
  | 'ERR_MESSAGE_TOO_LARGE'
  | 'ERR_SEQUENCE_EXHAUSTED'
  | 'ERR_TRUNCATED'
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_BAD_FINISHED'
  | 'ERR_INVALID_KEY'
  | 'ERR_CREDENTIAL_INVALID'
  | 'ERR_CREDENTIAL_EXPIRED'
  | 'ERR_CREDENTIAL_NOT_YET_VALID'
  | 'ERR_CREDENTIAL_REVOKED'
  | 'ERR_UNTRUSTED_ISSUER'
  | 'ERR_UNEXPECTED_PEER'
  | 'ERR_PEER_ALERT'
  | 'ERR_CLOSED'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_KEEPALIVE_TIMEOUT'
  | 'ERR_SERVER_BUSY'
  | 'ERR_CONNECTION'
  | 'ERR_BACKEND_UNAVAILABLE'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_INTERNAL'
  // message hooks (transport/message-hooks.ts)
  | 'ERR_MESSAGE_HOOK'
  | 'ERR_RESPONSE_ID_MISMATCH'
  | 'ERR_REQUEST_ID_REUSED'
  // Session limits and expiry (issue 10).
  | 'ERR_SESSION_LIMIT'
  | 'ERR_SESSION_EXPIRED'
  | 'ERR_SESSION_UNTRUSTED'
  // Resumption (tickets, PSK binder).
  | 'ERR_BAD_BINDER'
  | 'ERR_TICKET_INVALID'
  | 'ERR_TICKET_UNKNOWN_KEY'
  | 'ERR_TICKET_EXPIRED'
  | 'ERR_TICKET_REPLAYED'
  | 'ERR_TICKET_ENDPOINT'
  | 'ERR_TICKET_MISMATCH'
  | 'ERR_TICKET_REPLAY_FULL'
  // protocol revision (issue 11)
  | 'ERR_UNSUPPORTED_EXTENSION'
  | 'ERR_PEER_ABORTED'
  | 'ERR_BAD_APPLICATION_MESSAGE'
  | 'ERR_ENDPOINT_MISMATCH'
  | 'ERR_CREDENTIAL_USAGE'
  | 'ERR_NAME_CONSTRAINT'
  // identity files (identity/formats.ts, identity/files.ts)
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_FILE_READ'
  | 'ERR_FILE_FORMAT'
  | 'ERR_KEY_PERMISSIONS'
  // authorization and quotas (policy/)
  | 'ERR_POLICY_INVALID'
  | 'ERR_POLICY_ENGINE_UNAVAILABLE'
  // PROXY protocol from trusted proxies (issue 10, transport/proxy-protocol.ts)
  | 'ERR_PROXY_PROTOCOL'
  // requests in flight past MAX_TRACKED (review 8 L1, transport/request-tracker.ts)
  | 'ERR_TOO_MANY_IN_FLIGHT'
  // request bytes in flight past maxRequestBytesInFlight (issue 10 item 3, transport/request-tracker.ts)
  | 'ERR_TOO_MANY_BYTES_IN_FLIGHT'
  // a peer request outside the envelope the MCP SDKs accept (transport/request-tracker.ts)
  | 'ERR_MALFORMED_REQUEST'
  // a consumer's pause held past maxReadPauseMs (review F2, transport/server-transport.ts)
  | 'ERR_READ_PAUSE_TIMEOUT'
  // a second writer on one audit directory (review 15, R15-6, audit/dir-lock.ts)
  | 'ERR_AUDIT_LOCKED';

export class PqmcpError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Alert sent to the peer for this failure, or undefined when none is sent. */
  readonly alert: AlertCode | undefined;

  constructor(code: ErrorCode, message: string, alert?: AlertCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.alert = alert;
  }
}

/** Malformed bytes: a length out of range, trailing data, a non-canonical field. */
export class DecodeError extends PqmcpError {
  constructor(message: string) {
    super('ERR_DECODE', message, Alert.decodeError);
  }
}

/** A message arrived that the state machine does not accept in its current state. */
export class UnexpectedMessageError extends PqmcpError {
  constructor(message: string) {
    super('ERR_UNEXPECTED_MESSAGE', message, Alert.unexpectedMessage);
  }
}

/** No protocol version in common: never a silent fallback. */
export class UnsupportedVersionError extends PqmcpError {
  constructor(message: string) {
    super('ERR_UNSUPPORTED_VERSION', message, Alert.protocolVersion);
  }
}

/** No cipher suite in common, or the peer chose one that was not offered. */
export class UnsupportedSuiteError extends PqmcpError {
  constructor(message: string) {
    super('ERR_UNSUPPORTED_SUITE', message, Alert.insufficientSecurity);
  }
}

/** A record failed authentication. Constant message. */
export class BadRecordMacError extends PqmcpError {
  constructor() {
    super('ERR_BAD_RECORD_MAC', 'record authentication failed', Alert.badRecordMac);
  }
}

/** A record longer than the protocol maximum. */
export class RecordOverflowError extends PqmcpError {
  constructor(message: string) {
    super('ERR_RECORD_OVERFLOW', message, Alert.recordOverflow);
  }
}

/** An application message larger than the configured maximum. */
export class MessageTooLargeError extends PqmcpError {
  constructor(size: number, max: number) {
    super('ERR_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the maximum of ${max} bytes`, Alert.messageTooLarge);
  }
}

/** The per-key record sequence would wrap; the session must end (or update keys earlier). */
export class SequenceExhaustedError extends PqmcpError {
  constructor() {
    super('ERR_SEQUENCE_EXHAUSTED', 'record sequence number exhausted', Alert.sequenceExhausted);
  }
}

/** The stream ended without the authenticated close: possible truncation attack. */
export class TruncationError extends PqmcpError {
  constructor(message = 'connection ended without an authenticated close') {
    super('ERR_TRUNCATED', message);
  }
}

/** A signature (handshake or credential) did not verify. Constant message. */
export class BadSignatureError extends PqmcpError {
  constructor() {
    super('ERR_BAD_SIGNATURE', 'signature verification failed', Alert.decryptError);
  }
}

/** A Finished MAC did not verify. Constant message. */
export class BadFinishedError extends PqmcpError {
  constructor() {
    super('ERR_BAD_FINISHED', 'handshake verification failed', Alert.decryptError);
  }
}

/** A public key that the primitive refuses (wrong length, failed modulus check, low order). */
export class InvalidKeyError extends PqmcpError {
  constructor(message = 'invalid public key') {
    super('ERR_INVALID_KEY', message, Alert.handshakeFailure);
  }
}

/** Base class of credential verification failures. */
export class CredentialError extends PqmcpError {}

/** Credential is structurally invalid (e.g. self-signed but not pinned, wrong key). */
export class CredentialInvalidError extends CredentialError {
  constructor(message: string) {
    super('ERR_CREDENTIAL_INVALID', message, Alert.badCredential);
  }
}

export class CredentialExpiredError extends CredentialError {
  constructor(readonly notAfter: number) {
    super('ERR_CREDENTIAL_EXPIRED', `credential expired at ${new Date(notAfter * 1000).toISOString()}`, Alert.credentialExpired);
  }
}

export class CredentialNotYetValidError extends CredentialError {
  constructor(readonly notBefore: number) {
    super('ERR_CREDENTIAL_NOT_YET_VALID', `credential not valid before ${new Date(notBefore * 1000).toISOString()}`, Alert.badCredential);
  }
}

export class CredentialRevokedError extends CredentialError {
  constructor(readonly reason: 'serial' | 'key') {
    super('ERR_CREDENTIAL_REVOKED', reason === 'serial' ? 'credential serial is revoked' : 'credential key is revoked', Alert.credentialRevoked);
  }
}

export class UntrustedIssuerError extends CredentialError {
  constructor(readonly issuer: string) {
    super('ERR_UNTRUSTED_ISSUER', `issuer ${JSON.stringify(issuer)} is not trusted`, Alert.unknownIssuer);
  }
}

export class UnexpectedPeerError extends CredentialError {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super('ERR_UNEXPECTED_PEER', `expected peer ${JSON.stringify(expected)} but it presented ${JSON.stringify(actual)}`, Alert.unexpectedPeer);
  }
}

/** The peer sent an alert; `peerAlert` is its wire code. */
export class PeerAlertError extends PqmcpError {
  constructor(readonly peerAlert: number) {
    super('ERR_PEER_ALERT', `peer aborted the session with alert ${peerAlert} (${alertName(peerAlert)})`);
  }
}

/** The session is closed or failed; nothing more can be sent or received. */
export class ClosedError extends PqmcpError {
  constructor(message = 'session is closed') {
    super('ERR_CLOSED', message);
  }
}

export class HandshakeTimeoutError extends PqmcpError {
  constructor(ms: number) {
    super('ERR_HANDSHAKE_TIMEOUT', `handshake did not complete within ${ms} ms`, Alert.handshakeFailure);
  }
}

/** The peer did not answer a keepalive ping in time; the connection was dropped. */
export class KeepAliveTimeoutError extends PqmcpError {
  constructor(ms: number) {
    super('ERR_KEEPALIVE_TIMEOUT', `no keepalive answer within ${ms} ms`);
  }
}

/**
 * The server's application kept a session's reading paused (PqmcpServerTransport.pauseReading:
 * its consumer, e.g. the gateway's MCP server, did not keep up) for longer than
 * `maxReadPauseMs`; the session was ended. The peer is not at fault: its keepalive was not
 * judged meanwhile. Close code 4003 (limit exceeded); no alert.
 */
export class ReadPauseTimeoutError extends PqmcpError {
  constructor(readonly ms: number) {
    super('ERR_READ_PAUSE_TIMEOUT', `the server stopped reading this session for more than ${ms} ms (its consumer did not keep up); the session is closed`);
  }
}

/**
 * The server refused or dropped the connection before any expensive handshake work (its
 * pending-handshake table or its signing queue is full); retry later. Sent as the plaintext
 * alert server_busy (130) where a session exists, and as close code 4006.
 */
export class ServerBusyError extends PqmcpError {
  constructor(message = 'server busy: too many pending handshakes, try again later') {
    super('ERR_SERVER_BUSY', message, Alert.serverBusy);
  }
}

/** The underlying connection failed: refused, reset, a WebSocket protocol violation, or closed by the peer with an error code. */
export class ConnectionError extends PqmcpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONNECTION', message, undefined, options);
  }
}

export class BackendUnavailableError extends PqmcpError {
  constructor(message: string) {
    super('ERR_BACKEND_UNAVAILABLE', message);
  }
}

/** A caller passed a bad option or argument (local programming error, not peer input). */
export class InvalidArgumentError extends PqmcpError {
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message);
  }
}

export class InternalError extends PqmcpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INTERNAL', message, Alert.internalError, options);
  }
}

// --- message hooks (transport/message-hooks.ts) -------------------------------------------

/**
 * A message hook threw: the request it was handling was refused, a response or notification
 * dropped (fail closed); or its opened() / closed() threw (no message involved); or it
 * reported a failure of its own (HookChannel.report).
 */
export class MessageHookError extends PqmcpError {
  /**
   * `reported`: the hook reported it (HookChannel.report: work it deferred past its call);
   * `during`: what the hook was doing (default 'request': the message was refused).
   * Nothing was refused unless a request was.
   */
  constructor(hookName: string, options?: { cause?: unknown; reported?: boolean; during?: 'request' | 'response' | 'message' | 'opened' | 'closed' }) {
    const outcome = options?.reported === true ? ' (reported by the hook); nothing was refused' : HOOK_OUTCOME[options?.during ?? 'request'];
    super('ERR_MESSAGE_HOOK', `message hook ${hookName} failed${outcome}`, undefined, options && { cause: options.cause });
  }
}

const HOOK_OUTCOME = {
  request: '; the message was refused',
  response: '; the response was withheld and its request answered with an internal error',
  message: '; the message was dropped',
  opened: ' in opened() (the session start, no message involved); nothing was refused',
  closed: ' in closed() (the session end, no message involved); nothing was refused',
} as const;

/**
 * The peer answered a request with an id of another JSON type or spelling ("5" for 5):
 * hooks could not match it to its request, while an SDK that coerces ids would, so the
 * response is dropped (JSON-RPC 2.0: a response's id MUST be the same as the request's).
 */
export class ResponseIdMismatchError extends PqmcpError {
  constructor(id: unknown) {
    super('ERR_RESPONSE_ID_MISMATCH', `the peer answered with id ${JSON.stringify(String(id)).slice(0, 40)} (${typeof id}), which matches no request as sent; the response was dropped`);
  }
}

/**
 * The peer sent a request under the id of one of its requests still in flight (MCP: an id
 * is never reused within a session). Hooks match responses to requests by id, so the first
 * request's response would pass them as the answer to the second (a policy's list filter,
 * an auditor's record): the second is answered with Invalid Request and goes no further.
 */
export class RequestIdReusedError extends PqmcpError {
  constructor(id: unknown) {
    super('ERR_REQUEST_ID_REUSED', `the peer sent a request with id ${JSON.stringify(String(id)).slice(0, 40)}, the id of one of its requests still in flight or cancelled; it was refused`);
  }
}

/**
 * The peer sent a request the MCP SDKs would drop unanswered (an id that is not a string or
 * an integer, a member beyond jsonrpc/id/method/params, params or params._meta of the wrong
 * shape: transport/jsonrpc.ts requestEnvelopeFault). It was answered with Invalid Request
 * (-32600; id null when its own id is not a string or a number) and reached no hook and no
 * handler, so it holds no slot nor bytes in flight. Reported to onerror; the session goes on.
 * Also (id undefined) a request method sent without an id (a method not under
 * `notifications/`, hook-api.ts isMisdirectedNotification): dropped before any hook, as
 * there is no id to answer (review 15, R15-1).
 */
export class MalformedRequestError extends PqmcpError {
  constructor(
    readonly reason: string,
    id: unknown,
  ) {
    super(
      'ERR_MALFORMED_REQUEST',
      id === undefined
        ? `the peer sent a message the MCP SDKs do not run (${reason}); it was dropped (no id to answer)`
        : `the peer sent request ${JSON.stringify(String(id)).slice(0, 40)}, which MCP SDKs cannot answer (${reason}); it was refused with Invalid Request`,
    );
  }
}

// --- requests in flight past MAX_TRACKED (review 8 L1, transport/request-tracker.ts) ----

/**
 * A request past MAX_TRACKED requests in flight in one direction of a session with message
 * hooks. side 'peer': the peer's request was answered with JSON-RPC error -32005 and reached
 * no hook and no handler (reported to onerror). side 'local': the local side's request was
 * not sent (the transport's send() rejects with this error).
 */
export class TooManyRequestsInFlightError extends PqmcpError {
  constructor(
    readonly side: 'peer' | 'local',
    readonly limit: number,
    id: unknown,
    /** The peer's request is related to a task and `limit` is theirs (RELATED_TASK_MAX_IN_FLIGHT), not MAX_TRACKED. */
    readonly taskRelated = false,
  ) {
    const request = `request ${JSON.stringify(String(id)).slice(0, 40)}`;
    super(
      'ERR_TOO_MANY_IN_FLIGHT',
      side === 'peer'
        ? `the peer sent ${request} while ${limit} of its requests${taskRelated ? ' related to a task' : ''} were in flight (the limit); it was refused`
        : `${request} was not sent: ${limit} requests of this side are in flight (the limit); wait for answers (or cancel requests), then retry`,
    );
  }
}

// --- Session limits and expiry (issue 10) ------------------------------------------------

/** The listener refused an authenticated session: its agent already holds the configured number of sessions. */
export class SessionLimitError extends PqmcpError {
  constructor(
    readonly agentId: string,
    readonly limit: number,
  ) {
    super('ERR_SESSION_LIMIT', `agent ${JSON.stringify(agentId)} already has ${limit} session${limit === 1 ? '' : 's'} (the limit per agent)`, Alert.tooManySessions);
  }
}

/**
 * An established session ended because time ran out: a credential's notAfter (plus the
 * allowed skew) passed, or the configured maximum session lifetime did.
 */
export class SessionExpiredError extends PqmcpError {
  constructor(
    readonly reason: 'peer-credential' | 'own-credential' | 'lifetime',
    /** When it ran out, milliseconds since the epoch (by the session's clock). */
    readonly at: number,
  ) {
    const what = reason === 'peer-credential' ? "the peer's credential expired" : reason === 'own-credential' ? 'our credential expired' : 'the maximum session lifetime passed';
    super('ERR_SESSION_EXPIRED', `session ended: ${what} at ${new Date(at).toISOString()}`, reason === 'lifetime' ? Alert.sessionLifetimeExceeded : Alert.credentialExpired);
  }
}

/**
 * An established session ended because the trust store changed and no longer accepts the
 * peer's credential (revoked serial or key, issuer removed, a new pin). `cause` is the
 * credential error the re-check gave; its alert is sent.
 */
export class SessionUntrustedError extends PqmcpError {
  constructor(readonly reasonError: CredentialError) {
    super('ERR_SESSION_UNTRUSTED', `session ended: the peer is no longer trusted (${reasonError.message})`, reasonError.alert, { cause: reasonError });
  }
}

// --- Resumption (tickets, PSK binder) ---------------------------------------------------------
// Every ticket refusal except a bad binder is reported and answered with a full handshake
// (docs/protocol.md section 15.5): the ticket is ignored, nothing is sent to the peer.

/** The PSK binder in a ClientHello did not verify. Fatal (alert psk_binder_invalid). Constant message. */
export class BadBinderError extends PqmcpError {
  constructor() {
    super('ERR_BAD_BINDER', 'PSK binder verification failed', Alert.pskBinderInvalid);
  }
}

/** Base class of ticket refusals (the server falls back to a full handshake). */
export class TicketError extends PqmcpError {}

/** The ticket did not decrypt under the key it names (tampered, truncated, or forged). Constant message. */
export class TicketInvalidError extends TicketError {
  /**
   * `earlierVersion`: the ticket authenticated under this server's key but is of a format it
   * no longer opens (tickets version 1 and 2), reported locally only (never sent); every
   * other refusal has one constant message.
   */
  constructor(earlierVersion?: number) {
    super('ERR_TICKET_INVALID', earlierVersion === undefined ? 'ticket authentication failed' : `ticket of an earlier format (version ${earlierVersion}), no longer opened: a full handshake follows`);
  }
}

/** The ticket names a ticket key this server does not hold (another deployment's, or rotated out). */
export class TicketUnknownKeyError extends TicketError {
  constructor() {
    super('ERR_TICKET_UNKNOWN_KEY', 'ticket sealed under an unknown ticket key');
  }
}

export class TicketExpiredError extends TicketError {
  constructor(readonly expiresAt: number) {
    super('ERR_TICKET_EXPIRED', `ticket expired at ${new Date(expiresAt * 1000).toISOString()}`);
  }
}

/** This ticket was already used with this server (tickets are single use). */
export class TicketReplayedError extends TicketError {
  constructor() {
    super('ERR_TICKET_REPLAYED', 'ticket was already used');
  }
}

/** The ticket was issued for another endpoint than the one it is presented to. */
export class TicketEndpointError extends TicketError {
  constructor() {
    super('ERR_TICKET_ENDPOINT', 'ticket was issued for another endpoint');
  }
}

/** The ticket's server identity or suite does not match this connection. */
export class TicketMismatchError extends TicketError {
  constructor(what: 'server identity' | 'server credential' | 'suite') {
    super('ERR_TICKET_MISMATCH', `ticket ${what} does not match this connection`);
  }
}

/** The anti-replay record is full of live tickets: resumption is refused until entries expire. */
export class TicketReplayFullError extends TicketError {
  constructor(message = 'anti-replay record is full; resumption refused') {
    super('ERR_TICKET_REPLAY_FULL', message);
  }
}

// --- protocol revision (issue 11): strictness, endpoint binding, roles, name constraints --

/** The peer sent an extension this side did not offer (a ServerHello may only answer offers). */
export class UnsupportedExtensionError extends PqmcpError {
  /** `why`: what makes it unsupported there (by default: it answers nothing this side offered). */
  constructor(
    readonly extensionType: number,
    why = 'which was not offered',
  ) {
    super('ERR_UNSUPPORTED_EXTENSION', `peer sent extension 0x${extensionType.toString(16).padStart(4, '0')}, ${why}`, Alert.unsupportedExtension);
  }
}

/**
 * The peer sent a plaintext (unauthenticated) alert during the handshake. Anyone on the path
 * can forge one, so its code is reported but not given its trusted meaning.
 */
export class PeerAbortedError extends PqmcpError {
  constructor(readonly peerAlert: number) {
    super('ERR_PEER_ABORTED', `peer aborted the handshake (unauthenticated alert ${peerAlert})`);
  }
}

/**
 * An application message that is not exactly one JSON-RPC message (not UTF-8 JSON, a batch,
 * not an object with jsonrpc "2.0"). Without an id to answer, the session ends with this.
 */
export class BadApplicationMessageError extends PqmcpError {
  constructor(message: string) {
    super('ERR_BAD_APPLICATION_MESSAGE', message, Alert.badApplicationMessage);
  }
}

/** The endpoint the client named in its ClientHello is not one this listener serves (or none was named). */
export class EndpointMismatchError extends PqmcpError {
  constructor(message: string) {
    super('ERR_ENDPOINT_MISMATCH', message, Alert.endpointMismatch);
  }
}

/** The peer's credential does not permit the role it plays (a client credential presented by a server, or the reverse). */
export class CredentialUsageError extends CredentialError {
  constructor(
    readonly usage: string,
    readonly role: 'client' | 'server',
    message?: string,
  ) {
    super('ERR_CREDENTIAL_USAGE', message ?? `credential usage is ${usage}; it may not act as a ${role}`, Alert.wrongCredentialUsage);
  }
}

/** The credential's agent id is outside the names its issuer may vouch for (trust store constraints), or outside the caller's server-id constraint. */
export class NameConstraintError extends CredentialError {
  constructor(
    readonly agentId: string,
    /** The constrained issuer; undefined when the caller's own constraint (serverIdConstraints) refused. */
    readonly issuer: string | undefined,
    message?: string,
  ) {
    super('ERR_NAME_CONSTRAINT', message ?? `issuer ${JSON.stringify(issuer)} may not vouch for ${JSON.stringify(agentId)}`, Alert.nameConstraintViolation);
  }
}

// --- identity files (identity/formats.ts, identity/files.ts) -------------------------------

/**
 * Base class of the failures to load a pqmcp file (key, credential, trust file, revocation
 * list). `path` is the file (or the label the caller gave a parsed document); the message
 * starts with it and names the field, never a secret value.
 */
export class FileError extends PqmcpError {
  constructor(
    code: ErrorCode,
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${path}: ${message}`, undefined, options);
  }
}

/** The file does not exist. */
export class FileNotFoundError extends FileError {
  constructor(path: string, options?: { cause?: unknown }) {
    super('ERR_FILE_NOT_FOUND', path, 'no such file', options);
  }
}

/** The file exists but cannot be read (permissions, a directory, an I/O error). */
export class FileReadError extends FileError {
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_FILE_READ', path, message, options);
  }
}

/** The file is not the pqmcp format expected: not JSON, another kind of file, a bad field. */
export class FileFormatError extends FileError {
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_FILE_FORMAT', path, message, options);
  }
}

/** A private key file that the group or others can access (POSIX mode & 0o077). */
export class KeyPermissionsError extends FileError {
  constructor(
    path: string,
    readonly mode: number,
  ) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0');
    super('ERR_KEY_PERMISSIONS', path, `private key file is accessible by group or others (mode ${octal}); run "chmod 600 ${path}" (or allow it knowingly: allowLoosePermissions, CLI --allow-loose-key-permissions)`);
  }
}

/** Loading an identity: its own credential is outside its validity window now. */
export class CredentialFileValidityError extends FileError {
  constructor(path: string, code: 'ERR_CREDENTIAL_EXPIRED' | 'ERR_CREDENTIAL_NOT_YET_VALID', message: string) {
    super(code, path, message);
  }
}

// --- authorization and quotas (policy/) ----------------------------------------------------

/**
 * A policy (or quota configuration) that does not parse or does not validate against the
 * schema. `problems` lists each one ("file:line:col: message"); nothing was loaded.
 */
export class PolicyInvalidError extends PqmcpError {
  readonly problems: readonly string[];
  constructor(message: string, problems: readonly string[] = []) {
    super('ERR_POLICY_INVALID', problems.length > 0 ? `${message}:\n  ${problems.join('\n  ')}` : message);
    this.problems = problems;
  }
}

/** A policy is configured but the Cedar engine (@cedar-policy/cedar-wasm) cannot be loaded. */
export class PolicyEngineUnavailableError extends PqmcpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_POLICY_ENGINE_UNAVAILABLE', message, undefined, options);
  }
}

// --- PROXY protocol from trusted proxies (issue 10: transport/proxy-protocol.ts, proxy-front.ts) ---

/** Why a connection on a PROXY-protocol listener was refused before any HTTP. */
export type ProxyProtocolFailure =
  /** The bytes are not a valid PROXY v1/v2 header (or none was sent). */
  | 'malformed'
  /** Longer than the bound (v1 107 bytes, v2 4 KiB). */
  | 'too-long'
  /** The header did not arrive in time (`proxyHeaderTimeoutMs`). */
  | 'timeout'
  /** The TCP peer is not in `trustedProxies`: direct connections are refused on such a listener. */
  | 'untrusted-peer';

/**
 * A connection refused by a listener with `proxyProtocol` on, before its HTTP request was
 * read: `reason` says why. Nothing was sent to the peer; the socket was closed.
 */
export class ProxyProtocolError extends PqmcpError {
  readonly reason: ProxyProtocolFailure;
  constructor(reason: ProxyProtocolFailure, message: string) {
    super('ERR_PROXY_PROTOCOL', message);
    this.reason = reason;
  }
}

// --- request bytes in flight (issue 10 item 3: transport/request-tracker.ts) ----------------

/**
 * A peer's request refused because the session's requests in flight (delivered to the local
 * MCP side and not yet answered, or cancelled and still charged) already hold `inFlight` bytes and this one's `bytes` would
 * take them past `limit` (the server's maxRequestBytesInFlight). The peer was answered with
 * JSON-RPC error -32005 (data { limitBytes }); the request reached no hook and no handler
 * (reported to onerror). Never closes the session: the peer may retry once answers came.
 * With `listener` set, the listener's bound over all its sessions refused it instead
 * (maxRequestBytesInFlightTotal, transport/request-budget.ts; data { scope: 'listener' }):
 * its total was past `limit` and the request would take the session's `inFlight` past its
 * share, or its agent's bytes past the agent's share (R11-7). Those figures are the
 * operator's only: the peer's answer has none (R11-6).
 */
export class TooManyRequestBytesInFlightError extends PqmcpError {
  constructor(
    /** The session's limit, or with `listener` the listener's. */
    readonly limit: number,
    readonly inFlight: number,
    readonly bytes: number,
    id: unknown,
    /**
     * Set when the listener's bound over all sessions refused it (maxRequestBytesInFlightTotal):
     * the listener's total, the session's share (its even part of its agent's), and its
     * agent's share and bytes in flight (its sessions' together).
     */
    readonly listener?: { readonly total: number; readonly share: number; readonly agentShare?: number; readonly agentInFlight?: number },
    /** The request is related to a task: `limit` and `inFlight` are their share's (half of maxRequestBytesInFlight). */
    readonly taskRelated = false,
  ) {
    const request = `request ${JSON.stringify(String(id)).slice(0, 40)} (${bytes} bytes)`;
    super(
      'ERR_TOO_MANY_BYTES_IN_FLIGHT',
      listener !== undefined
        ? `the peer sent ${request} while its requests in flight held ${inFlight} bytes and all sessions' ${listener.total}, past the listener's limit of ${limit} bytes (maxRequestBytesInFlightTotal), over which a session may hold its share, ${listener.share} bytes${listener.agentShare !== undefined ? `, of its agent's ${listener.agentShare} (its agent's sessions held ${listener.agentInFlight ?? 0})` : ''}; it was refused`
        : taskRelated
          ? `the peer sent ${request}, related to a task, while its requests related to a task in flight held ${inFlight} bytes; their limit is ${limit} bytes (half of maxRequestBytesInFlight); it was refused`
          : `the peer sent ${request} while its requests in flight held ${inFlight} bytes; the limit is ${limit} bytes (maxRequestBytesInFlight); it was refused`,
    );
  }
}

/** Human name of a wire alert code, for logs and messages. */
export function alertName(code: number): string {
  for (const [name, value] of Object.entries(Alert)) if (value === code) return name;
  return 'unknown';
}

/**
 * The pqmcp error behind `error`: `error` itself, or the first PqmcpError down its `cause`
 * chain (at most 8 links; cycles end the walk). For errors an MCP SDK wraps: SDK 2.x
 * `Client.connect()` with `versionNegotiation` (auto or a pin) rejects with an `SdkError`
 * (`ERA_NEGOTIATION_FAILED`) whose `cause` is the transport's typed error; SDK 1.x and a
 * 2.x client without negotiation reject with the pqmcp error itself (docs/usage.md).
 */
export function findPqmcpError(error: unknown): PqmcpError | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  for (let i = 0; i <= 8 && current !== null && typeof current === 'object' && !seen.has(current); i++) {
    if (current instanceof PqmcpError) return current;
    seen.add(current);
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Wrap anything thrown while processing peer input into a PqmcpError, so callers only
 * ever see typed errors. Non-pqmcp errors become InternalError without their message,
 * which might carry data from a third-party library.
 */
export function toPqmcpError(err: unknown): PqmcpError {
  if (err instanceof PqmcpError) return err;
  return new InternalError('internal error', { cause: err });
}

// --- audit directory (review 15, R15-6: audit/dir-lock.ts) ---------------------------------

/**
 * AuditLog.open(): another writer holds the directory's lock (`lock`, `<dir>/audit.lock`);
 * `holder` says who ("pid 41 on gw-1 since <time>"). Two writers would fork the chain.
 */
export class AuditLogLockedError extends PqmcpError {
  constructor(
    readonly dir: string,
    readonly lock: string,
    readonly holder: string,
  ) {
    super('ERR_AUDIT_LOCKED', `${dir}: another writer holds this audit directory (lock ${lock}, ${holder}); give each process its own directory, or remove the lock if no pqmcp writes there`);
  }
}
