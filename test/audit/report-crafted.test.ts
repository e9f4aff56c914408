/**
 * `audit report` over a trail edited with its hashes recomputed (whoever can write the trail
 * can do that; `audit verify` with anchors is what finds it): events whose fields have the
 * wrong types are counted apart, not crashed on or added as strings, and error codes named
 * like Object.prototype's members are counted like any other (review 9).
 */
import { describe, expect, it } from 'vitest';
import { ReportTally, failureTotals, meter } from '../../src/audit/report.js';
import type { AuditEvent } from '../../src/audit/index.js';

const request = (over: Record<string, unknown> = {}): AuditEvent =>
  ({
    type: 'request', time: 1_000, role: 'server', sessionId: 'ab', agentId: 'agent://a', issuer: 'issuer://x', fingerprint: 'cd', serial: '01',
    direction: 'fromPeer', method: 'tools/call', name: 'echo', requestBytes: 10, responseBytes: 20, durationMs: 5, outcome: 'ok', ...over,
  }) as unknown as AuditEvent;
const failure = (code: unknown, over: Record<string, unknown> = {}): AuditEvent => ({ type: 'handshake.failure', time: 1_000, role: 'server', remoteAddress: '127.0.0.1', code, message: 'm', ...over }) as unknown as AuditEvent;
const summary = (codes: unknown): AuditEvent => ({ type: 'handshake.failure.summary', time: 1_000, role: 'server', remoteAddress: '127.0.0.1', count: 9, codes, windowStart: 0, windowMs: 1000 }) as unknown as AuditEvent;

/** Events of counted types with a field of the wrong type, as JSON can carry them. */
const crafted: AuditEvent[] = [
  request({ requestBytes: '100' }), // would be concatenated into the total
  request({ responseBytes: -5 }),
  request({ requestBytes: 1.5 }),
  request({ durationMs: null }),
  request({ durationMs: '7' }),
  request({ agentId: 7 }),
  request({ issuer: null }),
  request({ method: ['tools/call'] }),
  request({ name: { toString: 1 } }),
  request({ outcome: 'weird' }),
  request({ time: '1000' }),
  request({ time: null }),
  failure(null),
  failure({ code: 'x' }),
  failure('ERR_X', { time: 'soon' }),
  summary(null), // crashed report with an internal error
  summary([3]),
  summary('ERR_X'),
];

describe('audit report over a crafted trail (review 9)', () => {
  it('skips and counts events of counted types whose fields have the wrong types; the well-formed ones are counted as before', () => {
    const events: AuditEvent[] = [request(), ...crafted, request({ agentId: 'agent://b', name: undefined, outcome: 'error', durationMs: 2.5 }), failure('ERR_DECODE')];
    // Types the report does not read are not checked (nor counted as skipped).
    events.push({ type: 'session.open', time: 'x', agentId: null } as unknown as AuditEvent);
    const tally = new ReportTally({ by: 'agent' });
    for (const e of events) tally.add(e);
    expect(tally.skipped).toBe(crafted.length);
    expect(tally.rows()).toEqual([
      { key: 'agent://a', calls: 1, errors: 0, denials: 0, requestBytes: 10, responseBytes: 20, totalMs: 5 },
      { key: 'agent://b', calls: 1, errors: 1, denials: 0, requestBytes: 10, responseBytes: 20, totalMs: 2.5 },
    ]);
    expect(tally.failures()).toMatchObject({ failures: 1, oneByOne: 1, summarised: 0 });
    // The same through meter() and failureTotals(), which use it.
    expect(meter(events, { by: 'tool' }).map((r) => [r.key, r.calls, r.requestBytes])).toEqual([
      ['echo', 1, 10],
      ['tools/call', 1, 10],
    ]);
    expect(failureTotals(events).failures).toBe(1);
    // With --since, a crafted event is still counted as skipped, not silently filtered.
    const since = new ReportTally({ by: 'agent', since: 2_000 });
    for (const e of events) since.add(e);
    expect(since.skipped).toBe(crafted.length);
    expect(since.rows()).toEqual([]);
  });

  it('counts error codes named like members of Object.prototype (__proto__, constructor, toString)', () => {
    const events = [failure('__proto__'), failure('constructor'), summary(JSON.parse('{"__proto__":3,"toString":2,"ERR_X":"4","hasOwnProperty":1}'))];
    const totals = failureTotals(events);
    expect(Object.getPrototypeOf(totals.byCode)).toBeNull();
    expect(Object.entries(totals.byCode).sort()).toEqual([
      ['__proto__', 4],
      ['constructor', 1],
      ['hasOwnProperty', 1],
      ['toString', 2],
    ]);
    expect(totals).toMatchObject({ failures: 8, oneByOne: 2, summarised: 6 });
    // JSON output keeps "__proto__" as a key.
    expect(JSON.parse(JSON.stringify(totals.byCode))).toHaveProperty(['__proto__'], 4);
  });
});
