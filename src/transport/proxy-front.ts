/**
 * The front of a `proxyProtocol` listener: each TCP connection is taken before Node's HTTP
 * server sees a byte, its PROXY header (proxy-protocol.ts) read and stripped, and the rest
 * handed to the HTTP server with the client address the header names.
 *
 *   accept ── peer not a trusted proxy ──> destroyed unread, reported ('untrusted-peer')
 *     │ slot of the PROXY's address (global cap only), deadline proxyHeaderTimeoutMs
 *     ├── bad / too long / late header ──> destroyed, reported ('malformed', 'too-long', 'timeout')
 *     ├── evicted for a newer one ────────> HTTP 503 (Retry-After: 1), reported (ERR_SERVER_BUSY),
 *     │                                     destroyed 1 s later whatever it sends; never read again
 *     ├── closed before a header ─────────> dropped quietly (a proxy's TCP health check;
 *     │                                     one reset before its accept has no peer at all)
 *     ├── client past its accept rate ────> HTTP 429 (Retry-After: 1) at once, closed once written,
 *     │                                     reported (ERR_SERVER_BUSY); takes no client slot
 *     │ header read: slot of the CLIENT's address (per-source cap), deadline firstFlightTimeoutMs
 *     └── HTTP server ── upgrade request ──> upgraded(): slot released; the WebSocket then
 *                                             takes its own pending-handshake slot (edge.ts)
 *
 * Sharp edges:
 * - Trust: a PROXY header is read only from a peer in `trustedProxies`, and every other
 *   peer is refused: the spec forbids guessing whether a header is present, and a listener
 *   that also took direct connections would let anyone bypass the proxy (its TLS, access
 *   rules and rate limits). Health checks the proxy makes itself come as LOCAL (or
 *   UNKNOWN) and count as the proxy's own address.
 * - X-Forwarded-For is not read on such a listener: the header names the client; a TCP
 *   proxy relays the client's bytes, so any X-Forwarded-For in them is the client's word.
 * - Until its upgrade request, every connection holds an admission slot and a deadline
 *   (pre-upgrade.ts, shared with direct listeners), so idle TCP connections through the
 *   proxy cost a bounded, accounted share like idle WebSockets do (Node's own HTTP timeouts
 *   do not apply to connections handed in).
 * - Reading is in paused mode ('readable'): the stream buffers at most its high-water
 *   mark, the parser looks at most 107 (v1) or 4 096 (v2) bytes. What follows the header
 *   is pushed back (unshift) before the HTTP server attaches, so no byte is lost.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HandshakeTimeoutError, ProxyProtocolError, type PqmcpError } from '../errors.js';
import type { TrustedProxies } from './admission.js';
import { parseProxyHeader } from './proxy-protocol.js';
import type { PreUpgrade, Report } from './pre-upgrade.js';
import { stackless } from '../stackless.js';

export type { Report } from './pre-upgrade.js';

export interface FrontTimeouts {
  /** The PROXY header must be complete within this of the accept. */
  headerTimeoutMs: number;
  /** The HTTP upgrade request must arrive within this of the header. */
  upgradeTimeoutMs: number;
}

/** A TCP connection that sent no WebSocket upgrade request in time (of its accept, or of its PROXY header). */
export class UpgradeTimeoutError extends HandshakeTimeoutError {
  constructor(ms: number, since = 'of the PROXY header') {
    super(ms);
    this.message = `no WebSocket upgrade request within ${ms} ms ${since}`;
  }
}

export class ProxyFront<T> {
  /** The client address each connection's header named (or its proxy's, for LOCAL/UNKNOWN). */
  private readonly reported = new WeakMap<Duplex, string | undefined>();
  /** Connections refused because their peer is not a trusted proxy. */
  refusedDirect = 0;

  constructor(
    private readonly pending: PreUpgrade<T>,
    private readonly trusted: TrustedProxies,
    private readonly timeouts: FrontTimeouts,
    /**
     * The accept rate of the client a header names (edge.ts `admitAccept`): false when
     * refused (the connection is then answered, closed and reported: leave it).
     */
    private readonly admitClient: (socket: Socket, address: string, report: Report) => boolean = () => true,
  ) {}

  /** The client address of a connection this front handed over (its TCP peer if it is not one). */
  clientAddress(socket: Duplex): string | undefined {
    return this.reported.has(socket) ? this.reported.get(socket) : (socket as Partial<Socket>).remoteAddress;
  }

  accept(socket: Socket, handOver: (socket: Socket) => void, report: Report): void {
    const peer = socket.remoteAddress;
    // Reset before we got to it (HAProxy's TCP health checks close with a reset): no peer
    // to judge, nothing to read or report.
    if (peer === undefined) {
      socket.destroy();
      return;
    }
    if (!this.trusted.has(peer)) {
      socket.destroy();
      this.refusedDirect++;
      report(new ProxyProtocolError('untrusted-peer', `direct connection from ${peer} refused: this listener takes connections only from its trusted proxies, with a PROXY protocol header`), peer);
      return;
    }
    const headerMs = this.timeouts.headerTimeoutMs;
    this.pending.hold(socket, { address: peer, shared: true, deadlineMs: headerMs, timeout: () => stackless(() => new ProxyProtocolError('timeout', `no complete PROXY protocol header within ${headerMs} ms`)) }, report);
    const onError = (): void => void socket.destroy();
    socket.on('error', onError);
    let received: Buffer | undefined;
    const onReadable = (): void => {
      // Evicted (or timed out) before its header: never read again, a header arriving now
      // would take a new slot and evict another (review3 P2).
      if (!this.pending.holds(socket)) {
        socket.off('readable', onReadable);
        return;
      }
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) {
        received = received === undefined ? chunk : Buffer.concat([received, chunk]);
        let header;
        try {
          header = parseProxyHeader(received);
        } catch (err) {
          socket.off('readable', onReadable);
          this.pending.fail(socket, err as PqmcpError);
          return;
        }
        if (header === undefined) continue;
        socket.off('readable', onReadable);
        // A header naming a client: that client's accept rate applies now, before it takes a
        // slot (LOCAL, UNKNOWN: the proxy's own connections, like its address, are not rated).
        if (header.source !== undefined && !this.admitClient(socket, header.source.address, report)) return;
        socket.off('error', onError);
        const address = header.source?.address ?? peer;
        this.reported.set(socket, address);
        // From here the connection counts against its client, until its upgrade request.
        const upgradeMs = this.timeouts.upgradeTimeoutMs;
        this.pending.move(socket, { address, deadlineMs: upgradeMs, timeout: () => stackless(() => new UpgradeTimeoutError(upgradeMs)) });
        if (received.length > header.length) socket.unshift(received.subarray(header.length));
        received = undefined;
        handOver(socket);
        return;
      }
    };
    socket.on('readable', onReadable);
  }
}
