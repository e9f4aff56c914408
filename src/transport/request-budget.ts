/**
 * A bound on the request bytes in flight of all sessions of a listener (decision 8, part 2;
 * `maxRequestBytesInFlightTotal`). Each session's requests in flight (delivered to the MCP
 * server and not yet answered, and cancelled ones still held: cancelled-hold.ts) are bounded
 * by maxRequestBytesInFlight in its MessagePipeline; without a shared bound the listener holds
 * up to sessions x (maxRequestBytesInFlight + maxMessageSize), and one agent has 256 sessions.
 *
 * Rule (checked after the session's own, for each request of b bytes from a session whose
 * charge is c, when the listener's total is t and the limit L):
 * - t + b <= L: admitted (under the limit only the per-session rule applies);
 * - else admitted when c + b <= floor(L / H), its fair share, H being the sessions holding
 *   requests counting this one; refused otherwise (JSON-RPC -32005, before any hook).
 * So above the limit a session at or past its share is refused whatever it asks, and one
 * under it still gets requests that keep it within its share: a new session (c = 0) always
 * gets a request of up to L / H bytes (16 others holding, default limit: 15 MiB), so one or
 * a few agents cannot lock the others out by filling the total. A session holding nothing
 * is not always admitted, as the per-session rule admits it: above the limit a request
 * larger than the share waits (-32005: retry) until the total is back under L - b; else
 * every new session would add up to maxMessageSize (64 MiB) beyond any bound.
 *
 * The charge is the JSON bytes of the session's requests in flight plus the real bytes of
 * its cancelled requests still held (not the per-session charge, capped at half the
 * session's budget: cancel-and-resend would then park maxMessageSize per session for the
 * price of half a budget). A charge grows only when a request is admitted.
 *
 * Memory bound: with Q the most one session can hold (maxRequestBytesInFlight +
 * maxMessageSize; message-hooks.ts) and H the sessions holding requests, the total is at
 * most L + sum over j = 2..H of min(Q, L / j), less than L x (1 + ln H). Proof: order the
 * holders by their last admission, s_1 .. s_H; each has held since then, its charge no
 * larger than just after it. Let s_m be the last admitted under the limit: then the total,
 * s_1 .. s_m's charges among it, was at most L. Each later s_j was admitted within its share
 * with at least j holders (s_1 .. s_j), so holds at most L / j (and Q). Shares granted while
 * fewer sessions held are not taken back (nothing in flight is evicted), hence the
 * logarithm. Defaults (L = 256 MiB, Q = 80 MiB): 32 sessions (pqmcp serve's --max-sessions)
 * at most 986 MiB (2.5 GiB without); 1,000 sessions at most 1.9 GiB (78 GiB without).
 *
 * Sharp edges:
 * - Cancelled requests expire lazily (cancelled-hold.ts): above the limit, before deciding,
 *   the sessions whose first held request has expired are asked to recount (their expired
 *   holds leave the total), so a stale hold neither refuses anyone nor counts as a holder.
 *   Only those: each charge says when the session's first held request expires, and the
 *   budget keeps the sessions in a min-heap by that time (expiry-heap.ts), so a request
 *   costs O(log sessions) per hold that expired. Before (review 11, R11-1) every request
 *   above the limit recounted every session holding one: O(sessions) each, ~23x the CPU
 *   per refused ping with 2,000 such sessions, and the peer chooses both. The heap's order
 *   takes all sessions' holds to run on one clock (a server's all run on holdNow of its
 *   clock); a session on another clock is recounted when due on its own clock and first in
 *   the heap, so late at worst: the total only over-estimates meanwhile.
 * - Reading `total` or `sessions` drops the expired holds the same way (a metric,
 *   server.requestBytesInFlight): without it an idle session that cancelled a large
 *   request stayed in both until something recounted it (review 11, R11-5).
 * - Like the per-session bound it counts JSON bytes as received, not the parsed objects.
 */
import { InvalidArgumentError } from '../errors.js';
import { ExpiryHeap } from './expiry-heap.js';
import { monotonicNow } from './cancelled-hold.js';

