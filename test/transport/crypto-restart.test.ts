/**
 * The crypto pool's restart budget (crypto-restart.ts), shared by the guard's reserve and
 * every worker slot: backoff x4 from RESTART_BACKOFF_MS, at most RESTARTS in a row, a
 * thread that lived RESTART_STABLE_MS counts as new, a start that fails counts as a death,
 * `exhausted` once, nothing after stop() or close. Fake timers and an injected clock: the
 * order of events is asserted, never how long they took.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Restarter, RESTART_BACKOFF_MS, RESTARTS, RESTART_STABLE_MS } from '../../src/transport/crypto-restart.js';

describe('Restarter (crypto-restart.ts)', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  function setup(startOk: () => boolean = () => true, restartBackoffMs?: number) {
    const log: string[] = [];
    let now = 0;
    let closed = false;
    const r = new Restarter(
      { now: () => now, closed: () => closed, restartBackoffMs },
      async () => {
        log.push(`start@${now}`);
        if (!startOk()) throw new Error('did not start');
      },
      () => void log.push('exhausted'),
    );
    return { r, log, advance: (ms: number) => ((now += ms), vi.advanceTimersByTimeAsync(ms)), close: () => void (closed = true) };
  }

  it(`restarts after ${RESTART_BACKOFF_MS} ms, then x4 each time, ${RESTARTS} times in a row; the next death spends the budget (once)`, async () => {
    const { r, log, advance } = setup();
    for (let i = 0; i < RESTARTS; i++) {
      r.died();
      const delay = RESTART_BACKOFF_MS * 4 ** i;
      await advance(delay - 1);
      expect(log).toHaveLength(i); // not before its backoff
      await advance(1);
      expect(log).toHaveLength(i + 1);
    }
    r.died();
    expect(log.at(-1)).toBe('exhausted');
    r.died();
    await advance(RESTART_STABLE_MS * 2);
    expect(log.filter((e) => e === 'exhausted')).toHaveLength(1);
    expect(log).toHaveLength(RESTARTS + 1);
  });

  it(`a thread that lived ${RESTART_STABLE_MS / 1000} s since its start resets the count; a start that fails counts as a death`, async () => {
    let ok = true;
    const { r, log, advance } = setup(() => ok);
    r.died();
    await advance(RESTART_BACKOFF_MS);
    r.died();
    await advance(RESTART_BACKOFF_MS * 4);
    expect(log).toHaveLength(2);
    await advance(RESTART_STABLE_MS); // this one lived a minute
    r.died();
    await advance(RESTART_BACKOFF_MS); // the first backoff again, not the third
    expect(log).toHaveLength(3);
    // Starts that fail: each is a death in the row, restarted after the next backoff, until spent.
    ok = false;
    r.died();
    await advance(RESTART_BACKOFF_MS * 4); // start 4 fails: a death, the 3rd restart scheduled
    await advance(RESTART_BACKOFF_MS * 16); // start 5 fails: the budget is spent
    expect(log.slice(3)).toEqual([expect.stringMatching(/^start@/), expect.stringMatching(/^start@/), 'exhausted']);
  });

  it('nothing starts after stop() or once the host is closed', async () => {
    const a = setup();
    a.r.died();
    a.r.stop();
    await a.advance(RESTART_STABLE_MS);
    expect(a.log).toEqual([]);
    const b = setup();
    b.r.died();
    b.close();
    await b.advance(RESTART_STABLE_MS);
    b.r.died();
    await b.advance(RESTART_STABLE_MS);
    expect(b.log).toEqual([]);
  });

  it("a host's restartBackoffMs (the pool's option, for tests) replaces the first backoff; still x4 each time", async () => {
    const { r, log, advance } = setup(() => true, 10);
    for (let i = 0; i < RESTARTS; i++) {
      r.died();
      await advance(10 * 4 ** i - 1);
      expect(log).toHaveLength(i);
      await advance(1);
      expect(log).toHaveLength(i + 1);
    }
  });
});
