/**
 * The peer's cancelled requests still charged against its bounds (review: requests in
 * flight, F3). A `notifications/cancelled` ends a request's entry in the message pipeline
 * (hooks, the auditor), but not necessarily its handler: an SDK handler that ignores its
 * abort signal runs on, holding the request it was given. So the cancelled request keeps
 * its bytes and its place among the peer's requests in flight (MAX_TRACKED) until either
 * - the local side's late answer to it passes (the handler is done: the Python SDK answers a
 *   cancelled request; the TypeScript SDKs, 1.x and 2.x, never do), or
 * - CANCELLED_HOLD_MS have passed since the cancellation.
 * Without it, cancel and resend let a peer park any number of requests in handlers that
 * ignore their signal, each admitted afresh (k cancelled 64 MiB calls were k x 64 MiB).
 *
 * Sharp edges:
 * - The hold is a bound on a rate, not on memory: a handler that ignores its abort past
 *   CANCELLED_HOLD_MS still holds its request, uncounted. The peer can then have at most
 *   (maxRequestBytesInFlight + one maxMessageSize) charged at once, so at most that much
 *   escapes every CANCELLED_HOLD_MS; a handler that ends within it never escapes.
 * - Expiry is lazy (checked when the peer's next request is admitted): no timers.
 * - The hold runs on a monotonic clock (performance.now) unless the transport was given a
 *   clock (holdNow): on Date.now a step of the system clock stretched or cut the hold (a step
 *   back of an hour held every cancelled request an hour; review 10, R10-6).
 * - Each held request is charged at most `cap` bytes (the pipeline passes half its budget,
 *   rounded up; review 10, R10-5): charged in full, one cancelled request larger than the
 *   budget refused every later request, a 40-byte ping too, for the whole hold (the
 *   TypeScript SDKs never answer a cancelled request). With the cap, requests totalling up
 *   to half the budget still pass beside it, and a second such request is refused until the
 *   hold ends. The memory bound stays budget + one maxMessageSize per session: call a
 *   request big when its bytes exceed cap. A big request is admitted either alone (nothing
 *   in flight nor held) or with charge + its bytes <= budget; a big one in flight or held is
 *   charged at least cap, and cap + (more than cap) > budget, so at most one big request is
 *   in flight or held at a time. Its real bytes exceed its charge by at most
 *   maxMessageSize - cap; every other request is charged its real bytes, and those
 *   admitted beside the big one fit in budget - cap. So the real bytes are at most
 *   max(budget, maxMessageSize + budget - cap) <= budget + maxMessageSize, as before.
 *   The listener's total over sessions (request-budget.ts) counts held requests uncapped
 *   (realBytes): the cap is the session's relief, not a discount on memory.
 */
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';

/**
 * How long a cancelled request stays charged when no late answer comes: 60 s, the MCP
 * SDKs' default request timeout (DEFAULT_REQUEST_TIMEOUT_MSEC, 1.x and 2.x). A handler that
 * ignores its abort signal but ends within the time its callers wait by default is charged
 * for its whole run; an honest client that cancels a large request waits at most this long
 * for its bytes (-32005 says retry), a small one never notices.
 */
export const CANCELLED_HOLD_MS = 60_000;

/**
 * The hold's time source for a transport's clock: the injected clock's now() (tests move
 * it), or a monotonic one for the system clock (R10-6).
 */
export function holdNow(clock: Clock): () => number {
  return clock === systemClock ? monotonicNow : () => clock.now();
}

/** The hold's clock without an injected one (and the listener's budget's default: request-budget.ts). */
export const monotonicNow = (): number => performance.now();

interface Held {
  /** The bytes charged: the request's, at most the cap. */
  readonly bytes: number;
  /** The request's bytes (the listener's total counts these: request-budget.ts). */
  readonly real: number;
  readonly until: number;
}

/** Cancelled requests of the peer still charged, oldest first. */
export class CancelledHold {
  private readonly held = new Map<string | number, Held>();
  private heldBytes = 0;
  private heldReal = 0;

  /**
   * @param now the clock of the hold, in ms (default: monotonic, performance.now)
   * @param cap the most bytes one held request is charged (default: no cap)
   */
  constructor(
    readonly now: () => number = monotonicNow,
    private readonly cap: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Charged requests (after dropping the expired ones). */
  get count(): number {
    this.expire();
    return this.held.size;
  }

  /** Their charged bytes, each at most the cap (after dropping the expired ones). */
  get bytes(): number {
    this.expire();
    return this.heldBytes;
  }

  /** Their bytes uncapped (after dropping the expired ones). */
  get realBytes(): number {
    this.expire();
    return this.heldReal;
  }

  /** When the first held request expires, on `now`'s clock (after dropping the expired ones); undefined: none held. */
  get expiresAt(): number | undefined {
    this.expire();
    return this.held.values().next().value?.until;
  }

  has(id: string | number): boolean {
    this.expire();
    return this.held.has(id);
  }

  /** A request of `bytes` under `id` was cancelled: charge it (at most the cap) until answered or expired. */
  hold(id: string | number, bytes: number): void {
    this.release(id);
    const charged = Math.min(bytes, this.cap);
    this.held.set(id, { bytes: charged, real: bytes, until: this.now() + CANCELLED_HOLD_MS });
    this.heldBytes += charged;
    this.heldReal += bytes;
  }

  /** The local side answered `id` after all: its handler is done. */
  release(id: string | number): void {
    const entry = this.held.get(id);
    if (entry === undefined) return;
    this.held.delete(id);
    this.heldBytes -= entry.bytes;
    this.heldReal -= entry.real;
  }

  clear(): void {
    this.held.clear();
    this.heldBytes = 0;
    this.heldReal = 0;
  }

  /** Insertion order is expiry order (one hold time for all). */
  private expire(): void {
    const now = this.now();
    for (const [id, entry] of this.held) {
      if (entry.until > now) return;
      this.held.delete(id);
      this.heldBytes -= entry.bytes;
      this.heldReal -= entry.real;
    }
  }
}
