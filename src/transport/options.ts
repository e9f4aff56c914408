/**
 * Options shared by the client transport and the server listener, their defaults and
 * their checks (InvalidArgumentError naming the option).
 */
import type { AgentIdentity } from '../identity/identity.js';
import type { TrustStore } from '../identity/trust.js';
import type { EncodedLocalIdentity, LocalIdentity } from '../handshake/types.js';
import type { CryptoBackend } from '../crypto/types.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../session/session.js';
import type { SessionOptions } from '../session/session.js';
import { MAX_MESSAGES_PER_TURN } from './inbox.js';
import { CredentialUsageError, InvalidArgumentError } from '../errors.js';
import { decodeCredential, usagePermits } from '../identity/credential.js';
import { checkPaddingBlock } from '../record/padding.js';
import { selectBackend } from '../crypto/select.js';
import type { BackendChoice } from '../crypto/select.js';
import type { ConnectionOptions } from './connection.js';
import type { MessageHook } from './hook-api.js';
import { systemClock } from './clock.js';
import { MAX_TIMER_MS, timerLimitText } from './timers.js';
import type { Clock } from './clock.js';
import { DEFAULT_CLOCK_SKEW_SECONDS } from '../identity/trust.js';
import { requestAuditor } from '../audit/request-hook.js';
import type { AuditSink } from '../audit/events.js';

/** WebSocket subprotocol token: names the pqmcp protocol version on the wire. */
export const SUBPROTOCOL = 'pqmcp.v1';

/** Largest WebSocket message this side writes. Every peer's maxPayload must be at least this. */
export const MAX_WRITE_BATCH = 256 * 1024;

export const DEFAULTS = {
  handshakeTimeoutMs: 10_000,
  maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE,
  maxPayload: 1024 * 1024,
  keepAliveMs: 30_000,
  keepAliveTimeoutMs: 10_000,
  highWaterMark: 8 * 1024 * 1024,
  closeTimeoutMs: 2_000,
  maxPendingHandshakes: 64,
  /** The peer's KeyUpdates processed per event-loop turn (the rest waits for the next turn). */
  maxKeyUpdatesPerTurn: 4,
  /** The peer's KeyUpdates per second per session beyond its automatic ones (burst 32). */
  keyUpdateRate: 10,
} as const;

export type { BackendChoice };

/** Options common to both sides. Every limit has a safe default. */
export interface PqmcpTransportOptions {
  /** This side's identity: an AgentIdentity, or { keyPair, credential: encoded bytes }. */
  identity: AgentIdentity | LocalIdentity;
  /** Issuers (and pinned keys, revocations) this side trusts to vouch for the peer. */
  trust: TrustStore;
  /** Crypto backend: 'auto' (default: fastest available), 'noble', 'native', or a backend object. */
  backend?: BackendChoice | CryptoBackend;
  /** Cipher suites offered (client) or accepted (server), in preference order. */
  suites?: readonly number[];
  /** Clock skew allowed when checking the peer's credential window. Default 60 s. */
  clockSkewSeconds?: number;
  /** Whole handshake must finish within this. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** Largest MCP message (JSON bytes) sent or accepted. Default 64 MiB. */
  maxMessageSize?: number;
  /** Largest single WebSocket message accepted. Default 1 MiB; at least 256 KiB. */
  maxPayload?: number;
  /** WebSocket ping interval; 0 disables keepalive. Default 30 000 ms. */
  keepAliveMs?: number;
  /** No pong within this after a ping: the connection is dropped. Default 10 000 ms. */
  keepAliveTimeoutMs?: number;
  /** Unsent bytes above which send() waits for the socket to drain. Default 8 MiB. */
  highWaterMark?: number;
  /** Bound on close(): waiting for the peer's close_notify and the socket close. Default 2 000 ms. */
  closeTimeoutMs?: number;

