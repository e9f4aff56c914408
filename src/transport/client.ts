/**
 * The MCP client transport: the SDK's `Transport` over a pqmcp session on a WebSocket: the
 * dial, the session wiring, the retries of a busy server and the messages both ways. Its
 * options and their checks are in client-options.ts; the retries' policy, count and backoff
 * in busy-retry.ts; the MCP protocol-version accessors the SDK calls in protocol-versions.ts
 * (shared with PqmcpServerTransport).
 *
 *   const transport = new PqmcpClientTransport('ws://tools.example:8443/mcp', { identity, trust, expectedServerId: 'agent://example/tools' });
 *   await client.connect(transport);          // the only line that changes
 *
 * Sharp edges:
 * - 1-RTT: start() resolves as soon as the socket is open and the ClientHello is written.
 *   The SDK then sends `initialize`, which travels with the client's final handshake
 *   flight. The send() of a request settles once the server has answered anything (proof
 *   it accepted this client); if the handshake fails first (the server is not trusted, not
 *   the expected id, or refuses this client), it rejects with the typed error, so
 *   `client.connect()` rejects with it too (UntrustedIssuerError, UnexpectedPeerError, or
 *   PeerAlertError carrying the server's alert, e.g. unknownIssuer). Notifications and
 *   responses settle when written (below the high-water mark).
 * - `sessionId` stays undefined until the handshake completes (the SDK skips `initialize`
 *   on a transport that already has one); then it is the transcript hash in hex, the same
 *   value the server transport reports.
 * - The session ends (typed error on both sides) when either credential expires, when the
 *   trust store stops trusting the server, or after `maxSessionLifetimeMs`.
 * - One transport, one connection: start() twice is an error; after close, create a new one.
 * - The server's requests in flight (sampling, elicitation, roots/list) hold at most
 *   `maxRequestBytesInFlight` bytes (default 16 MiB): past it one is answered -32005 before
 *   the application sees it (request-tracker.ts, as on the listener).
 */
import type { McpOnMessage, McpSendOptions } from './mcp-types.js';
import { ClosedError, InvalidArgumentError, toPqmcpError } from '../errors.js';
import type { PqmcpError } from '../errors.js';
import type { HandshakeResult } from '../handshake/types.js';
import type { VerifiedPeer } from '../identity/trust.js';
import type { BackendName, CryptoBackend, XWingKeyPair } from '../crypto/types.js';
import { Session } from '../session/session.js';
import type { SessionOptions } from '../session/session.js';
import { Connection } from './connection.js';
import { keyShares } from './key-shares.js';
import { checkEndpoint, endpointOfUrl } from '../handshake/endpoint.js';
import { ticketSpent } from '../handshake/resumption.js';
import { takeTicketFor } from '../resumption/client-tickets.js';
import { decodeForDelivery, failureOn, encodeMessage, isRequest } from './jsonrpc.js';
import type { DeliveryFailure } from './jsonrpc.js';
import { MessagePipeline } from './message-hooks.js';
import { holdNow } from './cancelled-hold.js';
import type { JsonRpcMessage } from './hook-api.js';
import { SUBPROTOCOL, localIdentity, resolveBackend, resolveOptions, sharedSessionOptions } from './options.js';
import type { ResolvedOptions } from './options.js';
import { MAX_TICKETS_PER_CONNECTION, checkServerChoice, checkTicketStore, ticketStoreKey } from './client-options.js';
import type { PqmcpClientOptions } from './client-options.js';
import { McpProtocolVersions } from './protocol-versions.js';
import { sessionIdOf } from './auth-info.js';
import { SessionGuard, guardOptions } from './session-guard.js';
import { BusyRetries, resolveBusyRetry } from './busy-retry.js';
import { shownUrl, type Dialer, type Dialing, type OpenedSocket } from './dialer.js';
import { wsDialer } from './ws-dialer.js';
import { defer } from './timers.js';
import type { Traffic } from './ws-socket.js';
import { emitTo } from '../audit/events.js';
import { handshakeFailureEvent, sessionCloseEvent, sessionEnd, sessionOpenEvent } from '../audit/session-events.js';

// The client's options and their checks live in client-options.ts; re-exported for importers of this module.
export { MAX_TICKETS_PER_CONNECTION, anyServerWarningGiven, ticketStoreKey } from './client-options.js';
export type { PqmcpClientOptions, PqmcpWebSocketOptions } from './client-options.js';

