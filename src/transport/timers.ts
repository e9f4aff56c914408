/**
 * Timer helpers for the transports that work in Node and in browsers alike.
 *
 * Sharp edges:
 * - `unref` is a no-op where timers have no `unref` (browsers): there a pending timer keeps
 *   nothing alive anyway.
 * - `defer` runs after I/O callbacks already queued (setImmediate in Node, a zero timeout
 *   elsewhere), never synchronously.
 */
export type Timer = ReturnType<typeof setTimeout>;

/**
 * setTimeout's and setInterval's largest delay (2^31 - 1 ms, about 24.8 days): Node runs a
 * longer one after 1 ms. Options that reach a raw timer are checked against it.
 */
export { MAX_TIMER_MS, timerLimitText } from '../timer-limit.js';

/** Run `fn` on a later turn of the event loop. */
export const defer: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => void globalThis.setImmediate(fn) : (fn) => void setTimeout(fn, 0);

/** Let the process exit while `timer` is pending. */
export function unref<T extends Timer | ReturnType<typeof setInterval>>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