  // --- message hooks (message-hooks.ts) ---
  /**
   * Hooks that see every JSON-RPC message of each session (authorization, quotas, pinning,
   * auditing); hooks[0] is the outermost, nearest the peer. Shared by every session of a
   * listener: keep per-session state keyed by session (opened/closed). Default: none.
   */
  hooks?: readonly MessageHook[];
  /**
   * Bytes (JSON) of the peer's requests in flight per session: delivered to the local MCP
   * side (the listener's MCP server; the client's sampling, elicitation and roots handlers)
   * and not yet answered; a cancelled one counts (at most half this) until answered or
   * CANCELLED_HOLD_MS passed. A request that would take them past this is refused with JSON-RPC error
   * -32005 (data { limitBytes }) and reported to onerror (ERR_TOO_MANY_BYTES_IN_FLIGHT);
   * the session goes on. A request is always admitted when none is in flight, so this
   * bounds concurrency, not the size of one request (maxMessageSize does). Requests
   * related to a task (params._meta names one) also have a share of their own: at most
   * RELATED_TASK_MAX_IN_FLIGHT (64) and half this, never admitted alone, and "none in
   * flight" leaves them aside (an SDK 1.x task server never answers them). Every session
   * then runs the hook pipeline (message-hooks.ts), so MAX_TRACKED applies too. Default
   * 16 MiB; 0: no limit (MAX_TRACKED, the envelope check and the 64 related to a task still
   * apply while a pipeline runs: with hooks, or on a listener while
   * maxRequestBytesInFlightTotal is on, as by default).
   */
  maxRequestBytesInFlight?: number;

  // --- session limits and expiry (issue 10; session-guard.ts) ---
  /**
   * End every session this long after its handshake, whatever the credentials allow
   * (alert sessionLifetimeExceeded, close code 4021). Default 0: no limit beyond the
   * credentials' notAfter, which always ends a session.
   */
  maxSessionLifetimeMs?: number;
  /**
   * Time source for credential windows, session expiry and lifetime, and the hold on the
   * peer's cancelled requests (tests inject one that they move by hand). Default: the
   * system clock.
   */
  clock?: Clock;

  // --- protocol revision (issue 11): record padding ---
  /**
   * Pad the last record of every application message this side sends so that its protected
   * plaintext is a multiple of this many bytes (docs/protocol.md, section 3.2): an observer
   * then learns message sizes only to this granularity, at the cost of up to this many bytes
   * per message. 0 (default): no application padding. Credentials are always padded.
   */
  applicationPadding?: number;

  // --- audit (src/audit) ---
  /**
   * Receives one audit event per session (open, close), per request (with its outcome and
   * the hashes of its arguments and result) and per failed handshake. Called synchronously:
   * queue, do not block (AuditLog.write does). A throw is ignored. Default: none.
   */
  onAuditEvent?: AuditSink;
  /** Put arguments and results themselves in request events, not only their SHA-256. Default false. */
  auditContent?: boolean;
  /**
   * Take the SHA-256 of each request's and response's bytes for request events
   * (`requestHash`, `responseHash`). Default true. Set false when no sink reads them (only
   * metrics, as `pqmcp serve --metrics` without `--audit`): two digests per request fewer,
   * most of the cost of metrics for large messages.
   */
  auditHashes?: boolean;

  // --- KeyUpdate ration (issue 10, third session; session/key-update-budget.ts) ---
  /**
   * KeyUpdates per second this side takes from the peer of each session, beyond the peer's
   * automatic ones (one per 2^22 records) and the answer to its own request; up to 32 are
   * taken at once. Past it, this side stops reading that session's socket until the ration
   * refills: the peer is slowed, never refused. Default 10; `Infinity`: no ration.
   * `{ rate, burst }` sets how many are taken at once too (burst an integer >= 1, default 32).
   */
  keyUpdateRate?: number | { rate: number; burst?: number };
}

