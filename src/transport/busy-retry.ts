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
