/**
 * A Connection's two deadlines on its peer: the handshake timeout, armed when the
 * connection is made, and then the keepalive (keepalive.ts), from the end of the handshake.
 *
 * Sharp edges:
 * - The keepalive starts when the handshake completes (the handshake timeout bounds what
 *   comes before): the server does not read while its handshake crypto is out (queued in
 *   the pool under a flood), nor does a client computing its flight answer pings.
 * - The handshake timer is cleared by `confirmed()` (the peer proved it accepted us), not by
 *   the handshake's end: when it fires, the host decides (a client whose handshake completed
 *   and whose server has not spoken yet is not failed).
 * - No keepalive where the socket cannot ping (browsers) or `keepAliveMs` is 0.
 *   `stopKeepAlive()` (the socket closed: nothing to ping) leaves the handshake timer;
 *   `stop()` clears both. Timers are unref'd.
 */
import type { MessageSocket } from './connection-types.js';
import { KeepAlive } from './keepalive.js';
import { unref, type Timer } from './timers.js';

export interface LivenessOptions {
  handshakeTimeoutMs: number;
  keepAliveMs: number;
  keepAliveTimeoutMs: number;
  /** The client side: the peer's pings count as a sign of life (keepalive.ts, R10-7). */
  peerPingsProveLive?: boolean;
}

export interface LivenessHost {
  handshakeTimeout(): void;
  keepAliveTimeout(): void;
  /** This side holds the peer's bytes unread for its own reasons, or did less than keepAliveTimeoutMs ago (ReadPause.heldWithin). */
  held(): boolean;
}

export class Liveness {
  private handshakeTimer: Timer | undefined;
  private keepAlive: KeepAlive | undefined;

  constructor(
    private readonly socket: Pick<MessageSocket, 'ping'>,
    private readonly options: LivenessOptions,
    private readonly host: LivenessHost,
  ) {
    this.handshakeTimer = unref(
      setTimeout(() => {
        this.handshakeTimer = undefined;
        host.handshakeTimeout();
      }, options.handshakeTimeoutMs),
    );
  }

  /** The peer is confirmed: no handshake deadline any more. */
  confirmed(): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
  }

  /** The handshake completed (once; later calls do nothing while one runs). */
  startKeepAlive(): void {
    const { keepAliveMs, keepAliveTimeoutMs } = this.options;
    if (keepAliveMs <= 0 || !this.socket.ping || this.keepAlive) return;
    const { host } = this;
    this.keepAlive = new KeepAlive({ ping: () => this.socket.ping?.(), intervalMs: keepAliveMs, timeoutMs: keepAliveTimeoutMs, onTimeout: () => host.keepAliveTimeout(), held: () => host.held() });
  }

  /** The peer's pong, or its ping (which counts only where peerPingsProveLive). */
  heard(frame: 'ping' | 'pong'): void {
    if (frame === 'pong') this.keepAlive?.pong();
    else if (this.options.peerPingsProveLive) this.keepAlive?.peerPinged();
  }

  stopKeepAlive(): void {
    this.keepAlive?.stop();
    this.keepAlive = undefined;
  }

  stop(): void {
    this.confirmed();
    this.stopKeepAlive();
  }
}