/** `max`: MAX_TIMER_MS for a delay that reaches a raw timer (R10-0: a longer one fires after 1 ms). */
function checkNumber(options: object, name: string, min: number, fallback: number, max = Number.POSITIVE_INFINITY): number {
  const value = (options as Record<string, unknown>)[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be a number >= ${min}`);
  }
  if (value > max) throw new InvalidArgumentError(timerLimitText(name));
  return value;
}

export interface ResolvedOptions {
  connection: ConnectionOptions;
  /** The application's hooks, after the request auditor when auditing. */
  hooks: readonly MessageHook[];
  /** Per session; 0: no limit. */
  maxRequestBytesInFlight: number;
  clock: Clock;
  maxSessionLifetimeMs: number;
  clockSkewSeconds: number;

  applicationPadding: number;
  audit: AuditSink | undefined;
  /** The Session's keyUpdateRate (undefined: no ration). */
  keyUpdateRate: { rate: number; burst?: number } | undefined;
  maxMessageSize: number;
  maxPayload: number;
}

export function resolveOptions(options: PqmcpTransportOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
  checkTrust(options.trust);
  return {
    connection: {
      handshakeTimeoutMs: checkNumber(options, 'handshakeTimeoutMs', 1, DEFAULTS.handshakeTimeoutMs, MAX_TIMER_MS),
      keepAliveMs: checkNumber(options, 'keepAliveMs', 0, DEFAULTS.keepAliveMs, MAX_TIMER_MS),
      keepAliveTimeoutMs: checkNumber(options, 'keepAliveTimeoutMs', 1, DEFAULTS.keepAliveTimeoutMs, MAX_TIMER_MS),
      highWaterMark: checkNumber(options, 'highWaterMark', 0, DEFAULTS.highWaterMark),
      closeTimeoutMs: checkNumber(options, 'closeTimeoutMs', 1, DEFAULTS.closeTimeoutMs, MAX_TIMER_MS),
      maxWriteBatch: MAX_WRITE_BATCH,
      // The server listener turns this on (see Connection: only one side may hold).
      deliveryWaitsForDrain: false,
    },
    clock: checkClock(options.clock),
    maxSessionLifetimeMs: checkNumber(options, 'maxSessionLifetimeMs', 0, 0),
    clockSkewSeconds: checkNumber(options, 'clockSkewSeconds', 0, DEFAULT_CLOCK_SKEW_SECONDS),
    hooks: withAuditor(checkHooks(options.hooks), options),
    maxRequestBytesInFlight: checkRequestBytes(options.maxRequestBytesInFlight),
    applicationPadding: checkPaddingBlock(options.applicationPadding, 'applicationPadding'),
    audit: checkAudit(options.onAuditEvent),
    maxMessageSize: checkNumber(options, 'maxMessageSize', 1, DEFAULTS.maxMessageSize),
    maxPayload: checkNumber(options, 'maxPayload', MAX_WRITE_BATCH, DEFAULTS.maxPayload),
    keyUpdateRate: checkKeyUpdateRate(options.keyUpdateRate),
  };
}

function checkKeyUpdateRate(option: unknown): { rate: number; burst?: number } | undefined {
  if (option === undefined) return { rate: DEFAULTS.keyUpdateRate };
  if (option === Number.POSITIVE_INFINITY) return undefined;
  const shape = 'keyUpdateRate must be a number > 0 (Infinity: no ration) or { rate: number > 0, burst?: integer >= 1 }';
  const positive = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0;
  if (typeof option === 'object' && option !== null) {
    const { rate, burst } = option as { rate?: unknown; burst?: unknown };
    if (!positive(rate) || (burst !== undefined && !(typeof burst === 'number' && Number.isSafeInteger(burst) && burst >= 1))) throw new InvalidArgumentError(shape);
    return burst === undefined ? { rate } : { rate, burst };
  }
  if (!positive(option)) throw new InvalidArgumentError(shape);
  return { rate: option };
}

function checkClock(clock: unknown): Clock {
  if (clock === undefined) return systemClock;
  const c = clock as Partial<Clock> | null;
  if (typeof c !== 'object' || c === null || typeof c.now !== 'function' || typeof c.schedule !== 'function' || typeof c.cancel !== 'function') {
    throw new InvalidArgumentError('clock must have now(), schedule() and cancel()');
  }
  return clock as Clock;
}

/** Per session (docs/threat-model.md: 16 MiB is thousands of ordinary requests, or 15 concurrent 1 MiB ones). */
export const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT = 16 * 1024 * 1024;

function checkRequestBytes(value: unknown): number {
  const bytes = value ?? DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT;
  if (!Number.isSafeInteger(bytes) || (bytes as number) < 0) throw new InvalidArgumentError('maxRequestBytesInFlight must be a non-negative integer (0: no limit)');
  return bytes as number;
}

function checkHooks(hooks: unknown): readonly MessageHook[] {
  if (hooks === undefined) return [];
  if (!Array.isArray(hooks) || hooks.some((h) => typeof h !== 'object' || h === null)) throw new InvalidArgumentError('hooks must be an array of MessageHook objects');
  return Object.freeze([...(hooks as MessageHook[])]);
}

function checkAudit(sink: unknown): AuditSink | undefined {
  if (sink !== undefined && typeof sink !== 'function') throw new InvalidArgumentError('onAuditEvent must be a function');
  return sink as AuditSink | undefined;
}

/** The request auditor goes first (outermost): it sees what inner hooks refuse. */
function withAuditor(hooks: readonly MessageHook[], options: PqmcpTransportOptions): readonly MessageHook[] {
  const sink = checkAudit(options.onAuditEvent);
  if (sink === undefined) return hooks;
  return Object.freeze([requestAuditor(sink, { content: options.auditContent === true, hashes: options.auditHashes !== false }), ...hooks]);
}

/**
 * `trust` is a TrustStore, checked when the transport is configured: a forgotten one (or a
 * parsed trust file) otherwise failed only at the first handshake, as "internal error".
 * By shape, not instanceof: a store from another copy of the package (CJS and ESM) is fine.
 */
function checkTrust(trust: unknown): void {
  const t = trust as Partial<TrustStore> | null | undefined;
  if (typeof t === 'object' && t !== null && typeof t.verifyCredential === 'function' && typeof t.onChange === 'function') return;
  const hint =
    typeof t === 'object' && t !== null && 'issuers' in t
      ? 'a parsed trust file is not a TrustStore: use TrustStore.fromJSON(json) or loadTrustStore(path)'
      : "loadTrustStore('trust.json'), TrustStore.fromJSON(json) or new TrustStore({ issuers })";
  throw new InvalidArgumentError(`trust must be a TrustStore (${hint}); got ${t === null ? 'null' : typeof t === 'object' ? 'another object' : typeof t}`);
}

/** The handshake's view of an identity: key pair plus encoded credential. */
/**
 * The identity in the handshake's shape. With `role`, also checks at configuration time
 * that the credential's usage permits that role (issue 11 item 3): a server started with a
 * client credential fails here, with a message saying how to fix it, instead of every
 * client refusing it with alert 101.
 */
export function localIdentity(identity: AgentIdentity | LocalIdentity, role?: 'client' | 'server'): EncodedLocalIdentity {
  if (typeof identity !== 'object' || identity === null || typeof identity.keyPair !== 'object' || identity.keyPair === null) {
    throw new InvalidArgumentError('identity must be an AgentIdentity or { keyPair, credential }');
  }
  const credential = identity.credential instanceof Uint8Array ? identity.credential : identity.credential?.encoded;
  if (!(credential instanceof Uint8Array)) throw new InvalidArgumentError('identity.credential must be encoded bytes or a decoded Credential');
  if (role !== undefined) {
    const { usage, agentId } = decodeCredential(credential);
    if (!usagePermits(usage, role)) {
      throw new CredentialUsageError(
        usage,
        role,
        `this agent's credential (${JSON.stringify(agentId)}) has usage ${usage}; it may not act as a ${role}: issue it a credential with usage ${role} or both (pqmcp credential issue --usage ${role})`,
      );
    }
  }
  return { keyPair: identity.keyPair, credential };
}

