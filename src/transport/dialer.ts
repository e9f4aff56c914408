/**
 * How a client transport opens its WebSocket: the one platform-specific step of the client.
 * Node uses `ws` (ws-dialer.ts); browsers and other runtimes with a standard `WebSocket`
 * use browser-dialer.ts. Everything after the socket is open is the same code.
 *
 * Sharp edges:
 * - A dialer checks that the server accepted the `pqmcp.v1` subprotocol before resolving;
 *   a server that did not is a ConnectionError, never a session.
 * - `abort()` may come at any time: until the socket is attached to a Connection it drops
 *   the socket (and `opened` rejects with ClosedError('closed while connecting') if it has
 *   not settled); after, it is a no-op (the Connection owns the socket from then on).
 */
import type { Connection, MessageSocket } from './connection.js';
import type { Traffic } from './ws-socket.js';

/**
 * A URL as pqmcp shows it (errors, logs, audit events): scheme, host, port and path; never
 * its user info or query, where tokens live (review 16, R16-2).
 */
export function shownUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export interface DialRequest {
  url: URL;
  /** The WebSocket subprotocol to offer and require. */
  protocol: string;
  /** Bound on the WebSocket opening handshake. */
  openTimeoutMs: number;
  /** Largest incoming WebSocket message (where the platform can enforce it). */
  maxPayload: number;
  /** Extra HTTP headers (platforms that can set them: Node). */
  headers?: Record<string, string> | undefined;
  /** Platform-specific socket options (Node: `ws` client options). */
  socketOptions?: object | undefined;
  /** Counts WebSocket payload bytes each way (audit). */
  traffic?: Traffic | undefined;
}

export interface OpenedSocket {
  socket: MessageSocket;
  /** The platform's own socket object (a `ws` WebSocket on Node), for diagnostics and tests. */
  raw: unknown;
  /** Route the socket's events (messages, pong, error, close) into `connection`. */
  attach(connection: Connection): void;
}

export interface Dialing {
  readonly opened: Promise<OpenedSocket>;
  abort(): void;
}

export type Dialer = (request: DialRequest) => Dialing;
