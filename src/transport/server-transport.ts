/**
 * One authenticated pqmcp session on the server, as the SDK's `Transport`. The listener
 * creates it only after the client's credential, signature and Finished have verified, and
 * hands it to the application, which connects a fresh McpServer to it.
 *
 * Sharp edges:
 * - Every message is delivered with `{ authInfo }` as extra; the SDK passes it to request
 *   handlers as `extra.authInfo` (see auth-info.ts for the fields).
 * - Messages that arrive before start() (the client's `initialize` travels with its final
 *   handshake flight) are held, and reading from the socket is paused, until start().
 * - `sessionId` is the handshake transcript hash in hex, equal to the client's.
 * - Messages pass a MessagePipeline when the listener has hooks or a request-bytes limit
 *   (maxRequestBytesInFlight, maxRequestBytesInFlightTotal, both on by default): a client
 *   request past one, or past MAX_TRACKED in flight, is answered -32005 before it reaches
 *   the MCP server.
 * - pauseReading()/resumeReading(): a consumer that cannot keep up (the gateway, while this
 *   session holds more than its share of its child's stdin) stops reading this session's
 *   socket. The peer is not at fault: the keepalive does not judge it meanwhile (the pong may
 *   be in what we do not read). Bounded: a pause that lasts `maxReadPauseMs` ends the session
 *   with ReadPauseTimeoutError (close code 4003), so a stuck consumer cannot pin sockets.
 */
import type { McpMessageExtra, McpOnMessage, McpSendOptions } from './mcp-types.js';
import { ClosedError, InvalidArgumentError, ReadPauseTimeoutError } from '../errors.js';
import type { PqmcpError } from '../errors.js';
import { unref, type Timer } from './timers.js';
import type { HandshakeResult } from '../handshake/types.js';
import type { VerifiedPeer } from '../identity/trust.js';
import type { BackendName } from '../crypto/types.js';
import type { Connection } from './connection.js';
import { authInfoFor, sessionIdOf } from './auth-info.js';
import type { PqmcpAuthInfo } from './auth-info.js';
import { decodeForDelivery, failureOn, encodeMessage } from './jsonrpc.js';
import type { DeliveryFailure } from './jsonrpc.js';
import { MessagePipeline } from './message-hooks.js';
import type { JsonRpcMessage, MessageHook } from './hook-api.js';
import type { RequestBudget } from './request-budget.js';
import { McpProtocolVersions } from './protocol-versions.js';


/** How long pauseReading() may hold a session by default (PqmcpServerOptions.maxReadPauseMs). */
export const DEFAULT_MAX_READ_PAUSE_MS = 60_000;

/** @internal What the listener (server.ts) gives a session's transport besides its connection, handshake and backend. */
export interface ServerTransportOptions {
  /** The client's address as the socket saw it (may be a proxy's). */
  remoteAddress?: string | undefined;
  /** The listener's message hooks, in order. Default: none. */
  hooks?: readonly MessageHook[];
  /** The bound on the client's request bytes in flight in this session; 0 (default): none. */
  maxRequestBytesInFlight?: number;
  /** How long pauseReading() may hold the session. Default DEFAULT_MAX_READ_PAUSE_MS. */
  maxReadPauseMs?: number;
  /** The clock the hold on the client's cancelled requests runs on (holdNow of the listener's clock; default monotonic). */
  holdNow?: (() => number) | undefined;
  /** The listener's bound over all its sessions' requests in flight (request-budget.ts). */
  requestBudget?: RequestBudget | undefined;
}

/** An MCP server `Transport` (SDK 1.x and 2.x) for one authenticated session. */
export class PqmcpServerTransport extends McpProtocolVersions {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: McpOnMessage | undefined;
  /** The handshake transcript hash (hex), equal on both sides. */
  readonly sessionId: string;
  /** The verified client. */
  readonly peer: VerifiedPeer;
  /** What request handlers see as extra.authInfo. */
  readonly authInfo: PqmcpAuthInfo;
  /** The client's address as the socket saw it (may be a proxy's). */
  readonly remoteAddress: string | undefined;
  /** Resolves once onclose has fired. */
  readonly closed: Promise<void>;

  private readonly extra: McpMessageExtra;
  private started = false;
  private inbox: Uint8Array[] = [];
  private readonly pipeline: MessagePipeline | undefined;
  private closeCalled = false;
  /** pauseReading() holds: its bound (maxReadPauseMs) runs. */
  private pauseTimer: Timer | undefined;
  /** What a malformed message from the client gets (built once, not per message). */
  private readonly failure: DeliveryFailure;

  /** How long pauseReading() may hold the session (the listener's maxReadPauseMs). */
  private readonly maxReadPauseMs: number;

  /** True when this session was resumed from a ticket (`peer` comes from the ticket, re-checked against the trust store). */
  get resumed(): boolean {
    return this.handshakeResult.resumed;
  }

