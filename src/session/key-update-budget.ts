/**
 * The receive-side ration of a peer's KeyUpdates (docs/protocol.md section 3.4): a token
 * bucket of `rate` tokens a second holding at most `burst`. Each KeyUpdate the Session
 * takes from the peer derives new keys (three HKDF-Expand and a cipher set-up, about as
 * much as opening five small records); an authenticated peer that sends nothing else would
 * otherwise spend the receiver's CPU at its own pace. The Session asks `take()` for every
 * KeyUpdate it must pay for, and stops processing records (stalls) while `ready` is false;
 * the transport waits `waitMs` and drains, and does not read the socket meanwhile, so the
 * peer is slowed by backpressure, never refused.
 *
 * Sharp edges:
 * - Free, never taken (the Session decides): a KeyUpdate retiring a key that protected at
 *   least keyUpdateInterval records (the automatic update of a peer with this side's
 *   thresholds), and the first one after this side's own update_requested (its answer).
 * - `take()` never refuses: the KeyUpdate is already decrypted when it is known to be one.
 *   The Session checks `ready` before each record, so the balance never goes below zero.
 * - The clock is monotonic milliseconds (performance.now by default), not the transports'
 *   injectable wall clock: a test clock that stands still must not starve a session.
 */
import { InvalidArgumentError } from '../errors.js';
import { TokenBucket } from '../token-bucket.js';

export interface KeyUpdateRate {
  /** Tokens a second (KeyUpdates a peer may force beyond the free ones), > 0. */
  rate: number;
  /** Most tokens saved up, >= 1. Default 32 (MAX_KEY_UPDATES_IN_A_ROW). */
  burst?: number;
  /** Monotonic clock in ms (tests). Default performance.now. */
  now?: () => number;
}

export class KeyUpdateBudget {
  private readonly bucket: TokenBucket;
  private readonly now: () => number;

  constructor(options: KeyUpdateRate) {
    const { rate } = options;
    const burst = options.burst ?? 32;
    if (!(typeof rate === 'number' && Number.isFinite(rate) && rate > 0)) throw new InvalidArgumentError('keyUpdateRate: rate must be a number > 0');
    if (!(typeof burst === 'number' && Number.isFinite(burst) && burst >= 1)) throw new InvalidArgumentError('keyUpdateRate: burst must be a number >= 1');
    this.now = options.now ?? (() => performance.now());
    this.bucket = new TokenBucket(rate, burst, this.now());
  }

  /** At least one token: the next KeyUpdate may be processed. */
  get ready(): boolean {
    return this.bucket.hasToken || this.bucket.level(this.now()) >= 1;
  }

  /** Milliseconds until `ready` (0 if it is); at most what setTimeout can wait (about 24.8 days). */
  get waitMs(): number {
    return this.bucket.msUntilToken(this.now());
  }

  /** Pay for one KeyUpdate. */
  take(): void {
    this.bucket.spend(this.now());
  }
}
