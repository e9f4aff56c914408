/**
 * The server's anti-replay record: each ticket is accepted once.
 *
 * Sharp edges:
 * - Only tickets that opened under our key, passed their binder and every other check reach
 *   it, so an unauthenticated peer cannot fill it (it would need tickets we issued).
 * - Bounded: at most `capacity` live entries. Each entry is dropped when its ticket expires
 *   (a later replay fails on expiry instead). When it is full of live entries it fails
 *   safe: resumption is refused (TicketReplayFullError) and the client gets a full
 *   handshake; nothing is ever evicted early, since that would let a ticket be used twice.
 * - One record per server process. Servers sharing ticket keys do not share it: a ticket is
 *   single use per server. A replay to another server gains nothing without the PSK (the
 *   binder and the Finished need it), see protocol.md 15.6.
 */
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_REPLAY_CAPACITY = 100_000;

export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

export class TicketReplayGuard {
  /** ticket id -> expiry (ms). Insertion order. */
  private readonly seen = new Map<string, number>();
  private lastSweepMs = -Infinity;

  constructor(readonly capacity: number = DEFAULT_REPLAY_CAPACITY) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new InvalidArgumentError('replay capacity must be a positive whole number');
  }

  get size(): number {
    return this.seen.size;
  }

  /** Record `id` as used until `expiresAtMs`; 'replayed' if it was already, 'full' if there is no room. */
  consume(id: string, expiresAtMs: number, nowMs: number): ReplayVerdict {
    const known = this.seen.get(id);
    if (known !== undefined) {
      if (known >= nowMs) return 'replayed';
      this.seen.delete(id);
    }
    if (this.seen.size >= this.capacity) this.sweep(nowMs);
    if (this.seen.size >= this.capacity) return 'full';
    this.seen.set(id, expiresAtMs);
    return 'fresh';
  }

  /** Drop expired entries; at most once per second when full of live ones (bounded work). */
  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweepMs < 1000) return;
    this.lastSweepMs = nowMs;
    for (const [id, expires] of this.seen) if (expires < nowMs) this.seen.delete(id);
  }
}
