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
 * - Per-agent share (review F5): one client agent holds at most `perAgent` live entries
 *   (default capacity / 16, at least 1). Past its share only that agent's resumptions are
 *   refused ('quota', reported as TicketReplayFullError): one authenticated client resuming
 *   in a loop cannot fill the record and turn resumption off for everyone. It takes 16
 *   agents doing so to fill it.
 * - One record per server process. Servers sharing ticket keys do not share it: a ticket is
 *   single use per server. A replay to another server gains nothing without the PSK (the
 *   binder and the Finished need it), see protocol.md 15.6.
 */
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_REPLAY_CAPACITY = 100_000;

export type ReplayVerdict = 'fresh' | 'replayed' | 'quota' | 'full';

export class TicketReplayGuard {
  /** ticket id -> expiry (ms) and owner (client agent id). Insertion order. */
  private readonly seen = new Map<string, { expires: number; owner: string }>();
  /** Live entries per owner. */
  private readonly owners = new Map<string, number>();
  private lastSweepMs = -Infinity;
  readonly perAgent: number;

  constructor(
    readonly capacity: number = DEFAULT_REPLAY_CAPACITY,
    perAgent?: number,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new InvalidArgumentError('replay capacity must be a positive whole number');
    this.perAgent = perAgent ?? Math.max(1, Math.floor(capacity / 16));
    if (!Number.isSafeInteger(this.perAgent) || this.perAgent < 1) throw new InvalidArgumentError('replay per-agent share must be a positive whole number');
  }

  get size(): number {
    return this.seen.size;
  }

  /**
   * Record `id` (a ticket of client agent `owner`) as used until `expiresAtMs`; 'replayed' if
   * it was already, 'quota' if `owner` holds its share, 'full' if there is no room.
   */
  consume(id: string, expiresAtMs: number, nowMs: number, owner = ''): ReplayVerdict {
    const known = this.seen.get(id);
    if (known !== undefined) {
      if (known.expires >= nowMs) return 'replayed';
      this.drop(id, known.owner);
    }
    const full = (): boolean => this.seen.size >= this.capacity || (this.owners.get(owner) ?? 0) >= this.perAgent;
    if (full()) this.sweep(nowMs);
    if ((this.owners.get(owner) ?? 0) >= this.perAgent) return 'quota';
    if (this.seen.size >= this.capacity) return 'full';
    this.seen.set(id, { expires: expiresAtMs, owner });
    this.owners.set(owner, (this.owners.get(owner) ?? 0) + 1);
    return 'fresh';
  }

  private drop(id: string, owner: string): void {
    this.seen.delete(id);
    const n = (this.owners.get(owner) ?? 1) - 1;
    if (n > 0) this.owners.set(owner, n);
    else this.owners.delete(owner);
  }

  /** Drop expired entries; at most once per second when full of live ones (bounded work). */
  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweepMs < 1000) return;
    this.lastSweepMs = nowMs;
    for (const [id, entry] of this.seen) if (entry.expires < nowMs) this.drop(id, entry.owner);
  }
}
