/**
 * StdinShares (src/cli/stdin-share.ts): each session's bytes queued in a child's stdin,
 * counted per line until the pipe takes it; a session past its fair share of the budget is
 * paused and resumed at half its share, the others are left alone (review F2). The gateway
 * tests with real processes are in stdin-hold.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { StdinShares } from '../../src/cli/stdin-share.js';

class Holder {
  paused = false;
  calls = 0;
  pauseReading(): void {
    this.paused = true;
    this.calls++;
  }
  resumeReading(): void {
    this.paused = false;
    this.calls++;
  }
}

describe('StdinShares', () => {
  it('pauses only the session over its share, and resumes it at half its share as its lines flush', () => {
    const shares = new StdinShares<Holder>(100);
    const [flooder, other] = [new Holder(), new Holder()];
    shares.add(flooder);
    shares.add(other);
    const flushes = [30, 30].map((n) => shares.wrote(flooder, n));
    expect(flooder.paused).toBe(true); // 60 > 100 / 2
    const small = shares.wrote(other, 10);
    expect(other.paused).toBe(false);
    flushes[0]!(); // 30 left: above 25
    expect(flooder.paused).toBe(true);
    small();
    flushes[1]!(); // 0 left
    expect(flooder.paused).toBe(false);
    expect([shares.bytesOf(flooder), shares.bytesOf(other)]).toEqual([0, 0]);
    expect(flooder.calls).toBe(2); // paused once, resumed once
  });

  it('a session alone has the whole budget; one that ends no longer counts, and its late flushes change nothing', () => {
    const shares = new StdinShares<Holder>(100);
    const [a, b] = [new Holder(), new Holder()];
    shares.add(a);
    shares.wrote(a, 90);
    expect(a.paused).toBe(false);
    shares.add(b);
    const late = shares.wrote(b, 60);
    expect(b.paused).toBe(true);
    shares.remove(b);
    late();
    expect(shares.bytesOf(b)).toBe(0);
    expect(shares.isPaused(b)).toBe(false);
    // Lines written on nobody's behalf (a session that is not added) are not counted.
    shares.wrote(new Holder(), 1000)();
    expect(shares.bytesOf(a)).toBe(90);
  });
});
