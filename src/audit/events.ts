/**
 * Audit events: what a pqmcp endpoint reports about each session, each request and each
 * failed handshake (`onAuditEvent` option of the listener and of the client transport).
 * Plain JSON-ready objects; the file writer (writer.ts) adds the hash chain.
 *
 *   handshake.failure  a connection refused before (or while) the peer was verified
 *   handshake.failure.summary
 *                      how many more such failures one source had in a window, past the
 *                      listener's `failureReports` rate (failure-limiter.ts)
 *   session.open       a verified session: who, with what, from where, how long it took
 *   request            one JSON-RPC request and its outcome (also refused or unanswered ones)
 *   session.close      how the session ended, its duration and its bytes each way
 *
 * Sharp edges:
 * - Arguments and results are never in an event unless `auditContent` is set: only the
 *   SHA-256 (hex) of the request's and the response's JSON text exactly as they crossed the
 *   transport (so the two sides' trails match). Equal text, equal hash: a reviewer holding
 *   the message can check it, nobody can read it back from the hash. For a request with
 *   low-entropy arguments the hash hides little from someone who can guess the rest.
 * - Times are milliseconds since the epoch (`time`) and durations in milliseconds, from
 *   this process's clock.
 * - Strings taken from the peer (method, tool name, error messages) are cut at
 *   MAX_TEXT characters: an event stays small whatever the peer sends.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import type { TicketsWithheld } from '../handshake/resumption.js';

/** The part of node:crypto sha256Hex uses. */
export interface Sha256Provider {
  createHash(alg: string): { update(data: string | Uint8Array): { digest(enc: 'hex'): string } };
  /** One-shot digest (Node >= 20.12 and >= 21.7): no Hash object per call, about half the cost for an event-sized input. */
  hash?(alg: string, data: string | Uint8Array, enc: 'hex'): string;
}

/** node:crypto where the runtime has it (fast, native), found at run time so browser bundles stay free of it. */
const nodeCrypto = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:crypto') as Sha256Provider | undefined;

/** Longest string copied from a message into an event. */
export const MAX_TEXT = 256;

/** The policy decision an inner hook recorded (`ctx.request.notes.policy`). */
export interface PolicyNote {
  decision: 'allow' | 'deny';
  policies?: string[];
  reason?: string;
}

interface Base {
  /** Milliseconds since the epoch. */
  time: number;
  /** Which side wrote it: the listener ('server') or a client transport ('client'). */
  role: 'client' | 'server';
}

/** The verified peer, as every session-scoped event names it. */
export interface AuditPeer {
  agentId: string;
  issuer: string;
  /** Lowercase hex fingerprint of the peer's public key. */
  fingerprint: string;
  /** Credential serial, lowercase hex. */
  serial: string;
}

export interface HandshakeFailureEvent extends Base {
  type: 'handshake.failure';
  remoteAddress: string | undefined;
  /** The PqmcpError code (ERR_UNTRUSTED_ISSUER, ERR_SERVER_BUSY, ERR_HANDSHAKE_TIMEOUT...). */
  code: string;
  message: string;
  /** From the first byte of the connection, when it got that far. */
  durationMs?: number;
  /** Server issuing tickets: the error code of the resumption ticket this connection offered and the server refused (then a full handshake). */
  ticketRefused?: string;
}

/**
 * The failures of one source not reported one by one in a window (the listener's
 * `failureReports` rate; failure-limiter.ts). `count` of them, by error code.
 */
export interface HandshakeFailureSummaryEvent extends Base {
  type: 'handshake.failure.summary';
  /** The source (an IPv4 address, or an IPv6 /64 as "a:b:c:d::/64"); undefined: the sources past `maxSources`, together. */
  remoteAddress: string | undefined;
  /** Failures held back in the window. */
  count: number;
  /** Of those, how many per PqmcpError code. */
  codes: Record<string, number>;
  /** Of those, the ones that had offered a resumption ticket the server refused: how many per the refusal's error code. Absent when none. */
  ticketsRefused?: Record<string, number>;
  /** The window: its start (ms since the epoch) and length. */
  windowStart: number;
  windowMs: number;
}