  /** @internal Created by the listener (PqmcpServer) after a successful handshake. */
  constructor(
    private readonly connection: Connection,
    readonly handshakeResult: HandshakeResult,
    readonly backend: BackendName,
    options: ServerTransportOptions = {},
  ) {
    super();
    const { remoteAddress, hooks = [], maxRequestBytesInFlight = 0, holdNow: now, requestBudget: shared } = options;
    this.maxReadPauseMs = options.maxReadPauseMs ?? DEFAULT_MAX_READ_PAUSE_MS;
    this.peer = handshakeResult.peer;
    this.sessionId = sessionIdOf(handshakeResult);
    this.authInfo = authInfoFor(handshakeResult, backend);
    this.extra = Object.freeze({ authInfo: this.authInfo });
    this.remoteAddress = remoteAddress;
    this.closed = connection.closed;
    this.failure = failureOn(connection, (error) => this.onerror?.(error));
    connection.pause();
    connection.onmessage = (data) => {
      if (this.started) this.deliver(data);
      else this.inbox.push(data);
    };
    connection.onerror = (error) => this.onerror?.(error);
    connection.onclose = () => {
      this.resumeReading();
      this.pipeline?.close(connection.error);
      this.onclose?.();
    };
    // The pipeline also counts the client's requests in flight (maxRequestBytesInFlight, and the listener's total).
    if (hooks.length > 0 || maxRequestBytesInFlight > 0 || shared !== undefined) {
      this.pipeline = new MessagePipeline(
        hooks,
        { role: 'server', peer: this.peer, sessionId: this.sessionId, remoteAddress },
        {
          toPeer: (data) => connection.send(data),
          toLocal: (message) => this.onmessage?.(message, this.extra),
          onerror: (error) => this.onerror?.(error),
        },
        { ...(maxRequestBytesInFlight > 0 ? { maxRequestBytes: maxRequestBytesInFlight } : {}), now, ...(shared !== undefined ? { shared } : {}) },
      );
    }
  }

  /** Bytes written but not yet handed to the OS (send() waits above highWaterMark). */
  get bufferedAmount(): number {
    return this.connection.bufferedAmount;
  }

  /** Channel binding exporter (RFC 8446 section 7.5 style). */
  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array {
    return this.connection.session.exportKeyingMaterial(label, context, length);
  }

  async start(): Promise<void> {
    if (this.started) throw new InvalidArgumentError('PqmcpServerTransport already started');
    this.started = true;
    if (this.connection.state === 'closed') {
      // The client left before the application connected: report the close it missed.
      setTimeout(() => this.onclose?.(), 0);
      throw this.connection.error ?? new ClosedError('client disconnected before the session started');
    }
    const held = this.inbox;
    this.inbox = [];
    for (const data of held) this.deliver(data);
    this.connection.resume();
  }

  /**
   * Stop reading this session's socket until resumeReading(): what the client sends waits
   * in the network (its own send() waits once its buffer is full). For a consumer that
   * cannot keep up, e.g. the gateway while this session holds more than its share of its
   * child's stdin. The keepalive's pongs are not read either, so the keepalive does not
   * judge the peer meanwhile; a pause that lasts `maxReadPauseMs` (listener option, default
   * 60 s) ends the session with ReadPauseTimeoutError. Calls while paused change nothing
   * (the bound runs from the first).
   */
  pauseReading(): void {
    if (this.pauseTimer || this.connection.state === 'closed') return;
    this.connection.pause('consumer');
    const ms = this.maxReadPauseMs;
    this.pauseTimer = unref(
      setTimeout(() => {
        this.connection.abort(new ReadPauseTimeoutError(ms));
        this.resumeReading(); // a failed connection drops what it reads: the peer's close frame ends it sooner
      }, ms),
    );
  }

  resumeReading(): void {
    if (!this.pauseTimer) return;
    clearTimeout(this.pauseTimer);
    this.pauseTimer = undefined;
    this.connection.resume('consumer');
  }

  async send(message: JsonRpcMessage, _options?: McpSendOptions): Promise<void> {
    if (this.pipeline) return this.pipeline.toPeer(message as JsonRpcMessage);
    return this.connection.send(encodeMessage(message));
  }

  /**
   * The error the session ended with (a timeout, a limit, a failed record, an expired or
   * untrusted credential, a close without close_notify); undefined while it is open and
   * after a clean close. Set when onerror reports it and before onclose. Other onerror
   * reports (a refused request, a hook's report) leave the session open and this unset.
   */
  get error(): PqmcpError | undefined {
    return this.connection.error;
  }

  /** close() was called on this side (for audit: who ended the session). */
  get closedLocally(): boolean {
    return this.closeCalled;
  }

  /** Authenticated close (close_notify both ways, then the socket). Resolves after onclose. */
  async close(): Promise<void> {
    if (this.connection.state === 'open') this.closeCalled = true;
    return this.connection.close();
  }

  private deliver(data: Uint8Array): void {
    const message = decodeForDelivery(data, this.failure);
    if (message === undefined) return;
    if (this.pipeline) this.pipeline.fromPeer(message as JsonRpcMessage, data.length, data);
    else this.onmessage?.(message, this.extra);
  }
}
