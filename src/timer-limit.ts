/**
 * setTimeout's and setInterval's largest delay. Node runs a longer one after 1 ms (with a
 * TimeoutOverflowWarning), so every option that reaches a raw timer is checked against it:
 * the transports' (transport/timers.ts re-exports these) and the audit log's flushMs.
 * A top-level module so that layers below the transport (audit/, token-bucket.ts) use it
 * without importing transport/.
 */

/** 2^31 - 1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** InvalidArgumentError text for a delay option above MAX_TIMER_MS. */
export function timerLimitText(name: string): string {
  return `${name} must be at most ${MAX_TIMER_MS} ms (about 24.8 days: the timers' limit)`;
}