/** A send() made before the handshake completed: kept until it settles, to be sent again on a retry. */
interface EarlySend {
  data: Uint8Array;
  confirm: boolean;
  resolve: () => void;
  reject: (error: PqmcpError) => void;
}

const noop = (): void => {};

/**
 * @internal What differs between runtimes: how the WebSocket opens and which crypto
 * backends exist. The browser entry point passes its own (standard WebSocket, noble).
 */
export interface ClientPlatform {
  dial: Dialer;
  resolveBackend(choice: PqmcpClientOptions['backend']): Promise<CryptoBackend>;
}

const NODE_PLATFORM: ClientPlatform = { dial: wsDialer, resolveBackend };

/** An MCP client `Transport` (SDK 1.x and 2.x) over a pqmcp session. */
export class PqmcpClientTransport extends McpProtocolVersions {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: McpOnMessage | undefined;
  /** Undefined until the handshake completes; then the transcript hash (hex). */
  sessionId?: string | undefined;

  /**
   * Settles when the handshake completes (this side verified the server) or fails with the
   * typed error. Never causes an unhandled rejection on its own.
   */
  readonly handshake: Promise<HandshakeResult>;

  private readonly url: URL;
  private readonly endpoint: string;
  /** Normalised serverIdConstraints, if any. */
  private readonly serverIdConstraints: readonly string[] | undefined;
  private readonly resolved: ResolvedOptions;
  private connection: Connection | undefined;
  private dialing: Dialing | undefined;
  /** The platform socket once open (a `ws` WebSocket on Node). */
  private ws: unknown;
  private started = false;
  private closedBeforeOpen = false;
  private closeFired = false;
  private result: HandshakeResult | undefined;
  private backendName: BackendName | undefined;
  private pipeline: MessagePipeline | undefined;
  private closeCalled = false;
  /** The retries of a busy server: how many so far, the backoff being waited (busy-retry.ts). */
  private readonly busy: BusyRetries;
  /** Set from the moment a busy refusal is to be retried until the sends are re-issued. */
  private retryPending = false;
  private early: EarlySend[] = [];
  private settleHandshake!: { resolve: (r: HandshakeResult) => void; reject: (e: PqmcpError) => void };

