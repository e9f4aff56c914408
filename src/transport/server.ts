/**
 * The pqmcp server listener: accepts WebSocket connections (on its own port, or on a path
 * of an existing http/https server), runs the handshake on each, and hands every
 * authenticated connection to the application as a Transport plus the verified peer.
 * Its options, their defaults and checks are in server-options.ts; the own port's TCP front
 * and HTTP server in own-port.ts; each session's Transport in server-transport.ts.
 *
 *   const server = await serveMcp({ identity, trust, port: 8443 }, (peer) => {
 *     const mcp = new McpServer({ name: 'tools', version: '1.0.0' });
 *     // register tools; each request's extra.authInfo.clientId === peer.agentId
 *     return mcp;
 *   });
 *
 * Sharp edges:
 * - Nothing reaches application code before the client is verified: 'session' fires only
 *   after the client's credential, signature and Finished have checked out. Refused
 *   clients are reported on 'clientError' (with the typed error) and never seen otherwise.
 * - The edge (edge.ts): at most `maxPendingHandshakes` unfinished handshakes (default 64),
 *   `maxPendingPerSource` per client address (default 8); a newcomer is admitted by
 *   evicting (close code 4006) the oldest silent handshake of the source holding the most.
 *   The ClientHello must be complete within `firstFlightTimeoutMs` (default 2 s). The
 *   handshake's encapsulation and signature run in worker threads behind a fair, bounded,
 *   per-source-rated queue; when it refuses, the client gets server_busy before any of it.
 *   Behind a reverse proxy the client address is the one a `trustedProxies` peer reports
 *   (X-Forwarded-For; or, with `proxyProtocol`, the PROXY header read by proxy-front.ts from
 *   a TCP front that listens in place of the HTTP server and refuses every other peer).
 *   On its own port, every TCP connection holds a slot from its accept until its upgrade
 *   request, for at most `firstFlightTimeoutMs` (pre-upgrade.ts); one evicted then gets
 *   HTTP 503 (Retry-After: 1). Attached to the caller's `server`, that phase is the
 *   server's own (its `headersTimeout`, `requestTimeout`, `maxConnections`).
 *   At the upgrade request, new connections per client address are rate-limited
 *   (`connectionRatePerSource`, default 20/s, burst 60): past it the upgrade is answered
 *   HTTP 429 after a one-second hold, and no WebSocket or Session is built.
 *   Before that, on its own port, new TCP connections per source are rate-limited at the
 *   accept (`acceptRatePerSource`, default ten times the connection rate; with `proxyProtocol`,
 *   at the header, for the client it names; a trusted X-Forwarded-For proxy's are not):
 *   past it a connection is answered 429 at once and closed, and takes no slot.
 * - Upgrades must offer the `pqmcp.v1` subprotocol (else HTTP 400); with `path` set, other
 *   paths get 404 (or are left to other 'upgrade' listeners of a shared http.Server).
 * - `host` defaults to 127.0.0.1: listening on a network is an explicit choice.
 * - An agent id holds at most `maxSessionsPerAgent` sessions (default 256): one more is
 *   refused right after its handshake (alert tooManySessions, close code 4020).
 * - Sessions end when a credential expires, when the trust store stops trusting the peer,
 *   and after `maxSessionLifetimeMs` (session-guard.ts); each end is reported on
 *   'clientError' with the peer.
 * - Partly received messages of all sessions share one budget (`maxPartialMessageBytes`,
 *   receive-budget.ts).
 * - Each session's requests in flight hold at most `maxRequestBytesInFlight` bytes (default
 *   16 MiB, plus one request when none is in flight): past it a request is refused with
 *   JSON-RPC -32005 (request-tracker.ts), so every session runs a MessagePipeline, with or
 *   without hooks. All sessions' together share `maxRequestBytesInFlightTotal` (default
 *   256 MiB; request-budget.ts): past it a request that takes its agent past its fair share
 *   (or its session past an even part of that) is refused the same way.
 *   Either bound makes every session run the pipeline: only with both 0 and no hooks do
 *   messages take the direct path (no envelope check, no MAX_TRACKED; review 11, R11-2).
 * - Failures before the peer is verified are reported ('clientError', the handshake.failure
 *   audit event) at most at the `failureReports` rate per source (default 20 per 10 s, 200
 *   over all sources); the rest are counted and summarised per window
 *   ('failuresSuppressed', handshake.failure.summary). Verified peers' failures: always.
 * - close() stops accepting, aborts unfinished handshakes, closes every session with the
 *   authenticated close, and (own port only) closes the HTTP server.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { copyBytes, equalBytes } from '../bytes.js';
import { InvalidArgumentError, SessionLimitError, toPqmcpError } from '../errors.js';
import type { PqmcpError } from '../errors.js';
import type { CryptoBackend } from '../crypto/types.js';
import type { EncodedLocalIdentity } from '../handshake/types.js';
import type { Credential } from '../identity/credential.js';
import type { VerifiedPeer } from '../identity/trust.js';
import { Session } from '../session/session.js';
import type { ServerTicketConfig } from '../handshake/resumption.js';
import { TicketReplayGuard } from '../resumption/replay.js';
import { TicketKeys } from '../resumption/ticket-keys.js';
import { CloseCode, closeReason } from './close-codes.js';
import { Connection } from './connection.js';
import { SUBPROTOCOL, localIdentity, resolveBackend, resolveOptions, sharedSessionOptions } from './options.js';
import type { ResolvedOptions } from './options.js';
import { PqmcpServerTransport } from './server-transport.js';
import { checkListenOptions, resolveServerLimits, withGates } from './server-options.js';
import type { PqmcpServerOptions, ServerLimits } from './server-options.js';
import { listenOwnPort } from './own-port.js';
import { holdNow } from './cancelled-hold.js';
import { SessionGuard, guardOptions } from './session-guard.js';
import { renewedIdentity } from './own-credential.js';
import type { GuardOptions } from './session-guard.js';
import { Edge } from './edge.js';
import { answerAndClose, destroySocket, httpAnswer } from './http-answer.js';
import { attachWebSocket, wsMessageSocket } from './ws-socket.js';
import type { Traffic } from './ws-socket.js';
import { emitTo } from '../audit/events.js';
import type { HandshakeFailureSummaryEvent } from '../audit/events.js';
import { FailureReportLimiter } from '../audit/failure-limiter.js';
import { sourceKey } from './admission.js';
import { checkAcceptedEndpoints } from '../handshake/endpoint.js';
import { handshakeFailureEvent, sessionCloseEvent, sessionEnd, sessionOpenEvent } from '../audit/session-events.js';

// The listener's options and limits live in server-options.ts; re-exported for importers of this module.
export { DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT_TOTAL } from './server-options.js';
export type { PqmcpServerOptions, ServerTicketOptions } from './server-options.js';
export { DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT } from './options.js';

/** Where a connection came from, for logs. */
export interface ClientInfo {
  /** The client's address: the TCP peer, or what a `trustedProxies` peer reports for it. */
  remoteAddress: string | undefined;
  /** Set when the error happened after the client was verified (e.g. the session factory threw). */
  peer?: VerifiedPeer;
}

