/**
 * Token buckets per source address (admission.ts `sourceKey`): `rate` tokens a second, at
 * most `burst` saved up. Used for new connections (edge.ts, before the WebSocket upgrade)
 * and new handshakes (the crypto pool's queue, crypto-queue.ts, before any crypto).
 *
 * Sharp edges:
 * - Bounded: at most `maxSources` buckets. Past it, buckets that have refilled are
 *   forgotten (they hold nothing a fresh bucket would not), then the least recently used.
 *   A forgotten source starts again with a full bucket: under more than `maxSources`
 *   active sources at once the limit fails open for the oldest, never closed for a newcomer.
 * - `rate` 0 means no limit (every take succeeds, nothing is stored).
 * - The clock is injectable (ms); the default is performance.now.
 */
import { InvalidArgumentError } from '../errors.js';
import { TokenBucket } from '../token-bucket.js';

export interface SourceRateOptions {
  /** Tokens per second; 0: no limit. */
  rate: number;
  /** Most tokens saved up (the burst), >= 1. Default: one second's worth (`rate`, at least 1). */
  burst?: number;
  /** Buckets kept at most. Default 4096. */
  maxSources?: number;
  /** Clock in ms (tests). Default performance.now. */
  now?: () => number;
}

export class SourceRates {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxSources: number;
  private readonly now: () => number;

  /** `what` names the option in error messages. */
  constructor(options: SourceRateOptions, what = 'rate') {
    const { rate } = options;
    if (!(typeof rate === 'number' && Number.isFinite(rate) && rate >= 0)) throw new InvalidArgumentError(`${what} must be a number >= 0`);
    const burst = options.burst ?? Math.max(1, rate);
    if (!(typeof burst === 'number' && Number.isFinite(burst) && burst >= 1)) throw new InvalidArgumentError(`${what}: burst must be a number >= 1`);
    this.rate = rate;
    this.burst = burst;
    this.maxSources = options.maxSources ?? 4096;
    this.now = options.now ?? (() => performance.now());
  }

  /** Buckets held (for tests and stats). */
  get size(): number {
    return this.buckets.size;
  }

  /** Take one token of `source`; false: none left (refuse). */
  take(source: string): boolean {
    if (this.rate === 0) return true;
    const now = this.now();
    const bucket = this.buckets.get(source) ?? new TokenBucket(this.rate, this.burst, now);
    // Re-insert: the map stays in least-recently-used order.
    this.buckets.delete(source);
    if (this.buckets.size >= this.maxSources) this.shrink(now);
    this.buckets.set(source, bucket);
    return bucket.tryTake(now);
  }

  /** Forget refilled buckets; if none, the least recently used ones, down to 3/4 of the bound. */
  private shrink(now: number): void {
    for (const [source, b] of this.buckets) if (b.full(now)) this.buckets.delete(source);
    const keep = Math.floor((this.maxSources * 3) / 4);
    for (const source of this.buckets.keys()) {
      if (this.buckets.size <= keep) break;
      this.buckets.delete(source);
    }
  }
}