function isBackend(value: unknown): value is CryptoBackend {
  return typeof value === 'object' && value !== null && 'xwing' in value && 'report' in value;
}

export async function resolveBackend(choice: BackendChoice | CryptoBackend | undefined): Promise<CryptoBackend> {
  if (isBackend(choice)) return choice;
  return selectBackend(choice ?? 'auto');
}

/** What sharedSessionOptions() sets. */
type SharedSessionOptions = Pick<SessionOptions, 'trust' | 'suites' | 'clockSkewSeconds' | 'now' | 'maxMessageSize' | 'maxKeyUpdatesPerCall' | 'keyUpdateRate' | 'maxMessagesPerCall' | 'applicationPadding'>;

/**
 * The Session options the client transport and the listener take alike from the transport
 * options: the rest (identity, the peer expected, endpoints, tickets, deferred crypto) is each
 * side's own.
 */
export function sharedSessionOptions(options: PqmcpTransportOptions, resolved: ResolvedOptions): SharedSessionOptions {
  return {
    trust: options.trust,
    ...(options.suites !== undefined ? { suites: options.suites } : {}),
    ...(options.clockSkewSeconds !== undefined ? { clockSkewSeconds: options.clockSkewSeconds } : {}),
    now: resolved.clock.now,
    maxMessageSize: resolved.maxMessageSize,
    maxKeyUpdatesPerCall: DEFAULTS.maxKeyUpdatesPerTurn,
    ...(resolved.keyUpdateRate ? { keyUpdateRate: resolved.keyUpdateRate } : {}),
    maxMessagesPerCall: MAX_MESSAGES_PER_TURN,
    applicationPadding: resolved.applicationPadding,
  };
}