export interface PqmcpServerEvents {
  /** An authenticated session: connect an MCP server to `transport`. */
  session: [transport: PqmcpServerTransport, peer: VerifiedPeer];
  /** A connection that failed before (or while) being handed over: refused clients, timeouts, busy. */
  clientError: [error: PqmcpError, info: ClientInfo];
  /** The HTTP server failed (own server only). */
  error: [error: Error];
  /**
   * Failures of one source before verification held back in a window by `failureReports`
   * (not reported on 'clientError'): how many, by code. Also written as an audit event.
   */
  failuresSuppressed: [summary: HandshakeFailureSummaryEvent];
  /**
   * A resumption ticket was refused (typed error: expired, replayed, revoked...); a full
   * handshake follows. Its code is also the `ticketRefused` of the connection's session.open
   * or handshake.failure audit event (or counted in a summary's `ticketsRefused`).
   */
  ticketRefused: [error: PqmcpError, info: ClientInfo];
}

export class PqmcpServer extends EventEmitter<PqmcpServerEvents> {
  private readonly handshakes = new Set<Connection>();
  private readonly live = new Set<PqmcpServerTransport>();
  /** Live sessions per agent id (for maxSessionsPerAgent). */
  private readonly perAgent = new Map<string, number>();
  /** The session guard's settings for sessions presenting `identity` (its notAfter). */
  private guardOptions: GuardOptions;
  private readonly wss: WebSocketServer;
  private closing: Promise<void> | undefined;
  private draining = false;
  /** The configured `endpoints`, checked; undefined: derived per connection. */
  private readonly endpoints: readonly string[] | undefined;
  private ticketKeys: TicketKeys | undefined;
  private readonly replay: TicketReplayGuard | undefined;
  /** The `failureReports` rate; undefined: off. */
  private readonly failures: FailureReportLimiter | undefined;
  private readonly upgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.onUpgrade(req, socket, head);

