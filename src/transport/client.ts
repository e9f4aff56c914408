/**
 * The MCP client transport: the SDK's `Transport` over a pqmcp session on a WebSocket.
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
 *   the application sees it (message-hooks.ts, as on the listener).
 */
import type { Agent } from 'node:http';
import type { SecureContextOptions } from 'node:tls';
import type { McpOnMessage, McpSendOptions } from './mcp-types.js';
import { ClosedError, InvalidArgumentError, toPqmcpError } from '../errors.js';
import { normaliseNameConstraints } from '../identity/name-constraints.js';
import type { PqmcpError } from '../errors.js';
import type { HandshakeResult } from '../handshake/types.js';
import type { VerifiedPeer } from '../identity/trust.js';
import type { BackendName, CryptoBackend, XWingKeyPair } from '../crypto/types.js';
import { Session } from '../session/session.js';
import type { SessionOptions } from '../session/session.js';
import { Connection } from './connection.js';
import { keyShares } from './key-shares.js';
import { checkEndpoint, endpointOfUrl } from '../handshake/endpoint.js';
import { decodeForDelivery, failureOn, encodeMessage, isRequest } from './jsonrpc.js';
import type { DeliveryFailure } from './jsonrpc.js';
import { MessagePipeline } from './message-hooks.js';
import { holdNow } from './cancelled-hold.js';
import type { JsonRpcMessage } from './message-hooks.js';
import { DEFAULTS, SUBPROTOCOL, localIdentity, resolveBackend, resolveOptions } from './options.js';
import { MAX_MESSAGES_PER_TURN } from './inbox.js';
import type { PqmcpTransportOptions, ResolvedOptions } from './options.js';
import { sessionIdOf } from './auth-info.js';
import { SessionGuard, guardOptions } from './session-guard.js';
import { busyRetryDelay, resolveBusyRetry } from './busy-retry.js';
import type { BusyRetryEvent, BusyRetryOptions, ResolvedBusyRetry } from './busy-retry.js';
import type { Dialer, Dialing, OpenedSocket } from './dialer.js';
import { wsDialer } from './ws-dialer.js';
import type { Traffic } from './ws-socket.js';
import { emitTo } from '../audit/events.js';
import type { TicketStore } from '../resumption/client-tickets.js';
import { handshakeFailureEvent, sessionCloseEvent, sessionEnd, sessionOpenEvent } from '../audit/session-events.js';

export interface PqmcpClientOptions extends PqmcpTransportOptions {
  /**
   * Refuse the server unless its attested agent id is exactly this. Required unless
   * `allowAnyServer` is set: a trust store says "a trusted issuer vouched for this agent",
   * not "this is the server I meant" (the hostname check of TLS).
   */
  expectedServerId?: string;
  // --- roles and name constraints (issue 11 item 3; docs/protocol.md 6.5) ---
  /**
   * Refuse the server unless its agent id is within one of these id prefixes (the syntax of
   * trust-store name constraints, docs/protocol.md 6.4): "agent://acme/tools/" accepts
   * "agent://acme/tools/eu-1" and its siblings, "agent://acme/tools" also that id itself.
   * For a pool of replicas with their own ids. Outside: NameConstraintError (alert 102).
   * With expectedServerId, both apply.
   */
  serverIdConstraints?: readonly string[];
  /**
   * Accept any server agent the trust store accepts. Only for closed deployments where
   * every trusted agent may serve: any credential a trusted issuer gave a server (with
   * usage server or both) can then answer for every URL. Emits a one-time process warning
   * (code PQMCP_ALLOW_ANY_SERVER). Not together with expectedServerId or serverIdConstraints.
   */
  allowAnyServer?: boolean;
  // --- protocol revision (issue 11): endpoint binding ---
  /**
   * The endpoint this client means, sent in the ClientHello and checked by the server
   * (docs/protocol.md, section 5.7): "//authority/path" or a service name ("svc:billing").
   * Default: "//" + the URL's host[:port] + its path. Set it when you dial through a proxy or
   * tunnel under another name than the one the server answers for.
   */
  endpoint?: string;
  /** Extra HTTP headers for the WebSocket upgrade request. */
  headers?: Record<string, string>;
  /**
   * Further `ws` client options (TLS `ca`, `agent`, `family`...). pqmcp fixes
   * perMessageDeflate (off), maxPayload (option above) and the subprotocol.
   */
  webSocketOptions?: PqmcpWebSocketOptions;

