/**
 * A fixed window of `windowMs` for rate limits that summarise what they held back: the
 * listener's failure reports (audit/failure-limiter.ts) and `pqmcp serve`'s failure log
 * lines (cli/log-limiter.ts). It keeps the window's start and ends the window on an
 * interval timer, or earlier when the owner sees that the window is over (`roll`).
 *
 * Sharp edges:
 * - `onEnd` runs BEFORE the new window starts: it still sees the old `start` (the summary
 *   names the window it covers), and `start` moves to the clock's time after it returns.
 * - The timer only makes sure a quiet window still ends (its summary is written); a busy
 *   owner calls `roll()` on each event, so a lagging or injected timer never stretches a
 *   window.
 * - The timer is unref'd (it never keeps the process alive); `stop()` clears it and does
 *   not end the window (the owner flushes what it holds itself).
 * - The clock and the timer functions are injectable (tests).
 */

/** An injectable clock and interval timer (tests). Defaults: Date.now, setInterval, clearInterval. */
export interface WindowClock {
  now?: () => number;
  setInterval?: (fn: () => void, ms: number) => { unref?: () => void };
  clearInterval?: (handle: unknown) => void;
}

export class SummaryWindow {
  /** The clock in ms. */
  readonly now: () => number;
  /** When the current window started. */
  start: number;
  private readonly handle: unknown;
  private readonly clear: (handle: unknown) => void;

  constructor(
    readonly windowMs: number,
    /** Ends a window: summarise it, reset the counts. */
    private readonly onEnd: () => void,
    clock: WindowClock = {},
  ) {
    this.now = clock.now ?? Date.now;
    this.start = this.now();
    const every = clock.setInterval ?? ((fn, ms) => setInterval(fn, ms));
    this.clear = clock.clearInterval ?? ((h) => clearInterval(h as ReturnType<typeof setInterval>));
    const handle = every(() => this.end(), windowMs);
    handle.unref?.();
    this.handle = handle;
  }

  /** End the window now if it is over (call before counting an event). */
  roll(): void {
    if (this.now() - this.start >= this.windowMs) this.end();
  }

  /** End the window now (the timer's tick). */
  end(): void {
    this.onEnd();
    this.start = this.now();
  }

  /** Stop the timer. */
  stop(): void {
    this.clear(this.handle);
  }
}