  /** @internal Use listen() or serveMcp(). */
  constructor(
    /** The HTTP server carrying the WebSocket upgrades (ours, or the one passed in). */
    readonly httpServer: HttpServer | HttpsServer,
    private readonly ownsServer: boolean,
    private readonly backend: CryptoBackend,
    /** Its own copy of the credential (listen(), setCredential). */
    private identity: EncodedLocalIdentity,
    private readonly options: PqmcpServerOptions,
    private readonly resolved: ResolvedOptions,
    private readonly edge: Edge,
    private readonly limits: ServerLimits,
    /** The server that listens: the HTTP server, or (with `proxyProtocol`) the TCP front that feeds it. */
    private readonly listener: NetServer = httpServer,
  ) {
    super();
    this.endpoints = options.endpoints !== undefined ? checkAcceptedEndpoints(options.endpoints, 'endpoints') : undefined;
    this.guardOptions = guardOptions(resolved, options.trust, backend, identity);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: resolved.maxPayload,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    httpServer.on('upgrade', this.upgradeListener);
    if (limits.failureReports) {
      this.failures = new FailureReportLimiter(limits.failureReports, (summary) => {
        emitTo(this.resolved.audit, summary);
        if (this.listenerCount('failuresSuppressed') > 0) this.emit('failuresSuppressed', summary);
      });
    }
    if (options.tickets) {
      this.ticketKeys = options.tickets.keys;
      this.replay = new TicketReplayGuard(options.tickets.replayCapacity, options.tickets.replayPerAgent);
    }
  }

  /**
   * Present a renewed credential from now on (own-credential.ts): the same key and agent id,
   * the server role, valid now. Handshakes already under way and live sessions keep the
   * credential they presented, and end at its notAfter as before (their clients hold that
   * one); new handshakes present this one. With `tickets`, tickets issued under the
   * credential before no longer resume here (they name it: a full handshake shows the client
   * the renewed one), and a handshake under way gets none. The credential already presented
   * (the same bytes) changes nothing. Throws (and changes nothing) when it does not pass.
   */
  setCredential(credential: Uint8Array | Credential): void {
    const renewed = renewedIdentity(this.identity, credential, this.resolved.clock);
    if (equalBytes(renewed.credential, this.identity.credential)) return;
    this.guardOptions = guardOptions(this.resolved, this.options.trust, this.backend, renewed);
    this.identity = renewed;
  }

  /** Rotate ticket keys at runtime (e.g. after the key file changed). Needs `tickets` at listen(). */
  setTicketKeys(keys: TicketKeys): void {
    if (!this.ticketKeys) throw new InvalidArgumentError('setTicketKeys needs the tickets option at listen()');
    if (!(keys instanceof TicketKeys)) throw new InvalidArgumentError('keys must be TicketKeys');
    this.ticketKeys = keys;
  }

  /**
   * The per-connection resumption settings. `endpoint` (the request path) is only the
   * fallback: the handshake binds tickets to the endpoint the client named in its
   * ClientHello and this listener accepted (authority included; docs/protocol.md 15.4).
   */
  private ticketConfig(endpoint: string, info: ClientInfo, refusedHere: (code: string) => void): ServerTicketConfig | undefined {
    const t = this.options.tickets;
    if (!t || !this.ticketKeys || !this.replay) return undefined;
    const presenting = this.identity;
    return {
      stillPresented: () => this.identity === presenting,
      keys: this.ticketKeys,
      replay: this.replay,
      endpoint,
      ...(t.lifetimeSeconds !== undefined ? { lifetimeSeconds: t.lifetimeSeconds } : {}),
      ...(t.ticketsPerSession !== undefined ? { ticketsPerSession: t.ticketsPerSession } : {}),
      ...(t.maxTicketLength !== undefined ? { maxTicketLength: t.maxTicketLength } : {}),
      onRefused: (error) => {
        refusedHere(error.code);
        if (this.listenerCount('ticketRefused') > 0) this.emit('ticketRefused', error, info);
      },
    };
  }

  /** Authenticated sessions currently open. */
  get sessions(): ReadonlySet<PqmcpServerTransport> {
    return this.live;
  }