  constructor(
    url: string | URL,
    private readonly options: PqmcpClientOptions,
    private readonly platform: ClientPlatform = NODE_PLATFORM,
  ) {
    super();
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InvalidArgumentError('url must be an absolute ws:// or wss:// URL');
    }
    if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new InvalidArgumentError('url must be a ws:// or wss:// URL');
    // RFC 6455 section 3: no fragment (ws throws a SyntaxError for one at the dial: review 16, R16-7).
    // An empty one too ("ws://host/path#"): URL.hash is '' for it, but a standard WebSocket
    // (browsers, pqmcp/browser) throws a SyntaxError for any fragment (review 17, R17-1).
    if (parsed.href.includes('#')) throw new InvalidArgumentError('url must not have a fragment (#...): a WebSocket URL has none');
    this.url = parsed;
    this.serverIdConstraints = checkServerChoice(options);
    this.endpoint = options.endpoint !== undefined ? checkEndpoint(options.endpoint, 'endpoint') : endpointOfUrl(parsed);
    checkTicketStore(options.tickets);
    this.resolved = resolveOptions(options);
    this.busy = new BusyRetries(resolveBusyRetry(options.busyRetry), options);
    if (options.onBusyRetry !== undefined && typeof options.onBusyRetry !== 'function') throw new InvalidArgumentError('onBusyRetry must be a function');
    localIdentity(options.identity, 'client');
    this.handshake = new Promise<HandshakeResult>((resolve, reject) => (this.settleHandshake = { resolve, reject }));
    this.handshake.catch(noop);
  }

  /** The server's verified identity, once the handshake has completed. */
  get peer(): VerifiedPeer | undefined {
    return this.result?.peer;
  }

  /** True once a handshake resumed from a ticket has completed (`peer` then comes from the ticket). */
  get resumed(): boolean {
    return this.result?.resumed ?? false;
  }

  /** The crypto backend in use ('noble' or 'native'), once started. */
  get backend(): BackendName | undefined {
    return this.backendName;
  }

  /** Bytes written but not yet handed to the OS (send() waits above highWaterMark). */
  get bufferedAmount(): number {
    return this.connection?.bufferedAmount ?? 0;
  }

  /**
   * Channel binding (RFC 8446 section 7.5 style exporter) for tokens bound to this session.
   * Available once the handshake has completed.
   */
  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array {
    if (!this.connection) throw new ClosedError('exporter needs a completed handshake');
    return this.connection.session.exportKeyingMaterial(label, context, length);
  }

  async start(): Promise<void> {
    if (this.started) throw new InvalidArgumentError('PqmcpClientTransport already started; use a new transport per connection');
    this.started = true;
    const startedAt = Date.now();
    try {
      const backend = await this.platform.resolveBackend(this.options.backend);
      this.backendName = backend.name;
      await this.connect(backend, startedAt);
    } catch (err) {
      this.failToConnect(err, startedAt);
    }
  }

  /** One connection attempt: a fresh Session on a fresh WebSocket, wired to this transport. */
  private async connect(backend: CryptoBackend, startedAt: number): Promise<void> {
    const traffic: Traffic = { bytesIn: 0, bytesOut: 0 };
    const audit = this.resolved.audit;
    const store = this.options.tickets;
    const storeKey = ticketStoreKey(this.url, this.options.expectedServerId ?? this.serverIdConstraints?.join(' '));
    // A ticket is single use (its PSK is wiped once offered): a busy refusal after the
    // ClientHello (server_busy) spends it, and each retry takes the store's next ticket,
    // resuming with it if there is one; an attempt refused before it (HTTP 429/503) puts it back.
    // This client credential's ticket: another identity's sharing the store stays there (R16-10).
    const own = localIdentity(this.options.identity).credential;
    const resumeTicket = store ? takeTicketFor(store, storeKey, backend.sha256(own), Date.now()) : undefined;
    const sessionOptions: SessionOptions = {
      ...(resumeTicket ? { resumeTicket } : {}),
      backend,
      identity: localIdentity(this.options.identity),
      ...sharedSessionOptions(this.options, this.resolved),
      ...(this.options.expectedServerId !== undefined ? { expectedPeerId: this.options.expectedServerId } : {}),
      ...(this.serverIdConstraints !== undefined ? { peerIdConstraints: this.serverIdConstraints } : {}),
      endpoint: this.endpoint,
    };
    const guarding = guardOptions(this.resolved, this.options.trust, backend, localIdentity(this.options.identity));
    // The key share's key pair: made ahead of time (key-shares.ts), else made while the
    // socket connects. Used by this attempt only: a failed attempt drops it.
    let ephemeralKeyPair = keyShares.take(backend);
    let making: Promise<XWingKeyPair> | undefined;
    let opened: OpenedSocket;
    let session: Session;
    try {
      const opening = this.open(traffic); // the dial starts now, before the key pair is made
      if (ephemeralKeyPair) opened = await opening;
      else [ephemeralKeyPair, opened] = await Promise.all([(making = keyShares.soon(backend)), opening]);
      // A configuration the Session refuses (e.g. an unknown suite) fails here, before anything is sent.
      session = Session.client({ ...sessionOptions, ephemeralKeyPair });
    } catch (err) {
      this.dialing?.abort(); // never attached: a socket that opened anyway (no key pair, no Session) is dropped
      // Disposed, not only its seed wiped: the expanded decapsulation key goes too.
      if (ephemeralKeyPair) backend.xwing.dispose(ephemeralKeyPair);
      void making?.then((kp) => backend.xwing.dispose(kp), noop);
      // Nothing was sent (the ClientHello goes out once the connection is attached): a ticket
      // taken for this attempt is unspent, unless the Session already consumed it (its PSK
      // wiped), and goes back for the next attempt or connection.
      if (store && resumeTicket && !ticketSpent(resumeTicket)) store.put(storeKey, resumeTicket);
      // The upgrade itself was refused busy (HTTP 429/503): same backoff, then dial again.
      const error = toPqmcpError(err);
      if (await this.waitToRedial(error)) return this.connect(backend, startedAt);
      throw this.closedBeforeOpen ? new ClosedError('closed while connecting') : error;
    }
    this.ws = opened.raw;
    // A server that holds our bytes unread still pings: that keeps our keepalive (keepalive.ts).
    const connection = new Connection(opened.socket, session, { ...this.resolved.connection, peerPingsProveLive: true });
    this.connection = connection;
    opened.attach(connection);
    // Attached: abort() is a no-op from here on, and close() goes through the connection;
    // the dialer's closures and its settled promise need not live as long as the session.
    this.dialing = undefined;
    let openedAt = 0;
    connection.onhandshake = (result) => {
      this.result = result;
      this.sessionId = sessionIdOf(result);
      if (audit) {
        const endpoint = shownUrl(this.url);
        openedAt = Date.now();
        emitTo(audit, sessionOpenEvent('client', result, { backend: backend.name, endpoint, remoteAddress: undefined, startedAt }));
      }
      // Also without hooks: the pipeline bounds the server's requests in flight (maxRequestBytesInFlight).
      if (this.resolved.hooks.length > 0 || this.resolved.maxRequestBytesInFlight > 0) this.pipeline = this.hookPipeline(connection, result);
      // Ends the session when a credential expires or the trust store drops the server.
      const guard = new SessionGuard(guarding, result.peer, (error) => connection.abort(error));
      void connection.closed.then(() => guard.stop());
      this.settleHandshake.resolve(result);
    };
    // Built once per connection, not per message: only a malformed message uses it.
    const failure = failureOn(connection, (error) => this.onerror?.(error));
    connection.onmessage = (data) => this.deliver(data, failure);
    // At most MAX_TICKETS_PER_CONNECTION kept per connection: a server sending tickets without
    // end cannot make a file store rewrite itself without end (review F10).
    let kept = 0;
    if (store) connection.onticket = (ticket) => void (kept++ < MAX_TICKETS_PER_CONNECTION && store.put(storeKey, ticket));
    connection.onerror = (error) => {
      if (this.willRetry(connection, error)) return;
      this.settleHandshake.reject(error);
      this.onerror?.(error);
    };
    connection.onclose = () => {
      if (this.retryPending && this.connection === connection) {
        this.scheduleRetry(connection.error!, backend, startedAt);
        return;
      }
      this.pipeline?.close(connection.error);
      if (audit && this.result) emitTo(audit, sessionCloseEvent('client', this.result, openedAt, traffic, connection.session.keyUpdates, sessionEnd(this.closeCalled, connection.error), connection.error));
      else if (audit) emitTo(audit, handshakeFailureEvent('client', connection.error ?? new ClosedError('closed before the handshake completed'), undefined, startedAt));
      this.settleHandshake.reject(connection.error ?? new ClosedError('closed before the handshake completed'));
      this.fireClose();
    };
    connection.start();
    // The ClientHello is out: make the next connection's key pair while the server answers.
    keyShares.prepare(backend);
  }

  /** Connecting failed for good: reject everything, report once, fire onclose; throws the error. */
  private failToConnect(err: unknown, startedAt: number): never {
    const error = this.closedBeforeOpen ? new ClosedError('closed while connecting') : toPqmcpError(err);
    this.settleHandshake.reject(error);
    for (const e of this.early.splice(0)) e.reject(error);
    emitTo(this.resolved.audit, handshakeFailureEvent('client', error, undefined, startedAt));
    try {
      if (!this.closedBeforeOpen) this.onerror?.(error);
    } catch {
      // Contained: never throw from event handlers.
    }
    defer(() => this.fireClose());
    throw error;
  }

  /** A busy refusal before the handshake completed, with retries left: retry instead of failing. */
  private willRetry(connection: Connection, error: PqmcpError): boolean {
    if (this.retryPending) return this.connection === connection;
    if (error.code !== 'ERR_SERVER_BUSY' || this.result || this.closeCalled || this.closedBeforeOpen) return false;
    if (!this.busy.left || this.connection !== connection) return false;
    this.retryPending = true;
    return true;
  }

  /** Dialing was refused busy: wait the backoff (true), or give up (false: not busy, no retries left, or closed). */
  private async waitToRedial(error: PqmcpError): Promise<boolean> {
    if (error.code !== 'ERR_SERVER_BUSY' || this.closedBeforeOpen || !this.busy.left) return false;
    await this.busy.wait(this.busy.next(error));
    return !this.closedBeforeOpen;
  }

  private scheduleRetry(error: PqmcpError, backend: CryptoBackend, startedAt: number): void {
    this.busy.after(this.busy.next(error), () => {
      void this.connect(backend, startedAt).then(
        () => {
          this.retryPending = false;
          // What was sent before the refusal goes out again, in order, on the new connection.
          for (const e of this.early) this.sendEarly(e);
        },
        (err: unknown) => {
          this.retryPending = false;
          try {
            this.failToConnect(err, startedAt);
          } catch {
            // Reported through onerror / onclose.
          }
        },
      );
    });
  }

  /** Send (or re-send) one early message on the current connection. */
  private sendEarly(entry: EarlySend): void {
    this.connection!.send(entry.data, entry.confirm).then(
      () => {
        this.early = this.early.filter((e) => e !== entry);
        entry.resolve();
      },
      (error: PqmcpError) => {
        // Refused as busy: it stays, to be sent again after the retry.
        if (this.retryPending) return;
        this.early = this.early.filter((e) => e !== entry);
        entry.reject(error);
      },
    );
  }

  async send(message: JsonRpcMessage, _options?: McpSendOptions): Promise<void> {
    if (!this.connection) throw new ClosedError(this.started ? 'transport is not connected' : 'transport not started');
    if (this.resolved.hooks.length > 0) {
      // Hooks need the verified server: messages wait for the handshake (they would be
      // queued until it completes anyway).
      await this.handshake;
      return this.pipeline!.toPeer(message as JsonRpcMessage);
    }
    // Without hooks, only the server's requests are bounded; they come after the handshake,
    // so what is sent before it takes the direct path (1-RTT, busy retries) below.
    if (this.pipeline) return this.pipeline.toPeer(message as JsonRpcMessage);
    const data = encodeMessage(message);
    if (this.busy.policy && !this.result) {
      // Before the handshake: kept until settled, so a busy refusal can send it again.
      return new Promise<void>((resolve, reject) => {
        const entry: EarlySend = { data, confirm: isRequest(message), resolve, reject };
        this.early.push(entry);
        if (!this.retryPending) this.sendEarly(entry);
      });
    }
    return this.connection.send(data, isRequest(message));
  }

  async close(): Promise<void> {
    if (this.retryPending) {
      // Waiting to retry a busy server: give up now.
      this.closeCalled = true;
      this.closedBeforeOpen = true;
      this.retryPending = false;
      this.busy.stop();
      const error = new ClosedError('closed while waiting to retry a busy server');
      this.settleHandshake.reject(error);
      for (const e of this.early.splice(0)) e.reject(error);
      this.dialing?.abort();
      // After the rejections above reach their handlers (the SDK fails its requests on close).
      defer(() => this.fireClose());
      return;
    }
    if (this.connection) {
      if (this.connection.state === 'open') this.closeCalled = true;
      return this.connection.close();
    }
    if (!this.started) {
      this.started = true;
      this.settleHandshake.reject(new ClosedError('closed before start'));
      this.fireClose();
      return;
    }
    // Still connecting: abandon; start() rejects with ClosedError and onclose fires.
    this.closedBeforeOpen = true;
    this.busy.stop();
    this.dialing?.abort();
  }

  // --- internals ---------------------------------------------------------------------------

  private async open(traffic: Traffic): Promise<OpenedSocket> {
    const dialing = this.platform.dial({
      url: this.url,
      protocol: SUBPROTOCOL,
      openTimeoutMs: this.resolved.connection.handshakeTimeoutMs,
      maxPayload: this.resolved.maxPayload,
      headers: this.options.headers,
      socketOptions: this.options.webSocketOptions,
      traffic,
    });
    this.dialing = dialing;
    if (this.closedBeforeOpen) dialing.abort();
    const opened = await dialing.opened;
    if (this.closedBeforeOpen) {
      dialing.abort();
      throw new ClosedError('closed while connecting');
    }
    return opened;
  }

  private deliver(data: Uint8Array, failure: DeliveryFailure): void {
    const message = decodeForDelivery(data, failure);
    if (message === undefined) return;
    if (this.pipeline) this.pipeline.fromPeer(message as JsonRpcMessage, data.length, data);
    else this.onmessage?.(message);
  }

  private hookPipeline(connection: Connection, result: HandshakeResult): MessagePipeline {
    return new MessagePipeline(
      this.resolved.hooks,
      { role: 'client', peer: result.peer, sessionId: sessionIdOf(result), remoteAddress: undefined },
      {
        toPeer: (data, message) => connection.send(data, isRequest(message)),
        toLocal: (message) => this.onmessage?.(message),
        onerror: (error) => this.onerror?.(error),
      },
      { ...(this.resolved.maxRequestBytesInFlight > 0 ? { maxRequestBytes: this.resolved.maxRequestBytesInFlight } : {}), now: holdNow(this.resolved.clock) },
    );
  }

  private fireClose(): void {
    if (this.closeFired) return;
    this.closeFired = true;
    try {
      this.onclose?.();
    } catch {
      // Contained.
    }
  }
}
