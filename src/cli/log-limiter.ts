/**
 * Rate limit for `pqmcp serve`'s failure log lines: a flood of failed connections must not
 * become a flood of log lines (one test of issue 10 wrote 3,132). At most `burst` failure
 * lines per `windowMs`; the rest are counted by error code, and at the end of each window
 * in which anything was held back, one summary line says how many and of which codes.
 *
 * Sharp edges:
 * - Failures the listener itself held back (its `failureReports` rate) come in as counts
 *   (`hold`) and are added to the summary: the log's totals stay whole.
 * - Only failure lines go through it; session starts and ends, reloads and shutdown are
 *   always logged.
 * - The summary timer is unref'd and stopped by close(), which also flushes a last summary.
 * - `now` and the timer functions are injectable for tests (the window: summary-window.ts).
 */
import { SummaryWindow, type WindowClock } from '../summary-window.js';

/** The clock and window timer are injectable for tests (summary-window.ts). */
export interface LogLimiterOptions extends WindowClock {
  /** Failure lines written per window before the rest are summarised. Default 20. */
  burst?: number;
  /** Window length. Default 10 000 ms. */
  windowMs?: number;
}

export interface SuppressedSummary {
  /** Lines held back in the window. */
  suppressed: number;
  /** Of those, how many per error code. */
  byCode: Record<string, number>;
  windowMs: number;
}

export class LogLimiter {
  private readonly burst: number;
  private readonly window: SummaryWindow;
  private written = 0;
  private suppressed = 0;
  private byCode: Record<string, number> = {};

  constructor(
    /** Writes the summary line. */
    private readonly summarise: (summary: SuppressedSummary) => void,
    options: LogLimiterOptions = {},
  ) {
    this.burst = options.burst ?? 20;
    this.window = new SummaryWindow(options.windowMs ?? 10_000, () => this.endWindow(), options);
  }

  /** May a failure line with this code be written now? (Counted for the summary when not.) */
  allow(code: string): boolean {
    this.window.roll();
    if (this.written < this.burst) {
      this.written++;
      return true;
    }
    this.suppressed++;
    this.byCode[code] = (this.byCode[code] ?? 0) + 1;
    return false;
  }

  /** Count failures held back elsewhere (the listener's failureReports summaries) into this window's summary. */
  hold(byCode: Record<string, number>): void {
    for (const [code, n] of Object.entries(byCode)) {
      if (!(Number.isSafeInteger(n) && n > 0)) continue;
      this.suppressed += n;
      this.byCode[code] = (this.byCode[code] ?? 0) + n;
    }
  }

  /** Stop the timer; a last summary if anything is held back. */
  close(): void {
    this.window.stop();
    this.flush();
  }

  /** End the window: summarise what was held back, start a new one. */
  private endWindow(): void {
    this.flush();
    this.written = 0;
  }

  private flush(): void {
    if (this.suppressed === 0) return;
    const summary = { suppressed: this.suppressed, byCode: this.byCode, windowMs: this.window.windowMs };
    this.suppressed = 0;
    this.byCode = {};
    this.summarise(summary);
  }
}