  /** Bytes of partly received messages held now, across all sessions. */
  get partialMessageBytes(): number {
    return this.limits.receiveBudget.total;
  }

  /** Bytes of the clients' requests in flight now (cancelled ones still held included; expired holds dropped on read), across all sessions; 0 without maxRequestBytesInFlightTotal. */
  get requestBytesInFlight(): number {
    return this.limits.requestBudget?.total ?? 0;
  }

  /**
   * Connections holding an admission slot: handshakes in progress, and (own port only) TCP
   * connections that have not yet sent their upgrade request. Evicted ones still closing
   * are not counted.
   */
  get pendingHandshakes(): number {
    return this.edge.pending;
  }

  /** WebSocket upgrades refused (HTTP 429) by `connectionRatePerSource` so far. */
  get refusedConnections(): number {
    return this.edge.refusedConnections;
  }

  /** TCP connections refused at their accept (HTTP 429 at once) by `acceptRatePerSource` so far. */
  get refusedAccepts(): number {
    return this.edge.refusedAccepts;
  }

  /** Which crypto backend the listener uses. */
  get backendName(): string {
    return this.backend.name;
  }

  /** Connections refused unread because their peer is not a trusted proxy (`proxyProtocol` only). */
  get refusedDirectConnections(): number {
    return this.edge.refusedDirect;
  }

  address(): AddressInfo {
    const address = this.listener.address();
    if (address === null || typeof address === 'string') throw new InvalidArgumentError('server is not listening on a TCP port');
    return address;
  }

  /** ws:// URL of this listener (wss:// when attached to an https server). */
  get url(): string {
    const { address, family, port } = this.address();
    const host = family === 'IPv6' ? `[${address}]` : address;
    const scheme = 'setSecureContext' in this.httpServer ? 'wss' : 'ws';
    return `${scheme}://${host}:${port}${this.options.path ?? '/'}`;
  }

  /** False once drain() or close() was called: new connections are refused (HTTP 503). */
  get accepting(): boolean {
    return !this.draining && this.closing === undefined;
  }

  /**
   * Stop accepting new connections (HTTP 503) and let live sessions and handshakes already
   * under way go on; close() ends them. For graceful shutdown behind a load balancer.
   */
  drain(): void {
    this.draining = true;
  }