export interface SessionOpenEvent extends Base, AuditPeer {
  type: 'session.open';
  sessionId: string;
  /** Cipher suite name. */
  suite: string;
  /** This side's crypto backend. */
  backend: string;
  /** Server: the path the client upgraded on. Client: the URL it connected to. */
  endpoint: string | undefined;
  /** Server: the client's address as the socket saw it (may be a proxy's). */
  remoteAddress: string | undefined;
  /** Handshake time, from the connection to the verified peer. */
  handshakeMs: number;
  /** A resumption (the peer proved a ticket; its identity is the one the ticket's full handshake verified). */
  resumed: boolean;
  /** Server issuing tickets: why this session got none (HandshakeResult.ticketsWithheld). */
  ticketsWithheld?: TicketsWithheld;
  /** Server issuing tickets: the error code of the resumption ticket the client offered and the server refused (this session is a full handshake). */
  ticketRefused?: string;
}

export type SessionEnd = 'local' | 'peer' | 'error';

export interface SessionCloseEvent extends Base, AuditPeer {
  type: 'session.close';
  sessionId: string;
  durationMs: number;
  /** WebSocket payload bytes received and sent over the whole connection (handshake included). */
  bytesIn: number;
  bytesOut: number;
  /** KeyUpdates sent and received. */
  keyUpdates: number;
  /** Who ended it: this side, the peer (authenticated close), or an error. */
  end: SessionEnd;
  /** With end 'error': the PqmcpError code and message. */
  code?: string;
  message?: string;
}

export type RequestOutcome = 'ok' | 'error' | 'denied' | 'unanswered' | 'cancelled';

export interface RequestEvent extends Base, AuditPeer {
  type: 'request';
  sessionId: string;
  /** 'fromPeer': the peer asked, this side answered; 'toPeer': this side asked. */
  direction: 'fromPeer' | 'toPeer';
  method: string;
  /** Tool or prompt name, resource URI. */
  name?: string;
  /** SHA-256 (hex) of the request's JSON text as it crossed the transport (its arguments, id and all). */
  requestHash?: string;
  /** SHA-256 (hex) of the response's JSON text as it crossed the transport (result or error). */
  responseHash?: string;
  /** JSON bytes of the request and of its response. */
  requestBytes: number;
  responseBytes: number;
  durationMs: number;
  outcome: RequestOutcome;
  /** JSON-RPC error code and message (outcome 'error' or 'denied'), or isError of a tool result. */
  errorCode?: number;
  errorMessage?: string;
  /** When a policy hook decided on this request. */
  policy?: PolicyNote;
  /** Only with `auditContent`: the arguments and the result as they were. */
  arguments?: unknown;
  result?: unknown;
}

export type AuditEvent = HandshakeFailureEvent | HandshakeFailureSummaryEvent | SessionOpenEvent | RequestEvent | SessionCloseEvent;

/** Receives audit events. Must not throw (a throw is contained and ignored) and should not block. */
export type AuditSink = (event: AuditEvent) => void;

/**
 * The SHA-256 (hex, of text as UTF-8 or of bytes) a runtime gets, chosen once: node:crypto's
 * one-shot `hash()` where it exists, a Hash object per digest on a Node.js without it, noble
 * where there is no node:crypto (browsers). Exported for the tests of each path.
 */
export function sha256HexWith(crypto: Sha256Provider | undefined): (data: string | Uint8Array) => string {
  const oneShot = crypto?.hash;
  if (typeof oneShot === 'function') return (data) => oneShot.call(crypto, 'sha256', data, 'hex');
  if (crypto) return (data) => crypto.createHash('sha256').update(data).digest('hex');
  return (data) => bytesToHex(sha256(typeof data === 'string' ? utf8ToBytes(data) : data));
}

/** SHA-256, hex, of text or bytes: node:crypto where present, else noble. */
export const sha256Hex: (data: string | Uint8Array) => string = sha256HexWith(nodeCrypto);

export function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}...` : text;
}

/** Call a sink, containing a throw. */
export function emitTo(sink: AuditSink | undefined, event: AuditEvent): void {
  if (sink === undefined) return;
  try {
    sink(event);
  } catch {
    // An audit sink must not break the session it observes.
  }
}
