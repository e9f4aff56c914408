/**
 * Per-source rate limit on the reports of failures that happen before the peer is verified
 * (the listener's `failureReports` option): a refused connection is one `'clientError'` and
 * one `handshake.failure` audit event, and without a limit a stranger opening empty TCP
 * connections as fast as it can would make the audit trail grow at that rate.
 *
 * Fixed windows of `windowMs`: in each, at most `perSource` failures per source and at most
 * `total` over all sources are reported one by one. The rest are counted, per source and
 * per error code, and at the end of the window each source that had any gets one
 * `handshake.failure.summary` event with its count. Nothing is dropped uncounted.
 *
 * Sharp edges:
 * - Bounded memory and output: per window at most `total` individual reports (so at most
 *   `total` sources in the "written" map), and at most `maxSources` sources counted one by
 *   one in summaries; the sources past that are folded into one summary whose
 *   `remoteAddress` is undefined. Error codes are the library's own stable codes (a short,
 *   fixed set), so the per-code counts are bounded too.
 * - Failures of verified peers never come here: they stay one event each.
 * - A held failure whose connection had a resumption ticket refused adds to its summary's
 *   `ticketsRefused` (per refusal code), so the refusals of a forged-ticket flood stay
 *   counted (auditMetrics' pqmcp.tickets.refused) however many are held back.
 * - The source is the caller's key (transport/admission.ts `sourceKey`: an IPv4 address,
 *   or an IPv6 /64), so a peer cannot get a fresh allowance per address of its prefix.
 * - The window timer is unref'd; close() stops it and flushes the last summaries. After
 *   close() every failure is admitted (the few handshakes a shutdown aborts).
 * - `now` and the timer functions are injectable for tests (the window: summary-window.ts).
 */
import { InvalidArgumentError } from '../errors.js';
import { SummaryWindow, type WindowClock } from '../summary-window.js';
import type { HandshakeFailureSummaryEvent } from './events.js';

export interface FailureReportOptions {
  /** Failures per source reported one by one per window. Default 20; 0: no limit (every failure reported). */
  perSource?: number;
  /** Window length, ms. Default 10 000. */
  windowMs?: number;
  /** Failures reported one by one per window over all sources. Default 10 x perSource. */
  total?: number;
  /** Sources given a summary of their own per window; the rest share one. Default 64. */
  maxSources?: number;
}

/** The clock and window timer, injectable for tests (summary-window.ts). */
export type FailureLimiterClock = WindowClock;

export const FAILURE_REPORT_DEFAULTS = Object.freeze({ perSource: 20, windowMs: 10_000, maxSources: 64 });

interface Held {
  count: number;
  codes: Record<string, number>;
  /** Of those, the ones whose connection had a resumption ticket refused: per the refusal's code. */
  ticketsRefused?: Record<string, number>;
}

/** Checked options; undefined: no limit (`false`, or perSource 0). */
export function resolveFailureReports(options: FailureReportOptions | false | undefined): Required<FailureReportOptions> | undefined {
  if (options === false) return undefined;
  const check = (ok: boolean, message: string): void => {
    if (!ok) throw new InvalidArgumentError(message);
  };
  check(options === undefined || (typeof options === 'object' && options !== null), 'failureReports must be an object or false');
  const o = options ?? {};
  const int = (v: unknown, min: number): boolean => Number.isSafeInteger(v) && (v as number) >= min;
  const perSource = o.perSource ?? FAILURE_REPORT_DEFAULTS.perSource;
  check(int(perSource, 0), 'failureReports.perSource must be an integer >= 0 (0: no limit)');
  if (perSource === 0) return undefined;
  const windowMs = o.windowMs ?? FAILURE_REPORT_DEFAULTS.windowMs;
  check(int(windowMs, 100) && windowMs <= 86_400_000, 'failureReports.windowMs must be an integer from 100 to 86 400 000');
  const total = o.total ?? perSource * 10;
  check(int(total, perSource), 'failureReports.total must be an integer >= perSource');
  const maxSources = o.maxSources ?? FAILURE_REPORT_DEFAULTS.maxSources;
  check(int(maxSources, 1), 'failureReports.maxSources must be an integer >= 1');
  return { perSource, windowMs, total, maxSources };
}

export class FailureReportLimiter {
  private readonly window: SummaryWindow;
  private written = new Map<string, number>();
  private writtenTotal = 0;
  private held = new Map<string, Held>();
  private other: Held = { count: 0, codes: {} };
  private closed = false;

  constructor(
    private readonly options: Required<FailureReportOptions>,
    /** Receives the summaries at the end of a window, one per source that had failures held back. */
    private readonly summarise: (event: HandshakeFailureSummaryEvent) => void,
    private readonly role: 'client' | 'server' = 'server',
    clock: FailureLimiterClock = {},
  ) {
    this.window = new SummaryWindow(options.windowMs, () => this.endWindow(), clock);
  }

  /**
   * Report this failure of `source` one by one? False: it was counted for the window's
   * summary, with `ticketRefused` (the code of a resumption ticket refused on its connection).
   */
  admit(source: string, code: string, ticketRefused?: string): boolean {
    if (this.closed) return true;
    this.window.roll();
    const n = this.written.get(source) ?? 0;
    if (n < this.options.perSource && this.writtenTotal < this.options.total) {
      this.written.set(source, n + 1);
      this.writtenTotal++;
      return true;
    }
    let held = this.held.get(source);
    if (held === undefined) {
      if (this.held.size < this.options.maxSources) this.held.set(source, (held = { count: 0, codes: {} }));
      else held = this.other;
    }
    held.count++;
    held.codes[code] = (held.codes[code] ?? 0) + 1;
    if (ticketRefused !== undefined) {
      const refused = (held.ticketsRefused ??= {});
      refused[ticketRefused] = (refused[ticketRefused] ?? 0) + 1;
    }
    return false;
  }

  /** Stop the timer and write the last summaries; later failures are all admitted. */
  close(): void {
    if (this.closed) return;
    this.window.stop();
    this.flush();
    this.closed = true;
  }

  /** End the window: summarise what was held back, start a new one. */
  private endWindow(): void {
    this.flush();
    this.written = new Map();
    this.writtenTotal = 0;
  }

  private flush(): void {
    if (this.held.size === 0 && this.other.count === 0) return;
    const base = { time: this.window.now(), role: this.role, windowStart: this.window.start, windowMs: this.options.windowMs };
    const held = this.held;
    const other = this.other;
    this.held = new Map();
    this.other = { count: 0, codes: {} };
    const refused = (h: Held) => (h.ticketsRefused !== undefined ? { ticketsRefused: h.ticketsRefused } : {});
    for (const [source, h] of held) this.emit({ ...base, type: 'handshake.failure.summary', remoteAddress: source, count: h.count, codes: h.codes, ...refused(h) });
    if (other.count > 0) this.emit({ ...base, type: 'handshake.failure.summary', remoteAddress: undefined, count: other.count, codes: other.codes, ...refused(other) });
  }

  private emit(event: HandshakeFailureSummaryEvent): void {
    try {
      this.summarise(event);
    } catch {
      // A throwing sink must not break the listener.
    }
  }
}