  // --- resumption (docs/protocol.md section 15) ---
  /**
   * Keep the server's resumption tickets here and offer one on the next connection to the
   * same server id and URL: a resumed handshake makes no signatures (PSK + fresh X-Wing).
   * Share one `MemoryTicketStore` between the transports of a process. Default: none.
   * Leave it unset for a server that must always authenticate with its signature: a ticket
   * key holder can impersonate a server to a resuming client (docs/threat-model.md).
   */
  tickets?: TicketStore;

  // --- busy retry (issue 10; busy-retry.ts) ---
  /**
   * Retry a server that refuses the connection as busy (ERR_SERVER_BUSY: close code 4006,
   * alert server_busy, or HTTP 429/503 to the upgrade) before the handshake completed, with bounded, jittered exponential backoff. Default
   * { attempts: 5, baseDelayMs: 250, maxDelayMs: 5000 }; `false` disables it.
   */
  busyRetry?: false | BusyRetryOptions;
  /** Hears of each retry of a busy server (attempt, delay, the refusal) before it waits. */
  onBusyRetry?: (event: BusyRetryEvent) => void;
}

/** NewSessionTickets a client keeps from one connection (a server sends 1 by default, at most 8). */
export const MAX_TICKETS_PER_CONNECTION = 8;

/** The key a client's tickets are kept under: the server id it expects and the endpoint URL. */
export function ticketStoreKey(url: URL, expectedServerId: string | undefined): string {
  return `${expectedServerId ?? '*'} ${url.origin}${url.pathname}`;
}

/** A send() made before the handshake completed: kept until it settles, to be sent again on a retry. */
interface EarlySend {
  data: Uint8Array;
  confirm: boolean;
  resolve: () => void;
  reject: (error: PqmcpError) => void;
}

const noop = (): void => {};

let warnedAnyServer = false;

/**
 * For a caller that warns about allowAnyServer itself, in its own words (the `pqmcp connect`
 * bridge, about --any-server): the library's one-time SecurityWarning is then not emitted,
 * so one choice gives one warning. Not exported from the package.
 */
export function anyServerWarningGiven(): void {
  warnedAnyServer = true;
}

