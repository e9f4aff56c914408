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
 * - Events are read from files, and a trail can be edited with its hashes recomputed by
 *   whoever can write it: the fields a counted event is read by are checked first (`time` a
 *   finite number; a request's agentId, issuer and method strings, name absent or a string,
 *   byte counts non-negative safe integers, durationMs a non-negative finite number, outcome
 *   one of the known ones; a failure's code a string; a summary's codes an object). An event
 *   of a counted type with a field of the wrong type is not counted: it is counted in
 *   `skippedEvents` instead (it neither crashes the report nor concatenates strings into a
 *   total). Events of other types are not read. Error codes are keys of a null-prototype
 *   map, so `__proto__` is counted like any code.
 */
import type { AuditEvent, RequestEvent, RequestOutcome } from './events.js';


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

/** Error code -> count, with no prototype: a code named "__proto__" is a key like another. */
function codeMap(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

const OUTCOMES: ReadonlySet<unknown> = new Set<RequestOutcome>(['ok', 'error', 'denied', 'unanswered', 'cancelled']);
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isString = (v: unknown): v is string => typeof v === 'string';

/** The fields ReportTally reads of a counted event have the types they are read as. */
function wellFormed(e: AuditEvent): boolean {
  const x = e as unknown as Record<string, unknown>;
  if (typeof x.time !== 'number' || !Number.isFinite(x.time)) return false;
  if (e.type === 'request') {
    return (
      isString(x.agentId) &&
      isString(x.issuer) &&
      isString(x.method) &&
      (x.name === undefined || isString(x.name)) &&
      isCount(x.requestBytes) &&
      isCount(x.responseBytes) &&
      typeof x.durationMs === 'number' &&
      Number.isFinite(x.durationMs) &&
      x.durationMs >= 0 &&
      OUTCOMES.has(x.outcome)
    );
  }
  if (e.type === 'handshake.failure') return isString(x.code);
  return typeof x.codes === 'object' && x.codes !== null && !Array.isArray(x.codes);
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
  private readonly totals: FailureTotals = { failures: 0, oneByOne: 0, summarised: 0, byCode: codeMap() };
  private skippedEvents = 0;

  constructor(private readonly options: ReportOptions) {}

  /** Events of a counted type not counted because a field they are read by has the wrong type. */
  get skipped(): number {
    return this.skippedEvents;
  }

  add(e: AuditEvent): void {
    const counted = e.type === 'request' || e.type === 'handshake.failure' || e.type === 'handshake.failure.summary';
    if (!counted) return;
    if (!wellFormed(e)) {
      this.skippedEvents++;
      return;
    }
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

  /** The failed handshakes so far (a copy; `byCode` has a null prototype). */
  failures(): FailureTotals {
    return { ...this.totals, byCode: Object.assign(codeMap(), this.totals.byCode) };
  }

  private failed(code: string, n: number): void {
    this.totals.failures += n;
    this.totals.byCode[code] = (this.totals.byCode[code] ?? 0) + n;
  }
}
