/**
 * How a Connection lets go of its socket: the WebSocket close with the code's reason
 * (close-codes.ts), and the bound on the close (`closeTimeoutMs`): the peer's close_notify
 * and the socket's close event must come within it, or the socket is dropped.
 *
 * Sharp edges:
 * - A socket that throws on close() is terminated at once; the bound is armed all the same
 *   (the socket's close event, or the timer, ends the connection).
 * - The timer is armed once and unref'd. When it fires the socket is terminated, then
 *   `expired()` runs (the Connection ends). `stop()` (the connection ended) clears it.
 * - close() is the WebSocket's own closing handshake; the authenticated close under it
 *   (close_notify) is the Session's, and an application close() that sends close_notify
 *   only `arm()`s the bound: the socket is closed once the peer answers.
 */
import type { MessageSocket } from './connection-types.js';
import { closeReason } from './close-codes.js';
import { unref, type Timer } from './timers.js';

export class SocketClose {
  private timer: Timer | undefined;

  constructor(
    private readonly socket: Pick<MessageSocket, 'close' | 'terminate'>,
    private readonly timeoutMs: number,
    private readonly expired: () => void,
  ) {}

  /** Start the WebSocket closing handshake with `code`, bounded. */
  close(code: number): void {
    try {
      this.socket.close(code, closeReason(code));
    } catch {
      this.socket.terminate();
    }
    this.arm();
  }

  /** Bound the wait for the close (once). */
  arm(): void {
    if (this.timer) return;
    this.timer = unref(
      setTimeout(() => {
        this.timer = undefined;
        this.socket.terminate();
        this.expired();
      }, this.timeoutMs),
    );
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
