/**
 * WebSocket keepalive for a Connection: a ping every `intervalMs`; no pong within
 * `timeoutMs` calls `onTimeout` once.
 *
 * Sharp edges:
 * - At most one ping is outstanding; a ping that throws (the socket is going away) is
 *   skipped, the socket's close event ends the connection.
 * - Timers are unref'd: a keepalive never keeps the process alive. `stop()` is final.
 */
import { unref, type Timer } from './timers.js';

export class KeepAlive {
  private interval: ReturnType<typeof setInterval> | undefined;
  private pongTimer: Timer | undefined;

  constructor(
    private readonly ping: () => void,
    intervalMs: number,
    private readonly timeoutMs: number,
    private readonly onTimeout: () => void,
  ) {
    if (intervalMs > 0) this.interval = unref(setInterval(() => this.tick(), intervalMs));
  }

  /** The peer answered. */
  pong(): void {
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
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
    this.pongTimer = unref(
      setTimeout(() => {
        this.pongTimer = undefined;
        this.onTimeout();
      }, this.timeoutMs),
    );
  }
}
