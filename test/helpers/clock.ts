/**
 * A clock that moves only when a test says so (the transports' injectable Clock): its
 * timers fire, in order, inside advance().
 */
import type { Clock } from '../../src/transport/clock.js';

interface Pending {
  at: number;
  fn: () => void;
}

export class ManualClock implements Clock {
  private readonly timers = new Set<Pending>();

  constructor(private time = Date.now()) {}

  now = (): number => this.time;

  schedule(fn: () => void, ms: number): unknown {
    const handle = { at: this.time + ms, fn };
    this.timers.add(handle);
    return handle;
  }

  cancel(handle: unknown): void {
    this.timers.delete(handle as Pending);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** Move time forward by `ms` and run every timer now due (including ones they schedule). */
  advance(ms: number): void {
    this.time += ms;
    for (;;) {
      const due = [...this.timers].filter((t) => t.at <= this.time).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.timers.delete(due);
      due.fn();
    }
  }
}
