/**
 * CredentialWatch (cli/credential-watch.ts) on fake timers: which `credential-expiring` lines
 * a gateway logs as its own credential's end comes near (7 days, 1 day, 1 hour), the one
 * `credential-expired` line at its end, and a renewal starting over. No real time passes.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CredentialWatch } from '../../src/cli/credential-watch.js';
import { isoTime } from '../../src/cli/output.js';

const DAY = 86_400;
const T0 = Date.UTC(2026, 11, 1) / 1000;

let logged: { event: string; fields: Record<string, unknown> }[];
const log = (event: string, fields: Record<string, unknown>): void => void logged.push({ event, fields });
const now = (): number => Date.now();
/** Run the fake clock (and the timers due) up to `ms` since the epoch. */
const advanceTo = (ms: number): void => void vi.advanceTimersByTime(ms - Date.now());
const left = (): unknown[] => logged.map((l) => (l.event === 'credential-expiring' ? l.fields['secondsLeft'] : l.event));

beforeEach(() => {
  vi.useFakeTimers({ now: T0 * 1000 });
  logged = [];
});
afterEach(() => vi.useRealTimers());

describe('CredentialWatch', () => {
  it('30 days out: nothing now, then one line at 7 days, 1 day and 1 hour left, and one at the end', () => {
    const end = T0 + 30 * DAY;
    const watch = new CredentialWatch(end, log, now);
    expect(logged).toEqual([]);
    advanceTo((end - 7 * DAY) * 1000 - 1);
    expect(logged).toEqual([]);
    advanceTo((end - 7 * DAY) * 1000 + 5);
    expect(left()).toEqual([7 * DAY - 1]);
    advanceTo((end - DAY) * 1000 + 5);
    expect(left()).toEqual([7 * DAY - 1, DAY - 1]);
    advanceTo((end - 3600) * 1000 + 5);
    expect(left()).toEqual([7 * DAY - 1, DAY - 1, 3599]);
    // Valid at notAfter itself (the window is inclusive): the end is logged just after.
    advanceTo(end * 1000);
    expect(logged).toHaveLength(3);
    advanceTo(end * 1000 + 5);
    expect(left()).toEqual([7 * DAY - 1, DAY - 1, 3599, 'credential-expired']);
    expect(logged[3]!.fields).toEqual({ notAfter: '2026-12-31T00:00:00Z' });
    advanceTo((end + 30 * DAY) * 1000);
    expect(logged).toHaveLength(4);
    watch.close();
  });

  it('started 3 days before the end: one line now (not one per threshold passed), then 1 day and 1 hour', () => {
    const watch = new CredentialWatch(T0 + 3 * DAY, log, now);
    expect(left()).toEqual([3 * DAY]);
    advanceTo((T0 + 2 * DAY) * 1000 + 5);
    expect(left()).toEqual([3 * DAY, DAY - 1]);
    watch.close();
  });

  it('started 30 minutes before the end: one line; already ended: credential-expired at once', () => {
    new CredentialWatch(T0 + 1800, log, now).close();
    expect(left()).toEqual([1800]);
    logged = [];
    new CredentialWatch(T0 - 1, log, now).close();
    expect(left()).toEqual(['credential-expired']);
  });

  it('a renewal starts over with the new end; close() stops every timer', () => {
    const watch = new CredentialWatch(T0 + 2 * DAY, log, now);
    expect(left()).toEqual([2 * DAY]);
    watch.renewed(T0 + 40 * DAY);
    advanceTo((T0 + 33 * DAY) * 1000 + 5);
    expect(left()).toEqual([2 * DAY, 7 * DAY - 1]);
    watch.close();
    vi.advanceTimersByTime(40 * DAY * 1000);
    expect(logged).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('valid at notAfter itself: at that instant one last warning, the end a millisecond later', () => {
    const watch = new CredentialWatch(T0, log, now);
    expect(left()).toEqual([0]);
    advanceTo(T0 * 1000 + 1);
    expect(left()).toEqual([0, 'credential-expired']);
    watch.close();
  });

  it('a notAfter Date cannot hold (up to 2^53 - 1 is a valid credential): no line, no throw, written as Unix seconds', () => {
    const watch = new CredentialWatch(2 ** 53 - 1, log, now);
    advanceTo((T0 + 400 * DAY) * 1000);
    expect(logged).toEqual([]);
    expect(isoTime(2 ** 53 - 1)).toBe('9007199254740991 (Unix seconds)');
    expect(isoTime(T0)).toBe('2026-12-01T00:00:00Z');
    watch.close();
  });
});
