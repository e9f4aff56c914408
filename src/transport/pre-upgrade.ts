/**
 * Accounting of TCP connections before their WebSocket upgrade request: each holds an
 * admission slot (edge.ts `hold`) and a deadline from its accept until the request arrives
 * (`upgraded`) or it closes. Used by both kinds of own-port listener:
 *
 * - direct (edge.ts `acceptDirect`): a slot of the TCP peer's address (per-source cap),
 *   or, when the peer is a trusted proxy (its client is named only by the request's
 *   X-Forwarded-For), a shared slot "via <proxy>" under the global cap only;
 * - `proxyProtocol` (proxy-front.ts): a shared slot of the proxy until the PROXY header,
 *   then (`move`) a slot of the client it names.
 *
 * At the upgrade request the slot is released and the WebSocket takes its own (edge.ts
 * `admit`), accounted to the request's client address. A request that is not an upgrade
 * keeps the slot until the connection closes (the listener answers it with
 * `Connection: close`).
 *
 * Sharp edges:
 * - A connection evicted for a newer one is answered HTTP 503 with `Retry-After: 1` (the
 *   pqmcp client retries it as ERR_SERVER_BUSY), then destroyed within `LINGER_MS` if its
 *   peer does not close first; at most `MAX_LINGERING` wait like that at once, any more
 *   are destroyed unanswered, so a fast flood cannot turn evictions into held descriptors.
 *   `close` destroys them at once.
 *   The HTTP server may go on parsing an evicted connection meanwhile: the listener answers
 *   nothing more on a socket no longer writable (server.ts).
 *   Past its deadline a connection is destroyed without a word. Both are reported.
 * - A connection already answering a request (its response ended) is destroyed instead of
 *   answered twice.
 * - Nothing here reads the socket: the caller (the HTTP server, or the PROXY front) does.
 */
import type { Duplex } from 'node:stream';
import { ServerBusyError, type PqmcpError } from '../errors.js';
import { httpAnswer } from './http-answer.js';

const BUSY_ANSWER = httpAnswer(503, 'server busy: too many pending connections, try again later', 1);

/** How long an evicted connection may take to close after its 503, and how many may wait at once. */
const LINGER_MS = 1_000;
const MAX_LINGERING = 1_024;

/** Where failures go: the error and the best address known for the connection. */
export type Report = (error: PqmcpError, remoteAddress: string | undefined) => void;

/** The edge's admission, as used here (edge.ts). */
export interface Holder<T> {
  hold(address: string | undefined, abort: (error: PqmcpError) => void, deadlineMs: number, timeout: () => PqmcpError, shared?: boolean): T;
  release(ticket: T): void;
}

/** How one connection is accounted: to whom, for how long, and the error past the deadline. */
export interface Account {
  address: string | undefined;
  /** The address is a trusted proxy's, standing for its clients: global cap only (edge.ts `hold`). */
  shared?: boolean;
  deadlineMs: number;
  timeout: () => PqmcpError;
}

interface Entry<T> {
  ticket: T;
  /** The address failures are reported with. */
  address: string | undefined;
  /** Close the connection for `error` (evicted, or past its deadline) and report it. */
  fail: (error: PqmcpError) => void;
}

export class PreUpgrade<T> {
  private readonly raw = new Map<Duplex, Entry<T>>();
  /** Evicted connections waiting for their peer to close after the 503 (destroyed by `close`). */
  private readonly lingering = new Set<Duplex>();

  /** `lingerMs`: how long an evicted connection may wait for its peer (tests lengthen it). */
  constructor(
    private readonly holder: Holder<T>,
    private readonly lingerMs = LINGER_MS,
  ) {}

  /** Start accounting `socket` (a new TCP connection); released at `upgraded` or its close. */
  hold(socket: Duplex, account: Account, report: Report): void {
    const entry = { address: account.address } as Entry<T>;
    entry.fail = (error) => {
      this.release(socket);
      if (socket.destroyed) return;
      // Evicted for a newer connection: say so in HTTP (503), which the pqmcp client takes
      // as ERR_SERVER_BUSY and retries; anything else is closed without a word.
      if (error instanceof ServerBusyError && !socket.writableEnded && this.lingering.size < MAX_LINGERING) {
        this.lingering.add(socket);
        // A fixed timer, not an idle timeout: bytes the peer goes on sending (a request
        // trickled a byte at a time) must not keep a connection that holds no slot.
        const timer = setTimeout(() => socket.destroy(), this.lingerMs);
        timer.unref();
        socket.once('close', () => {
          this.lingering.delete(socket);
          clearTimeout(timer);
        });
        socket.end(BUSY_ANSWER);
      } else {
        socket.destroy();
      }
      report(error, entry.address);
    };
    entry.ticket = this.take(account, entry.fail);
    this.raw.set(socket, entry);
    socket.once('close', () => this.release(socket));
  }

  /** Account `socket` to another source from now on (a PROXY header named its client). */
  move(socket: Duplex, account: Account): void {
    const entry = this.raw.get(socket);
    if (entry === undefined) return;
    this.holder.release(entry.ticket);
    entry.address = account.address;
    entry.ticket = this.take(account, entry.fail);
  }

  /** True while `socket` holds its slot (not upgraded, closed, evicted or past its deadline). */
  holds(socket: Duplex): boolean {
    return this.raw.has(socket);
  }

  /** Close `socket` for `error` (a bad PROXY header, say) and report it; no-op once released. */
  fail(socket: Duplex, error: PqmcpError): void {
    this.raw.get(socket)?.fail(error);
  }

  /** The connection's upgrade request arrived (or it closed): its slot is released. */
  upgraded(socket: Duplex): void {
    this.release(socket);
  }

  /**
   * Destroy every connection not yet upgraded, and the evicted ones still lingering (the
   * listener is closing: its close waits for every socket it accepted, and the HTTP server
   * behind a TCP front never listened, so its own closeAllConnections does not reach them).
   */
  close(): void {
    for (const socket of [...this.raw.keys(), ...this.lingering]) socket.destroy();
  }

  private take(account: Account, fail: (error: PqmcpError) => void): T {
    return this.holder.hold(account.address, fail, account.deadlineMs, account.timeout, account.shared ?? false);
  }

  private release(socket: Duplex): void {
    const entry = this.raw.get(socket);
    if (entry === undefined) return;
    this.raw.delete(socket);
    this.holder.release(entry.ticket);
  }
}
