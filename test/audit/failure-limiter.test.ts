/**
 * FailureReportLimiter (the listener's `failureReports` rate) with an injected clock and
 * timer: per-source and global allowances per window, summaries whose counts add up, the
 * sources past maxSources folded into one, the timer's tick, close(), option checks. The
 * listener's use of it runs over real sockets in test/transport/failure-reports.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FailureReportLimiter, resolveFailureReports } from '../../src/audit/failure-limiter.js';
import type { HandshakeFailureSummaryEvent } from '../../src/audit/index.js';

function make(options: Parameters<typeof resolveFailureReports>[0]) {
  let now = 1_000;
  let tick: (() => void) | undefined;
  let cleared = false;
  const summaries: HandshakeFailureSummaryEvent[] = [];
  const resolved = resolveFailureReports(options)!;
  const limiter = new FailureReportLimiter(resolved, (s) => void summaries.push(s), 'server', {
    now: () => now,
    setInterval: (fn) => ((tick = fn), {}),
    clearInterval: () => void (cleared = true),
  });
  return { limiter, summaries, advance: (ms: number) => void (now += ms), tick: () => tick!(), cleared: () => cleared };
}

describe('FailureReportLimiter', () => {
  it('per source: perSource one by one, the rest in one summary per window that adds up', () => {
    const t = make({ perSource: 3, windowMs: 1_000 });
    const a = Array.from({ length: 10 }, (_, i) => t.limiter.admit('10.0.0.1', i % 2 ? 'ERR_SERVER_BUSY' : 'ERR_HANDSHAKE_TIMEOUT'));
    expect(a.filter(Boolean)).toHaveLength(3);
    expect(t.limiter.admit('10.0.0.2', 'ERR_SERVER_BUSY')).toBe(true);
    expect(t.summaries).toEqual([]);
    t.advance(1_000);
    t.tick();
    expect(t.summaries).toEqual([{ type: 'handshake.failure.summary', time: 2_000, role: 'server', remoteAddress: '10.0.0.1', count: 7, codes: { ERR_SERVER_BUSY: 4, ERR_HANDSHAKE_TIMEOUT: 3 }, windowStart: 1_000, windowMs: 1_000 }]);
    // A new window: a new allowance; an empty window writes nothing.
    expect(t.limiter.admit('10.0.0.1', 'ERR_SERVER_BUSY')).toBe(true);
    t.advance(1_000);
    t.tick();
    expect(t.summaries).toHaveLength(1);
  });

  it('counts the held-back failures whose connection had a resumption ticket refused, per refusal code, in their summary (the folded one too); none: no ticketsRefused', () => {
    const t = make({ perSource: 1, total: 2, maxSources: 1, windowMs: 1_000 });
    expect(t.limiter.admit('a', 'ERR_UNTRUSTED_ISSUER', 'ERR_TICKET_INVALID')).toBe(true);
    expect(t.limiter.admit('b', 'ERR_UNTRUSTED_ISSUER')).toBe(true);
    for (let i = 0; i < 5; i++) t.limiter.admit('a', 'ERR_UNTRUSTED_ISSUER', i < 4 ? 'ERR_TICKET_INVALID' : 'ERR_TICKET_UNKNOWN_KEY');
    t.limiter.admit('a', 'ERR_HANDSHAKE_TIMEOUT');
    t.limiter.admit('b', 'ERR_HANDSHAKE_TIMEOUT');
    t.limiter.admit('c', 'ERR_UNTRUSTED_ISSUER', 'ERR_TICKET_REPLAYED');
    t.limiter.close();
    expect(t.summaries.map(({ remoteAddress, count, codes, ticketsRefused }) => ({ remoteAddress, count, codes, ticketsRefused }))).toEqual([
      { remoteAddress: 'a', count: 6, codes: { ERR_UNTRUSTED_ISSUER: 5, ERR_HANDSHAKE_TIMEOUT: 1 }, ticketsRefused: { ERR_TICKET_INVALID: 4, ERR_TICKET_UNKNOWN_KEY: 1 } },
      { remoteAddress: undefined, count: 2, codes: { ERR_HANDSHAKE_TIMEOUT: 1, ERR_UNTRUSTED_ISSUER: 1 }, ticketsRefused: { ERR_TICKET_REPLAYED: 1 } },
    ]);
    const quiet = make({ perSource: 1, windowMs: 1_000 });
    quiet.limiter.admit('a', 'X');
    quiet.limiter.admit('a', 'X');
    quiet.limiter.close();
    expect('ticketsRefused' in quiet.summaries[0]!).toBe(false);
  });

  it('a window that ran out without a tick is closed at the next failure', () => {
    const t = make({ perSource: 1, windowMs: 1_000 });
    t.limiter.admit('a', 'X');
    expect(t.limiter.admit('a', 'X')).toBe(false);
    t.advance(5_000);
    expect(t.limiter.admit('a', 'X')).toBe(true);
    expect(t.summaries).toMatchObject([{ remoteAddress: 'a', count: 1 }]);
  });

  it('the global total caps all sources together; past maxSources summaries are folded into one without an address', () => {
    const t = make({ perSource: 2, total: 4, maxSources: 2, windowMs: 1_000 });
    let told = 0;
    for (let s = 0; s < 6; s++) for (let i = 0; i < 3; i++) if (t.limiter.admit(`s${s}`, 'E')) told++;
    expect(told).toBe(4);
    t.limiter.close();
    expect(t.cleared()).toBe(true);
    expect(t.summaries.map((s) => s.remoteAddress)).toEqual(['s0', 's1', undefined]);
    expect(t.summaries.reduce((n, s) => n + s.count, 0)).toBe(18 - 4);
    // After close() every failure is admitted (the handshakes a shutdown aborts).
    expect(t.limiter.admit('s0', 'E')).toBe(true);
  });

  it('a throwing sink is contained', () => {
    const resolved = resolveFailureReports({ perSource: 1 })!;
    const limiter = new FailureReportLimiter(resolved, () => {
      throw new Error('sink');
    }, 'server', { setInterval: () => ({}), clearInterval: () => {} });
    limiter.admit('a', 'E');
    limiter.admit('a', 'E');
    expect(() => limiter.close()).not.toThrow();
  });

  it('defaults and option checks', () => {
    const ok = (v: Parameters<typeof resolveFailureReports>[0]) => resolveFailureReports(v);
    expect(ok(undefined)).toEqual({ perSource: 20, windowMs: 10_000, total: 200, maxSources: 64 });
    expect(ok({ perSource: 5 })).toMatchObject({ perSource: 5, total: 50 });
    expect(ok(false)).toBeUndefined();
    expect(ok({ perSource: 0 })).toBeUndefined();
    for (const bad of [{ perSource: -1 }, { perSource: 2.5 }, { windowMs: 50 }, { perSource: 10, total: 9 }, { maxSources: 0 }, null, 'on']) {
      expect(() => ok(bad as never)).toThrow(/failureReports/);
    }
  });
});
