/**
 * A Connection's outbound backpressure: the bytes not yet handed to the OS (the socket's
 * bufferedAmount plus what the BatchWriter holds), send()s waiting for them to fall to
 * `highWaterMark`, and received messages held for the same drain (`deliveryWaitsForDrain`).
 *
 * Sharp edges:
 * - The drain is heard of from the writer's write callbacks (`check()`) and, while anyone
 *   waits, by polling every DRAIN_POLL_MS (a fallback: not every socket reports each write).
 * - `rejectAll()` (the connection ends) stops the poll and rejects every waiter; the owner
 *   releases held delivery itself.
 */
import type { PqmcpError } from '../errors.js';
import { unref } from './timers.js';
import { Waiters } from './waiters.js';

const DRAIN_POLL_MS = 10;

export class DrainWatch {
  private readonly waiters = new Waiters();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    /** Bytes written but not yet handed to the OS. */
    readonly buffered: () => number,
    private readonly highWaterMark: number,
    /** True while the owner holds delivery for the drain. */
    private readonly holding: () => boolean,
    /** Called at the drain (after the waiters are resolved), while holding. */
    private readonly onDrained: () => void,
  ) {}

  /** More than highWaterMark bytes wait to be written. */
  get over(): boolean {
    return this.buffered() > this.highWaterMark;
  }

  /** Resolves at once at or below highWaterMark, else once the bytes drain below it. */
  whenWritable(): Promise<void> {
    if (!this.over) return Promise.resolve();
    const drained = this.waiters.wait();
    this.watch();
    return drained;
  }

  /** Poll for the drain as well as hearing of it from write callbacks. */
  watch(): void {
    if (this.timer) return;
    this.timer = unref(setInterval(() => this.check(), DRAIN_POLL_MS));
  }

  check(): void {
    if ((this.waiters.size === 0 && !this.holding()) || this.over) return;
    this.stopPolling();
    this.waiters.resolveAll();
    this.onDrained();
  }

  rejectAll(error: PqmcpError): void {
    this.stopPolling();
    this.waiters.rejectAll(error);
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
