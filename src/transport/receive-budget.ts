/**
 * A bound on the bytes of partly received messages, shared by every connection of a
 * listener. A message may be up to maxMessageSize (64 MiB by default) and is held until
 * its final fragment: without a shared bound, N authenticated peers that each start a
 * large message and never finish it hold N x maxMessageSize of server memory.
 *
 * Policy: while the total is at or below `limit`, everyone reads. Above it, a connection
 * that holds part of a message stops reading, except the one whose partial message is the
 * oldest: it always reads, so honest large messages complete one after another and the
 * budget never deadlocks (a per-connection share would: five honest 64 MiB uploads into a
 * 256 MiB budget would each stall at 51 MiB). Connections holding no partial message always
 * read: ordinary requests (one record, up to 64 KiB) never wait on the budget.
 *
 * Sharp edges:
 * - The bound is checked after each socket message, so the total can exceed `limit` by the
 *   oldest message still growing (< maxMessageSize) plus one socket message (maxPayload)
 *   per connection that started a partial message while over the limit.
 * - A peer that holds the oldest partial message and stops sending delays other peers'
 *   large messages (never small ones) until it finishes, is closed, or times out on its
 *   keepalive; the per-agent session cap bounds how much of the budget one agent can hold.
 */
import { InvalidArgumentError } from '../errors.js';

/** One connection, as the budget sees it. */
export interface BudgetMember {
  /** Called when the member may read again after update() returned false. */
  resumeReading(): void;
}

export class ReceiveBudget {
  /** Members holding part of a message, in the order their partial message began. */
  private readonly holders = new Map<BudgetMember, number>();
  private readonly waiting = new Set<BudgetMember>();
  private used = 0;

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new InvalidArgumentError('the receive budget must be a non-negative integer of bytes');
  }

  /** Bytes of partial messages held now, across all members. */
  get total(): number {
    return this.used;
  }

  /** Members currently told to stop reading. */
  get paused(): number {
    return this.waiting.size;
  }

  /**
   * The member now holds `bytes` of a partial message. Returns whether it may keep reading;
   * when false, resumeReading() is called once it may.
   */
  update(member: BudgetMember, bytes: number): boolean {
    const before = this.holders.get(member) ?? 0;
    if (bytes !== before) {
      this.used += bytes - before;
      // A new holder goes to the end of the queue; an existing one keeps its place.
      if (bytes === 0) this.holders.delete(member);
      else this.holders.set(member, bytes);
      if (bytes < before) this.wake();
    }
    if (this.mayRead(member)) {
      this.waiting.delete(member);
      return true;
    }
    this.waiting.add(member);
    return false;
  }

  /** The member is gone (its connection closed): its bytes are freed. */
  release(member: BudgetMember): void {
    this.waiting.delete(member);
    const before = this.holders.get(member);
    if (before === undefined) return;
    this.holders.delete(member);
    this.used -= before;
    this.wake();
  }

  private mayRead(member: BudgetMember): boolean {
    if (this.used <= this.limit || !this.holders.has(member)) return true;
    return this.holders.keys().next().value === member;
  }

  /** Something was freed (or the oldest partial message changed): resume whoever may read. */
  private wake(): void {
    for (const member of [...this.waiting]) {
      if (!this.mayRead(member)) continue;
      this.waiting.delete(member);
      member.resumeReading();
    }
  }
}