  /** Stop accepting, abort unfinished handshakes, close every session cleanly. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.httpServer.off('upgrade', this.upgradeListener);
    const closingServer = this.ownsServer
      ? new Promise<void>((resolve) => {
          this.listener.close(() => resolve());
          // With a TCP front the HTTP server never listened: closing it only drops its idle connections.
          if (this.listener !== this.httpServer) this.httpServer.close(() => {});
          this.httpServer.closeIdleConnections?.();
        })
      : Promise.resolve();
    const all = [...[...this.handshakes].map((c) => c.close()), ...[...this.live].map((t) => t.close())];
    await Promise.all(all);
    await this.edge.close();
    this.failures?.close();
    this.wss.close();
    if (this.ownsServer) this.httpServer.closeAllConnections?.();
    await closingServer;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroySocket);
    // Evicted before its request arrived (answered 503 and ending): nothing more to do.
    if (!socket.writable) return void socket.destroy();
    this.edge.upgrading(socket);
    if (this.closing) return reject(socket, 503, 'server is closing');
    if (this.draining) return reject(socket, 503, 'server is draining');
    const path = this.options.path;
    if (path !== undefined && pathname(req.url) !== path) {
      // On a shared server another 'upgrade' listener may own this path.
      if (!this.ownsServer && this.httpServer.listenerCount('upgrade') > 1) return;
      return reject(socket, 404, 'no pqmcp endpoint at this path');
    }
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) return reject(socket, 400, `the ${SUBPROTOCOL} WebSocket subprotocol is required`);
    const remoteAddress = this.edge.clientAddress(req);
    // Past its source's connection rate: HTTP 429 (after a hold), nothing else is built.
    if (!this.edge.admitUpgrade(remoteAddress, socket)) return;
    this.wss.handleUpgrade(req, socket, head, (ws, request) => this.onConnection(ws, request, remoteAddress, socket));
  }

  /** `socket`: the upgraded TCP (or TLS) socket under `ws`. */
  private onConnection(ws: WebSocket, req: IncomingMessage, remoteAddress: string | undefined, socket: Duplex): void {
    // Read once, here: no closure below may name `req`, or the upgrade request (its headers,
    // raw headers and stream state) would live in their shared context for the session's life.
    const endpoint = pathname(req.url);
    const info: ClientInfo = { remoteAddress };
    const startedAt = Date.now();
    const traffic: Traffic = { bytesIn: 0, bytesOut: 0 };
    // The code of the resumption ticket refused on this connection (one ClientHello, so at
    // most one): carried by the connection's session.open or handshake.failure audit event.
    let ticketRefused: string | undefined;
    if (this.closing) {
      ws.on('error', () => {});
      ws.close(CloseCode.cancelled, closeReason(CloseCode.cancelled));
      return;
    }
    let connection: Connection;
    // The credential this handshake presents, and so the guard its session gets (setCredential).
    const guarding = this.guardOptions;
    try {
      const tickets = this.ticketConfig(endpoint, info, (code) => (ticketRefused = code));
      const session = Session.server({
        ...(tickets ? { tickets } : {}),
        backend: this.backend,
        identity: this.identity,
        ...sharedSessionOptions(this.options, this.resolved),
        deferCrypto: true,
        acceptEndpoints: this.endpoints ?? [this.options.path ?? endpoint],
      });
      connection = new Connection(wsMessageSocket(ws, traffic), session, { ...this.resolved.connection, deliveryWaitsForDrain: true, receiveBudget: this.limits.receiveBudget });
    } catch (err) {
      ws.on('error', () => {});
      ws.close(CloseCode.internalError, closeReason(CloseCode.internalError));
      this.clientError(toPqmcpError(err), info);
      return;
    }
    attachWebSocket(ws, connection, traffic);
    this.handshakes.add(connection);
    // Evicted, or no ClientHello in time: its alert and the WebSocket close frame go out in one
    // write (a flood evicts hundreds a second; two writes were two system calls).
    const ticket = this.edge.admit(info.remoteAddress, (error) => {
      socket.cork();
      try {
        connection.abort(error);
      } finally {
        socket.uncork();
      }
    });
    connection.oncompute = (request) => this.edge.compute(ticket, request);
    // Past the handshake (a session refused by maxSessionsPerAgent) the peer is verified:
    // its failure is reported one by one, outside the failureReports rate.
    let verified = false;
    connection.onerror = (error) => this.clientError(error, info, verified, ticketRefused);
    connection.onclose = () => {
      this.handshakes.delete(connection);
      this.edge.release(ticket);
    };
    connection.onhandshake = (result) => {
      verified = true;
      this.handshakes.delete(connection);
      this.edge.release(ticket);
      if (!this.admitSession(connection, result.peer, info, guarding)) return;
      const transport = new PqmcpServerTransport(connection, result, this.backend.name, {
        remoteAddress: info.remoteAddress,
        hooks: this.resolved.hooks,
        maxRequestBytesInFlight: this.resolved.maxRequestBytesInFlight,
        maxReadPauseMs: this.limits.maxReadPauseMs,
        holdNow: holdNow(this.resolved.clock),
        requestBudget: this.limits.requestBudget,
      });
      this.live.add(transport);
      const audit = this.resolved.audit;
      if (audit) {
        const open = sessionOpenEvent('server', result, { backend: this.backend.name, endpoint, remoteAddress: info.remoteAddress, startedAt, ticketRefused });
        emitTo(audit, open);
        void transport.closed.then(() => emitTo(audit, sessionCloseEvent('server', result, open.time, traffic, connection.session.keyUpdates, sessionEnd(transport.closedLocally, connection.error), connection.error)));
      }
      void transport.closed.then(() => this.live.delete(transport));
      if (this.listenerCount('session') === 0) {
        void transport.close();
        return;
      }
      try {
        this.emit('session', transport, result.peer);
      } catch (err) {
        this.clientError(toPqmcpError(err), { ...info, peer: result.peer });
        void transport.close();
      }
    };
  }

  /**
   * The per-agent cap, then the guard that ends the session with its credentials. False:
   * refused (the connection is ending with SessionLimitError, reported on onerror).
   */
  private admitSession(connection: Connection, peer: VerifiedPeer, info: ClientInfo, guarding: GuardOptions): boolean {
    const count = this.perAgent.get(peer.agentId) ?? 0;
    const limit = this.limits.maxSessionsPerAgent;
    if (limit > 0 && count >= limit) {
      connection.abort(new SessionLimitError(peer.agentId, limit));
      return false;
    }
    this.perAgent.set(peer.agentId, count + 1);
    const guard = new SessionGuard(guarding, peer, (error) => {
      connection.abort(error);
      this.clientError(error, { ...info, peer });
    });
    void connection.closed.then(() => {
      guard.stop();
      const left = (this.perAgent.get(peer.agentId) ?? 1) - 1;
      if (left > 0) this.perAgent.set(peer.agentId, left);
      else this.perAgent.delete(peer.agentId);
    });
    return true;
  }

