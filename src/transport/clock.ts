/**
 * The time source of the transports: what "now" is (credential windows, session expiry)
 * and how to wait for a moment. Injectable so tests can move time: a test clock decides
 * when its timers fire.
 *
 * Sharp edges:
 * - Only the credential window, session expiry and lifetime use it (and the hold on a
 *   peer's cancelled requests, cancelled-hold.ts, which only reads now(), and reads a
 *   monotonic clock in place of this system clock's Date.now); handshake, keepalive and
 *   close timeouts stay on the system timers (they bound real network waits).
 * - The system clock re-arms waits longer than setTimeout's limit (about 24.8 days).
 */
import { MAX_TIMER_MS } from './timers.js';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Run `fn` once `ms` have passed on this clock; returns a handle for cancel(). */
  schedule(fn: () => void, ms: number): unknown;
  cancel(handle: unknown): void;
}

interface SystemTimer {
  timer: ReturnType<typeof setTimeout> | undefined;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(fn, ms) {
    const handle: SystemTimer = { timer: undefined };
    const at = Date.now() + ms;
    const arm = (): void => {
      const left = at - Date.now();
      handle.timer = setTimeout(left > MAX_TIMER_MS ? arm : fn, Math.max(0, Math.min(left, MAX_TIMER_MS)));
      (handle.timer as { unref?: () => void }).unref?.();
    };
    arm();
    return handle;
  },
  cancel(handle) {
    const timer = (handle as SystemTimer | undefined)?.timer;
    if (timer !== undefined) clearTimeout(timer);
  },
};