/** The one-time warning of allowAnyServer (process.emitWarning where there is a process, else console.warn). */
function warnAnyServer(): void {
  if (warnedAnyServer) return;
  warnedAnyServer = true;
  const text = 'pqmcp: allowAnyServer is set: this client accepts ANY server its trust store vouches for, for every URL. Set expectedServerId or serverIdConstraints unless every trusted agent may serve.';
  const proc = (globalThis as { process?: { emitWarning?: (warning: string, options: { code: string; type: string }) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(text, { code: 'PQMCP_ALLOW_ANY_SERVER', type: 'SecurityWarning' });
  else console.warn(text);
}

/**
 * Which server the client accepts: expectedServerId and/or serverIdConstraints, or an
 * explicit allowAnyServer (warned about once per process). Returns the normalised constraints.
 */
function checkServerChoice(options: PqmcpClientOptions): readonly string[] | undefined {
  const { expectedServerId, serverIdConstraints, allowAnyServer } = options;
  if (allowAnyServer !== undefined && typeof allowAnyServer !== 'boolean') throw new InvalidArgumentError('allowAnyServer must be a boolean');
  if (expectedServerId !== undefined && typeof expectedServerId !== 'string') throw new InvalidArgumentError('expectedServerId must be a string');
  const constraints = serverIdConstraints === undefined ? undefined : normaliseNameConstraints(serverIdConstraints, 'serverIdConstraints');
  const named = expectedServerId !== undefined || constraints !== undefined;
  if (allowAnyServer === true) {
    if (named) throw new InvalidArgumentError('give expectedServerId or serverIdConstraints, or allowAnyServer: true, not both');
    warnAnyServer();
  } else if (!named) {
    throw new InvalidArgumentError(
      'set expectedServerId to the server agent id, or serverIdConstraints to the ids you accept (or allowAnyServer: true to accept any agent your trust store accepts)',
    );
  }
  return constraints;
}

/**
 * @internal What differs between runtimes: how the WebSocket opens and which crypto
 * backends exist. The browser entry point passes its own (standard WebSocket, noble).
 */
export interface ClientPlatform {
  dial: Dialer;
  resolveBackend(choice: PqmcpClientOptions['backend']): Promise<CryptoBackend>;
}

const NODE_PLATFORM: ClientPlatform = { dial: wsDialer, resolveBackend };

/**
 * The `ws` client options pqmcp passes through (a `ws` ClientOptions object without
 * perMessageDeflate, maxPayload and headers is assignable). Declared here so the published
 * types do not need `@types/ws`.
 */
export interface PqmcpWebSocketOptions extends SecureContextOptions {
  agent?: Agent;
  family?: number;
  localAddress?: string;
  origin?: string;
  followRedirects?: boolean;
  maxRedirects?: number;
  handshakeTimeout?: number;
  rejectUnauthorized?: boolean;
  protocolVersion?: number;
  skipUTF8Validation?: boolean;
}

/** An MCP client `Transport` (SDK 1.x and 2.x) over a pqmcp session. */
export class PqmcpClientTransport {
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
  private mcpProtocolVersion: string | undefined;
  private mcpSupportedVersions: readonly string[] | undefined;
  private pipeline: MessagePipeline | undefined;
  private closeCalled = false;
  private readonly busyRetry: ResolvedBusyRetry | undefined;
  /** Retries of a busy server so far. */
  private retries = 0;
  /** Set from the moment a busy refusal is to be retried until the sends are re-issued. */
  private retryPending = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Ends a wait before dialing again (close() during the backoff). */
  private wakeRedial: (() => void) | undefined;
  private early: EarlySend[] = [];
  private settleHandshake!: { resolve: (r: HandshakeResult) => void; reject: (e: PqmcpError) => void };

  constructor(
    url: string | URL,
    private readonly options: PqmcpClientOptions,
    private readonly platform: ClientPlatform = NODE_PLATFORM,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InvalidArgumentError('url must be an absolute ws:// or wss:// URL');
    }
    if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new InvalidArgumentError('url must be a ws:// or wss:// URL');
    this.url = parsed;
    this.serverIdConstraints = checkServerChoice(options);
    this.endpoint = options.endpoint !== undefined ? checkEndpoint(options.endpoint, 'endpoint') : endpointOfUrl(parsed);
    const t = options.tickets as Partial<TicketStore> | undefined;
    if (t !== undefined && (typeof t !== 'object' || t === null || typeof t.take !== 'function' || typeof t.put !== 'function')) {
      throw new InvalidArgumentError('tickets must be a TicketStore (e.g. new MemoryTicketStore())');
    }
    this.resolved = resolveOptions(options);
    this.busyRetry = resolveBusyRetry(options.busyRetry);
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

  /** The MCP protocol version the SDK negotiated (set through setProtocolVersion). */
  get protocolVersion(): string | undefined {
    return this.mcpProtocolVersion;
  }

  setProtocolVersion(version: string): void {
    this.mcpProtocolVersion = version;
  }

  /** The protocol versions the SDK accepts (2.x calls this during connect). */
  get supportedProtocolVersions(): readonly string[] | undefined {
    return this.mcpSupportedVersions;
  }

  setSupportedProtocolVersions(versions: string[]): void {
    this.mcpSupportedVersions = Object.freeze([...versions]);
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
    // A ticket is single use: a busy refusal spends it, the retry runs a full handshake.
    const resumeTicket = store?.take(storeKey, Date.now());
    const sessionOptions: SessionOptions = {
      ...(resumeTicket ? { resumeTicket } : {}),
      backend,
      identity: localIdentity(this.options.identity),
      trust: this.options.trust,
      ...(this.options.expectedServerId !== undefined ? { expectedPeerId: this.options.expectedServerId } : {}),
      ...(this.serverIdConstraints !== undefined ? { peerIdConstraints: this.serverIdConstraints } : {}),
      ...(this.options.suites !== undefined ? { suites: this.options.suites } : {}),
      ...(this.options.clockSkewSeconds !== undefined ? { clockSkewSeconds: this.options.clockSkewSeconds } : {}),
      now: this.resolved.clock.now,
      maxMessageSize: this.resolved.maxMessageSize,
      maxKeyUpdatesPerCall: DEFAULTS.maxKeyUpdatesPerTurn,
      ...(this.resolved.keyUpdateRate ? { keyUpdateRate: this.resolved.keyUpdateRate } : {}),
      maxMessagesPerCall: MAX_MESSAGES_PER_TURN,
      applicationPadding: this.resolved.applicationPadding,
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
        const endpoint = `${this.url.origin}${this.url.pathname}`;
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
    setImmediate(() => this.fireClose());
    throw error;
  }

  /** A busy refusal before the handshake completed, with retries left: retry instead of failing. */
  private willRetry(connection: Connection, error: PqmcpError): boolean {
    if (this.retryPending) return this.connection === connection;
    if (error.code !== 'ERR_SERVER_BUSY' || this.result || this.closeCalled || this.closedBeforeOpen) return false;
    if (!this.busyRetry || this.retries >= this.busyRetry.attempts || this.connection !== connection) return false;
    this.retryPending = true;
    return true;
  }

  /** Count one more busy retry, tell onBusyRetry, and return its backoff delay. */
  private nextRetryDelay(error: PqmcpError): number {
    const policy = this.busyRetry!;
    const attempt = ++this.retries;
    const delayMs = busyRetryDelay(policy, attempt);
    try {
      this.options.onBusyRetry?.({ attempt, attempts: policy.attempts, delayMs, error });
    } catch {
      // Contained.
    }
    return delayMs;
  }

  /** Dialing was refused busy: wait the backoff (true), or give up (false: not busy, no retries left, or closed). */
  private async waitToRedial(error: PqmcpError): Promise<boolean> {
    const policy = this.busyRetry;
    if (error.code !== 'ERR_SERVER_BUSY' || this.closedBeforeOpen || !policy || this.retries >= policy.attempts) return false;
    const delayMs = this.nextRetryDelay(error);
    await new Promise<void>((resolve) => {
      this.wakeRedial = resolve;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        resolve();
      }, delayMs);
    });
    this.wakeRedial = undefined;
    return !this.closedBeforeOpen;
  }

  private scheduleRetry(error: PqmcpError, backend: CryptoBackend, startedAt: number): void {
    const delayMs = this.nextRetryDelay(error);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
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
    }, delayMs);
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
    if (this.busyRetry && !this.result) {
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
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.wakeRedial?.();
      const error = new ClosedError('closed while waiting to retry a busy server');
      this.settleHandshake.reject(error);
      for (const e of this.early.splice(0)) e.reject(error);
      this.dialing?.abort();
      // After the rejections above reach their handlers (the SDK fails its requests on close).
      setImmediate(() => this.fireClose());
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
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.wakeRedial?.();
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