  /**
   * @internal Report a per-connection failure; never throws. `verified`: the peer had been
   * verified though `info` names none (a session refused right after its handshake).
   * `ticketRefused`: the code of the resumption ticket refused on this connection, if any.
   */
  clientError(error: PqmcpError, info: ClientInfo, verified = false, ticketRefused?: string): void {
    // Without a peer it failed before or in the handshake (counted, past the failureReports
    // rate of its source, for a summary, unless verified); with one, session.close tells.
    if (info.peer === undefined && !verified && this.failures && !this.failures.admit(sourceKey(info.remoteAddress), error.code, ticketRefused)) return;
    if (info.peer === undefined) emitTo(this.resolved.audit, handshakeFailureEvent('server', error, info.remoteAddress, undefined, ticketRefused));
    if (this.listenerCount('clientError') === 0) return;
    try {
      this.emit('clientError', error, info);
    } catch {
      // A throwing listener must not break the server.
    }
  }
}

function pathname(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q === -1 ? raw : raw.slice(0, q);
}

/** Answer an upgrade request with an HTTP error and close (destroyed once written: http-answer.ts). */
function reject(socket: Duplex, status: number, message: string): void {
  answerAndClose(socket, httpAnswer(status, message));
}


/** Start a pqmcp listener. Handle `'session'` to connect an MCP server per session. */
export async function listen(options: PqmcpServerOptions): Promise<PqmcpServer> {
  const resolved = withGates(resolveOptions(options), options);
  const limits = resolveServerLimits(options);
  checkListenOptions(options);
  const given = localIdentity(options.identity, 'server');
  // The listener's own copy of the credential, as setCredential keeps (copyBytes: a Buffer's
  // slice() is a view): the caller's array may be reused or wiped; handshakes present this.
  const identity = { keyPair: given.keyPair, credential: copyBytes(given.credential) };
  const backend = await resolveBackend(options.backend);
  // Workers rebuild the backend by name; an object passed in stays on this thread.
  const edge = await Edge.start(options, backend, typeof options.backend === 'object' ? undefined : backend.name, identity.keyPair);
  let httpServer = options.server;
  const owns = httpServer === undefined;
  let listener: NetServer | undefined;
  let server: PqmcpServer | undefined;
  if (httpServer === undefined) {
    const report = (error: PqmcpError, remoteAddress: string | undefined): void => server?.clientError(error, { remoteAddress });
    ({ httpServer, listener } = await listenOwnPort(edge, options.host ?? '127.0.0.1', options.port ?? 0, report));
  }
  server = new PqmcpServer(httpServer, owns, backend, identity, options, resolved, edge, limits, listener);
  if (owns) {
    const forward = (err: Error): void => {
      if (server.listenerCount('error') > 0) server.emit('error', err);
    };
    httpServer.on('error', forward);
    if (listener !== httpServer) listener?.on('error', forward);
  }
  return server;
}

/** Anything an MCP SDK server offers for connecting: McpServer, Server. */
export interface McpServerLike {
  connect(transport: PqmcpServerTransport): Promise<void>;
}

/** Builds the MCP server for one verified session. */
export type SessionFactory = (peer: VerifiedPeer, transport: PqmcpServerTransport) => McpServerLike | Promise<McpServerLike>;

/**
 * The common case: one fresh MCP server per authenticated session. A factory that throws
 * (or whose connect fails) closes that session and reports 'clientError'.
 */
export async function serveMcp(options: PqmcpServerOptions, factory: SessionFactory): Promise<PqmcpServer> {
  if (typeof factory !== 'function') throw new InvalidArgumentError('factory must be a function returning an MCP server');
  const server = await listen(options);
  server.on('session', (transport, peer) => {
    void (async () => {
      try {
        const mcp = await factory(peer, transport);
        await mcp.connect(transport);
      } catch (err) {
        server.clientError(toPqmcpError(err), { remoteAddress: transport.remoteAddress, peer });
        await transport.close();
      }
    })();
  });
  return server;
}