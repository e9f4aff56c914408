/**
 * The client's answer to a busy server (ERR_SERVER_BUSY: close code 4006, alert server_busy,
 * or HTTP 429/503 to the WebSocket upgrade): try again after
 * a bounded, jittered, exponentially growing delay, as a well-behaved client of any
 * overloaded service should (no synchronized retry waves, no unbounded hammering).
 *
 *   delay before retry n (1-based) = cap/2 + random(0, cap/2), cap = min(maxDelayMs, baseDelayMs * 2^(n-1))
 *
 * ("equal jitter": at least half the backoff always passes, the rest is random).
 *
 * Sharp edges:
 * - Only a refusal before the handshake completed is retried: nothing was accepted yet,
 *   so sending the same first flight again loses and repeats nothing.
 * - `attempts` bounds the retries (not counting the first try); 0 or `false` disables.
 *
 * The policy and its delay (resolveBusyRetry, busyRetryDelay), and one client transport's
 * retries (BusyRetries: the count, the backoff timer, the wait a close() ends); which
 * refusal is retried, and re-sending what was sent before it, are the client's (client.ts).
 */
import { InvalidArgumentError } from '../errors.js';
import { MAX_TIMER_MS, timerLimitText } from './timers.js';
import type { PqmcpError } from '../errors.js';

export interface BusyRetryOptions {
  /** Retries after the first try. Default 5. */
  attempts?: number;
  /** Backoff of the first retry (before jitter). Default 250 ms. */
  baseDelayMs?: number;
  /** Largest backoff (before jitter). Default 5 000 ms. */
  maxDelayMs?: number;
}

/** What `onBusyRetry` hears before each retry. */
export interface BusyRetryEvent {
  /** 1 for the first retry. */
  attempt: number;
  attempts: number;
  /** The wait before this retry. */
  delayMs: number;
  /** The refusal that caused it. */
  error: PqmcpError;
}

export const BUSY_RETRY_DEFAULTS = { attempts: 5, baseDelayMs: 250, maxDelayMs: 5_000 } as const;

export type ResolvedBusyRetry = Required<BusyRetryOptions>;

function count(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (name === 'attempts' && !Number.isInteger(value))) {
    throw new InvalidArgumentError(`busyRetry.${name} must be a number >= ${min}${name === 'attempts' ? ' (an integer)' : ''}`);
  }
  return value;
}

/** Check the option; undefined when retrying is off. */
export function resolveBusyRetry(option: false | BusyRetryOptions | undefined): ResolvedBusyRetry | undefined {
  if (option === false) return undefined;
  if (option !== undefined && (typeof option !== 'object' || option === null)) throw new InvalidArgumentError('busyRetry must be false or { attempts, baseDelayMs, maxDelayMs }');
  const o = option ?? {};
  const resolved = {
    attempts: count(o.attempts, 'attempts', BUSY_RETRY_DEFAULTS.attempts, 0),
    baseDelayMs: count(o.baseDelayMs, 'baseDelayMs', BUSY_RETRY_DEFAULTS.baseDelayMs, 0),
    maxDelayMs: count(o.maxDelayMs, 'maxDelayMs', BUSY_RETRY_DEFAULTS.maxDelayMs, 0),
  };
  if (resolved.maxDelayMs > MAX_TIMER_MS) throw new InvalidArgumentError(timerLimitText('busyRetry.maxDelayMs'));
  return resolved.attempts > 0 ? resolved : undefined;
}

/** The wait before retry `attempt` (1-based). `random` in [0, 1). */
export function busyRetryDelay(policy: ResolvedBusyRetry, attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(cap / 2 + random() * (cap / 2));
}

/**
 * One client transport's retries of a busy server: how many so far, and the backoff being
 * waited (its timer, or a wait before dialing again), which the transport's close() ends.
 */
export class BusyRetries {
  /** Retries of a busy server so far. */
  private retries = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Ends a wait before dialing again (close() during the backoff). */
  private wake: (() => void) | undefined;

  constructor(
    /** The checked policy (resolveBusyRetry); undefined when retrying is off. */
    readonly policy: ResolvedBusyRetry | undefined,
    /** The client's options: onBusyRetry, read at each retry. */
    private readonly options: { onBusyRetry?: ((event: BusyRetryEvent) => void) | undefined },
  ) {}

  /** Retrying is on and not every retry is spent. */
  get left(): boolean {
    return this.policy !== undefined && this.retries < this.policy.attempts;
  }

  /** Count one more busy retry, tell onBusyRetry, and return its backoff delay. */
  next(error: PqmcpError): number {
    const policy = this.policy!;
    const attempt = ++this.retries;
    const delayMs = busyRetryDelay(policy, attempt);
    try {
      this.options.onBusyRetry?.({ attempt, attempts: policy.attempts, delayMs, error });
    } catch {
      // Contained.
    }
    return delayMs;
  }

  /** Wait `delayMs` before dialing again; stop() ends the wait at once. */
  wait(delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.wake = undefined;
        resolve();
      };
      this.wake = wake;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        wake();
      }, delayMs);
    });
  }

  /** Run `retry` after `delayMs`, unless stop() comes first. */
  after(delayMs: number, retry: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      retry();
    }, delayMs);
  }

  /** The transport closes: the backoff's timer is cleared, and a wait ends now. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.wake?.();
  }
}