/** What a session is charged now. */
export interface RequestCharge {
  /** Bytes of its requests in flight and of its cancelled requests still held. */
  bytes: number;
  /**
   * When its first held cancelled request expires (they expire lazily: recount then), on
   * the session's hold clock (RequestShare.now); undefined: none held.
   */
  expiresAt?: number | undefined;
}

/** Why a request was refused by the listener's bound. */
export interface ListenerRefusal {
  /** The listener's limit. */
  limit: number;
  /** The listener's total before the request. */
  total: number;
  /** The session's share: floor(limit / sessions holding, counting it). */
  share: number;
  /** The session's charge before the request. */
  charge: number;
}

/** One session's place in the listener's RequestBudget. */
export class RequestShare {
  constructor(
    private readonly budget: RequestBudget,
    /** Re-reads the session's charge (drops its expired holds). */
    readonly count: () => RequestCharge,
    /** The clock of its holds' expiresAt, ms (the same for all sessions of a budget; default monotonic). */
    readonly now: () => number = monotonicNow,
  ) {}

  /** The charge changed: report it. */
  update(): void {
    this.budget.set(this, this.count());
  }

  /** A request of `bytes` is admitted (undefined) or refused (why). Charges nothing: update() after tracking it. */
  admit(bytes: number): ListenerRefusal | undefined {
    return this.budget.admit(this, this.count(), bytes);
  }

  /** The session ended: its charge leaves the total. */
  release(): void {
    this.budget.set(this, { bytes: 0 });
  }
}

export class RequestBudget {
  /** Sessions holding requests, and their charge. */
  private readonly holders = new Map<RequestShare, number>();
  /** Holders whose charge includes held cancelled requests, by when the first of those expires (as last counted). */
  private readonly expiries = new ExpiryHeap<RequestShare>();
  private used = 0;

  constructor(readonly limit: number) {
    // 0 (no limit) is the listener's to handle: it makes no budget (server.ts resolveServerLimits; review 11, R11-8).
    if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidArgumentError('maxRequestBytesInFlightTotal must be a positive integer of bytes (for no limit make no RequestBudget: a listener given 0 makes none)');
  }

  /** Bytes charged now, over all sessions (expired holds dropped first: R11-5). */
  get total(): number {
    this.recountExpired();
    return this.used;
  }

  /** Sessions holding requests now (expired holds dropped first). */
  get sessions(): number {
    this.recountExpired();
    return this.holders.size;
  }

  /** A new session's share (charge 0 until it is admitted a request); `now`: its holds' clock. */
  join(count: () => RequestCharge, now?: () => number): RequestShare {
    return new RequestShare(this, count, now);
  }

  /** @internal RequestShare's. */
  set(member: RequestShare, charge: RequestCharge): void {
    const before = this.holders.get(member) ?? 0;
    this.used += charge.bytes - before;
    if (charge.bytes > 0) this.holders.set(member, charge.bytes);
    else this.holders.delete(member);
    this.expiries.set(member, charge.bytes > 0 ? charge.expiresAt : undefined);
  }

  /** @internal RequestShare's. */
  admit(member: RequestShare, charge: RequestCharge, bytes: number): ListenerRefusal | undefined {
    this.set(member, charge);
    if (this.used + bytes <= this.limit) return undefined;
    // Over the limit: drop the expired holds first (they may bring it back under).
    this.recountExpired();
    if (this.used + bytes <= this.limit) return undefined;
    const holding = this.holders.size + (charge.bytes > 0 ? 0 : 1);
    const share = Math.floor(this.limit / holding);
    if (charge.bytes + bytes <= share) return undefined;
    return { limit: this.limit, total: this.used, share, charge: charge.bytes };
  }

  /**
   * Recount the sessions whose first held request has expired, and only those, earliest
   * first: each leaves the heap (holding none now) or goes back in at its next expiry, past
   * now, so each is recounted once. One whose count still says expired on its own clock
   * (a hand-made count, not a pipeline's) stops the walk: the total then over-estimates.
   */
  private recountExpired(): void {
    for (let first = this.expiries.first(); first !== undefined && first.at <= first.key.now(); first = this.expiries.first()) {
      const member = first.key;
      member.update();
      const next = this.expiries.get(member);
      if (next !== undefined && next <= member.now()) return;
    }
  }
}

