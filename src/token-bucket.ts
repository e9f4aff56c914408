/**
 * One token bucket: `rate` tokens a second, at most `burst` saved up, refilled lazily from
 * the millisecond clock its owner reads. The edge's per-source rates (transport/rate.ts) and
 * a session's KeyUpdate ration (session/key-update-budget.ts) are made of it; each checks
 * its own options, since their limits and messages differ.
 *
 * Sharp edges:
 * - The clock must not go backwards (performance.now, or a test clock): a time before the
 *   last one read refills nothing.
 * - `spend()` takes a token unconditionally (for work already done, as a KeyUpdate already
 *   decrypted); a caller that asks first (`hasToken`, `level`) never goes below zero.
 */

// The longest delay setTimeout honours (2^31 - 1 ms); `msUntilToken` never says more.
import { MAX_TIMER_MS } from './timer-limit.js';

export class TokenBucket {
  private tokens: number;
  private at: number;

  /** Starts full at `now`. */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** At least one token without reading the clock (refilling can only add): a cheap first check. */
  get hasToken(): boolean {
    return this.tokens >= 1;
  }

  /** Tokens held at `now`, after refilling up to then. */
  level(now: number): number {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
      this.at = now;
    }
    return this.tokens;
  }

  /** Take one token at `now` (the caller has checked that there is one). */
  spend(now: number): void {
    this.tokens = this.level(now) - 1;
  }

  /** Take one token at `now` if there is one; false: none left. */
  tryTake(now: number): boolean {
    if (this.level(now) < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True once the bucket has refilled completely by `now` (it holds nothing a new one would not). */
  full(now: number): boolean {
    return this.level(now) >= this.burst;
  }

  /** Milliseconds from `now` until a token is there (0 if one is), at most what setTimeout can wait. */
  msUntilToken(now: number): number {
    const tokens = this.level(now);
    return tokens >= 1 ? 0 : Math.min(MAX_TIMER_MS, Math.ceil(((1 - tokens) / this.rate) * 1000));
  }
}
