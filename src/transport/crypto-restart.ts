/**
 * A bounded restart budget for one of the crypto pool's threads: the starvation guard's
 * reserve (crypto-guard.ts) and each ordinary worker slot (crypto-slots.ts) have one each.
 *
 * Policy: a thread that dies (or a replacement that fails to start) is started again after
 * a backoff (RESTART_BACKOFF_MS, x4 each time: 0.25 s, 1 s, 4 s), at most RESTARTS times
 * in a row; a thread that lived RESTART_STABLE_MS (a minute, on the pool's clock) since its
 * start resets the count (a rare crash is restarted, a crash loop is not). The next death
 * in a row spends the budget: `exhausted` is called once and the restarter stops for good
 * (the owner falls back: the guard to 'low' workers, a worker slot to the event loop). Why
 * not restart for ever: a thread that dies on start would cost a key derivation (and a
 * thread's start) every few seconds for the pool's life.
 *
 * Sharp edges:
 * - It only times and counts; the owner starts the thread (`start`, which rejects when none
 *   started: that counts as a death) and says when one died (`died`).
 * - Its timer is unref'd; stop() (the owner's close or give-up) clears it, and nothing is
 *   started after stop() or once the host is closed.
 */

/** First restart of a dead thread after this long; each further one waits 4x longer. */
export const RESTART_BACKOFF_MS = 250;
/** Restarts in a row (each within RESTART_STABLE_MS of the last start) before the budget is spent. */
export const RESTARTS = 3;
/** A thread that lived this long (ms, the pool's clock) died of a crash, not a crash loop: its restart count starts again. */
export const RESTART_STABLE_MS = 60_000;

export interface RestartHost {
  now(): number;
  closed(): boolean;
  /** The first backoff (ms; default RESTART_BACKOFF_MS), x4 each time: the pool's `restartBackoffMs` (tests). */
  restartBackoffMs?: number | undefined;
}

export class Restarter {
  /** Restarts in a row, and when the current (or last tried) thread started. */
  private inRow = 0;
  private since: number;
  private timer: NodeJS.Timeout | undefined;
  private on = true;

  constructor(
    private readonly host: RestartHost,
    /** Start the thread again; rejects when none started. */
    private readonly start: () => Promise<unknown>,
    /** The budget is spent (called once; the restarter is stopped). */
    private readonly exhausted: () => void,
  ) {
    this.since = host.now();
  }

  /** The thread died, or did not start: start it again after the backoff, or spend the budget. */
  died(): void {
    if (!this.on || this.host.closed()) return;
    if (this.host.now() - this.since >= RESTART_STABLE_MS) this.inRow = 0;
    if (this.inRow >= RESTARTS) {
      this.stop();
      this.exhausted();
      return;
    }
    const delay = (this.host.restartBackoffMs ?? RESTART_BACKOFF_MS) * 4 ** this.inRow;
    this.inRow++;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.on || this.host.closed()) return;
      // A start that fails counts as a death within the window (it is not a stable thread).
      this.since = this.host.now();
      this.start().catch(() => this.died());
    }, delay);
    this.timer.unref();
  }

  /** No more restarts (the owner closed or gave up). */
  stop(): void {
    this.on = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
