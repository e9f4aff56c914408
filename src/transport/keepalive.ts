/**
 * WebSocket keepalive for a Connection: a ping every `intervalMs`; no pong within
 * `timeoutMs` calls `onTimeout` once.
 *
 * Sharp edges:
 * - At most one ping is outstanding; a ping that throws (the socket is going away) is
 *   skipped, the socket's close event ends the connection.
 * - While `held()` says this side keeps the peer's bytes unread (its own limits paused
 *   reading: the listener's receive budget, a stalled Session's backlog, the server's
 *   consumer), the peer's pong may be among them: a deadline that passes then is re-armed
 *   for another `timeoutMs` (with another ping, whose write fails if the peer reset its
 *   socket) instead of ending the connection. Those pauses end by the connection's own
 *   progress (the backlog drains at the ration's pace; the oldest partial message always
 *   reads) or are bounded by their owner (the server transport ends a consumer's pause
 *   after maxReadPauseMs). After a hold ends the peer's pong may still be behind what
 *   was held, so `held()` also answers true for `timeoutMs` after (ReadPause.heldWithin):
 *   the peer is judged again `timeoutMs` to twice that after reading resumes (before
 *   2026-12-07, at the first deadline after, which could be 1 ms later). A pause the peer
 *   causes (it does not read our writes, so our inbox fills) or the application asks for
 *   (Connection.pause) does not count: that peer times out as before.
 * - `peerPinged()` (the client side only, ConnectionOptions.peerPingsProveLive): a ping from
 *   the peer within the last `intervalMs + timeoutMs` also re-arms a passing deadline. A
 *   server that holds our bytes unread (its receive budget, its consumer's pause) cannot
 *   read our ping, but its own keepalive still pings us; without this rule a default client
 *   left a held session after 10-40 s, before the server's own bound (`maxReadPauseMs`)
 *   could end it with its reason (review 10, R10-7). A peer that neither pongs nor pings
 *   for that long times out; a dead peer is found within `intervalMs + 2 x timeoutMs` of
 *   its last ping at worst. The server side does not use it: a client that pings but does
 *   not read must time out (review F1).
 * - Timers are unref'd: a keepalive never keeps the process alive. `stop()` is final.
 */
import { unref, type Timer } from './timers.js';

export interface KeepAliveOptions {
  ping: () => void;
  intervalMs: number;
  timeoutMs: number;
  onTimeout: () => void;
  /** This side holds the peer's bytes unread for its own reasons (see above). */
  held?: () => boolean;
}

export class KeepAlive {
  private interval: ReturnType<typeof setInterval> | undefined;
  private pongTimer: Timer | undefined;

  private readonly ping: () => void;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly onTimeout: () => void;
  private readonly held: () => boolean;
  /** When the peer last pinged us (performance.now()), if ever. */
  private lastPeerPing = -Infinity;

  constructor(options: KeepAliveOptions) {
    ({ ping: this.ping, intervalMs: this.intervalMs, timeoutMs: this.timeoutMs, onTimeout: this.onTimeout } = options);
    this.held = options.held ?? (() => false);
    if (options.intervalMs > 0) this.interval = unref(setInterval(() => this.tick(), options.intervalMs));
  }

  /** The peer answered. */
  pong(): void {
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
  }

  /** The peer pinged us: it is alive, though it may not read what we send (see above). */
  peerPinged(): void {
    this.lastPeerPing = performance.now();
  }

  stop(): void {
    if (this.interval) clearInterval(this.interval);
    this.pong();
    this.interval = undefined;
  }

  private tick(): void {
    if (this.pongTimer) return;
    try {
      this.ping();
    } catch {
      return;
    }
    this.armPongDeadline();
  }

  /** Ping again (a peer that reset its socket fails the write, and the close ends it) and wait again. */
  private pingWhileHeld(): void {
    try {
      this.ping();
    } catch {
      // the socket is going away: its close event ends the connection
    }
    this.armPongDeadline();
  }

  private armPongDeadline(): void {
    this.pongTimer = unref(
      setTimeout(() => {
        if (this.held()) return this.pingWhileHeld(); // the pong may be in what we have not read
        if (performance.now() - this.lastPeerPing <= this.intervalMs + this.timeoutMs) return this.pingWhileHeld(); // it pings: it holds us unread
        this.pongTimer = undefined;
        this.onTimeout();
      }, this.timeoutMs),
    );
  }
}
