/**
 * Metering from audit events: calls, errors, denials, bytes and time per agent, tool or
 * issuer (`pqmcp audit report`). Pure: give it the events (parsed lines of audit files).
 *
 * Sharp edges:
 * - Only `request` events are counted in the rows (both directions; a client's own trail
 *   counts the requests it sent). `unanswered` requests count as calls and as errors.
 * - Failed handshakes are totalled apart (`failureTotals`): the `handshake.failure` events
 *   plus the `count` of every `handshake.failure.summary` (the failures past the
 *   listener's `failureReports` rate), so the total is every failure the listener saw.
 * - Grouping by tool uses the tool, prompt or resource name when the request has one, else
 *   the method (`tools/list`, `initialize`...).
 */
import type { AuditEvent, RequestEvent } from './events.js';


export type ReportKey = 'agent' | 'tool' | 'issuer';

export interface ReportRow {
  /** The agent id, tool name or issuer id. */
  key: string;
  calls: number;
  errors: number;
  denials: number;
  requestBytes: number;
  responseBytes: number;
  /** Sum of request durations. */
  totalMs: number;
}

export interface ReportOptions {
  by: ReportKey;
  /** Only events at or after this time (ms since the epoch). */
  since?: number;
}

function keyOf(e: RequestEvent, by: ReportKey): string {
  if (by === 'agent') return e.agentId;
  if (by === 'issuer') return e.issuer;
  return e.name ?? e.method;
}

function newRow(key: string): ReportRow {
  return { key, calls: 0, errors: 0, denials: 0, requestBytes: 0, responseBytes: 0, totalMs: 0 };
}

function sorted(rows: Iterable<ReportRow>): ReportRow[] {
  return [...rows].sort((a, b) => b.calls - a.calls || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Rows sorted by calls (most first), then key. */
export function meter(events: Iterable<AuditEvent>, options: ReportOptions): ReportRow[] {
  const tally = new ReportTally(options);
  for (const e of events) tally.add(e);
  return tally.rows();
}

/** Failed handshakes (refused before the peer was verified), one by one and summarised. */
export interface FailureTotals {
  /** All of them: `oneByOne` + `summarised`. */
  failures: number;
  /** `handshake.failure` events. */
  oneByOne: number;
  /** Counted in `handshake.failure.summary` events. */
  summarised: number;
  /** Per error code, over both. */
  byCode: Record<string, number>;
}

/** Failures at or after `since` (a summary counts by its time, the end of its window). */
export function failureTotals(events: Iterable<AuditEvent>, since?: number): FailureTotals {
  const tally = new ReportTally({ by: 'agent', ...(since !== undefined ? { since } : {}) });
  for (const e of events) tally.add(e);
  return tally.failures();
}

/**
 * meter() and failureTotals() one event at a time (`pqmcp audit report` over a trail read
 * line by line): what it keeps is one row per agent, tool or issuer and one count per error
 * code, however many events it is given.
 */
export class ReportTally {
  private readonly byKey = new Map<string, ReportRow>();
  private readonly totals: FailureTotals = { failures: 0, oneByOne: 0, summarised: 0, byCode: {} };

  constructor(private readonly options: ReportOptions) {}

  add(e: AuditEvent): void {
    if (this.options.since !== undefined && e.time < this.options.since) return;
    if (e.type === 'request') {
      const key = keyOf(e, this.options.by);
      let row = this.byKey.get(key);
      if (!row) this.byKey.set(key, (row = newRow(key)));
      row.calls++;
      if (e.outcome === 'error' || e.outcome === 'unanswered') row.errors++;
      if (e.outcome === 'denied') row.denials++;
      row.requestBytes += e.requestBytes;
      row.responseBytes += e.responseBytes;
      row.totalMs += e.durationMs;
    } else if (e.type === 'handshake.failure') {
      this.totals.oneByOne++;
      this.failed(e.code, 1);
    } else if (e.type === 'handshake.failure.summary') {
      for (const [code, n] of Object.entries(e.codes)) {
        if (!(Number.isSafeInteger(n) && n > 0)) continue;
        this.totals.summarised += n;
        this.failed(code, n);
      }
    }
  }

  /** Rows sorted by calls (most first), then key (copies). */
  rows(): ReportRow[] {
    return sorted([...this.byKey.values()].map((r) => ({ ...r })));
  }

  /** The failed handshakes so far (a copy). */
  failures(): FailureTotals {
    return { ...this.totals, byCode: { ...this.totals.byCode } };
  }

  private failed(code: string, n: number): void {
    this.totals.failures += n;
    this.totals.byCode[code] = (this.totals.byCode[code] ?? 0) + n;
  }
}
