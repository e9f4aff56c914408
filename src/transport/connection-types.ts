/**
 * What a Connection (connection.ts) needs from its socket, and its options.
 */
import type { ReceiveBudget } from './receive-budget.js';

/** The few socket operations a Connection needs (see ws-socket.ts for the `ws` adapter). */
export interface MessageSocket {
  /** Send one binary message; `done` runs once it was handed to the OS, or failed. */
  send(data: Uint8Array, done: (err?: Error) => void): void;
  /**
   * True when nothing reads `data` any more once `done()` ran without error (the `ws`
   * adapter: the bytes are in the OS, or copied when masked). Then the writer reuses the
   * buffers of large records (record-buffers.ts). An in-memory pipe that hands `data`
   * itself to the peer must leave this unset.
   */
  readonly releasesOnDone?: boolean;
  /** Bytes accepted by send() but not yet handed to the OS. */
  readonly bufferedAmount: number;
  /** Start the WebSocket closing handshake. */
  close(code: number, reason: string): void;
  /** Drop the connection now. */
  terminate(): void;
  /** Send a ping (keepalive); absent when the socket cannot ping (browsers). */
  ping?(): void;
  /** Stop / restart reading from the network. */
  pause?(): void;
  resume?(): void;
}

export interface ConnectionOptions {
  /** Whole handshake, from the first byte to the Finished. */
  handshakeTimeoutMs: number;
  /** Ping interval; 0 disables keepalive. */
  keepAliveMs: number;
  /** Drop the connection when a ping gets no pong within this. */
  keepAliveTimeoutMs: number;
  /** Unsent bytes above which send() waits for the socket to drain. */
  highWaterMark: number;
  /** Bound on close(): the peer's close_notify and the socket close together. */
  closeTimeoutMs: number;
  /** Largest socket message written (must not exceed the peer's maxPayload). */
  maxWriteBatch: number;
  /**
   * Hold received messages while more than `highWaterMark` bytes wait to be written (the
   * server side: a peer must read its replies before it gets more work done).
   */
  deliveryWaitsForDrain: boolean;
  /**
   * A ping from the peer counts as a sign of life when our own ping goes unanswered (the
   * client transport turns this on: a server that holds our bytes unread still pings;
   * keepalive.ts). Off on the server: a client that does not read must time out.
   */
  peerPingsProveLive?: boolean;
  /** Shared bound on partly received message bytes (a listener's sessions share one). */
  receiveBudget?: ReceiveBudget;
}
