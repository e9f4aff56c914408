/**
 * A bound on the request bytes in flight of all sessions of a listener (decision 8, part 2;
 * `maxRequestBytesInFlightTotal`). Each session's requests in flight (delivered to the MCP
 * server and not yet answered, and cancelled ones still held: cancelled-hold.ts) are bounded
 * by maxRequestBytesInFlight in its MessagePipeline; without a shared bound the listener holds
 * up to sessions x (maxRequestBytesInFlight + maxMessageSize), and one agent has 256 sessions.
 *
 * Rule (checked after the session's own, for each request of b bytes from a session whose
 * charge is c, of an agent whose holding sessions' charges sum to C, when the listener's
 * total is t and the limit L):
 * - t + b <= L: admitted (under the limit only the per-session rule applies);
 * - else admitted when C + b <= floor(L / A), the agent's fair share, A being the agents
 *   holding requests counting this one's, and c + b <= floor(floor(L / A) / n), the session's
 *   even part of it, n being the agent's sessions holding requests counting this one;
 *   refused otherwise (JSON-RPC -32005, before any hook).
 * The agent is the session's verified peer agent id (the listener's pipelines pass it to
 * join(), the id maxSessionsPerAgent counts); a share joined without one is its own agent.
 * So above the limit an agent at or past its share is refused whatever its sessions ask, and
 * one under it still gets requests that keep it within its share: a new agent (C = 0) always
 * gets a request of up to L / A bytes (16 other agents holding, default limit: 15 MiB),
 * however many sessions the others hold: an agent's sessions weigh as one, so one or a few
 * agents cannot lock the others out by filling the total. Before (review 11, R11-7) the share
 * was per session, L / the sessions holding: one agent's 256 sessions took every other
 * session's down to L / 257, about 1 MiB, and an honest session holding more was refused
 * everything, pings too. Within an agent a session gets at most an even part of the agent's
 * share while its other sessions hold requests, so one of them cannot go on taking all of it;
 * the sessions of an agent past its share wait for that agent's own answers. A session
 * holding nothing is not always admitted, as the per-session rule admits it: above the limit
 * a request larger than the share waits (-32005: retry) until the total is back under L - b;
 * else every new session would add up to maxMessageSize (64 MiB) beyond any bound.
 *
 * The charge is the JSON bytes of the session's requests in flight plus the real bytes of
 * its cancelled requests still held (not the per-session charge, capped at half the
 * session's budget: cancel-and-resend would then park maxMessageSize per session for the
 * price of half a budget). A charge grows only when a request is admitted.
 *
 * Memory bound: with Q the most one session can hold (maxRequestBytesInFlight +
 * maxMessageSize; request-tracker.ts), A the agents holding requests and n_j the holding
 * sessions of the j-th below, the total is at most L + sum over j = 2..A of
 * min(n_j x Q, L / j), less than L x (1 + ln A), A at most H, the sessions holding. Proof: an
 * agent's charge (its sessions' together) grows only when one of its sessions is admitted a
 * request. Order the agents holding by their last admission, g_1 .. g_A; each has held since
 * then (holding again after holding nothing takes an admission), its charge no larger than
 * just after it. Let g_m be the last admitted under the limit: then the total, g_1 .. g_m's
 * charges among it, was at most L. Each later g_j was admitted within its agent's share with
 * at least j agents holding (g_1 .. g_j), so holds at most L / j (and n_j x Q). Shares
 * granted while fewer agents held are not taken back (nothing in flight is evicted), hence
 * the logarithm. The split among an agent's sessions only refuses more; the bound needs the
 * agent's own check: with the split alone, an agent's sessions admitted one after another
 * would stack L / A + L / 2A + L / 3A ..., a harmonic sum per agent, and the bound would
 * become about L x (1 + ln A) x (1 + ln n) for n sessions per agent. Defaults (L = 256 MiB,
 * Q = 80 MiB): 32 sessions (pqmcp serve's --max-sessions) at most 1,026 MiB (986 MiB with
 * the share per session, 2.5 GiB without the bound; the difference: one agent's second
 * session lifts the second term from Q to L / 2); 1,000 sessions at most 1.9 GiB (78 GiB
 * without), and however many sessions, less than L x (1 + ln A).
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
  /** The session's share: its even part of its agent's, floor(agentShare / the agent's sessions holding, counting it). */
  share: number;
  /** The session's charge before the request. */
  charge: number;
  /** Its agent's share: floor(limit / agents holding, counting its). */
  agentShare: number;
  /** Its agent's charge before the request (its sessions' together). */
  agentCharge: number;
}

/** An agent's holding sessions (charge > 0), and their charges together. */
interface AgentTally {
  sessions: number;
  bytes: number;
}

/** One session's place in the listener's RequestBudget. */
export class RequestShare {
  constructor(
    private readonly budget: RequestBudget,
    /** Re-reads the session's charge (drops its expired holds). */
    readonly count: () => RequestCharge,
    /** The clock of its holds' expiresAt, ms (the same for all sessions of a budget; default monotonic). */
    readonly now: () => number = monotonicNow,
    agent?: string,
  ) {
    this.agent = agent ?? this;
  }

  /** Whose share this is: the agent id given to join(), or this share itself (its own agent). */
  readonly agent: string | RequestShare;

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
  /** Agents holding requests (R11-7): their holding sessions and charge, the sums of `holders` by RequestShare.agent. */
  private readonly agentTallies = new Map<string | RequestShare, AgentTally>();
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

  /** Agents holding requests now (a share joined without an agent id counts as one; expired holds dropped first). */
  get agents(): number {
    this.recountExpired();
    return this.agentTallies.size;
  }

  /**
   * A new session's share (charge 0 until it is admitted a request); `now`: its holds'
   * clock; `agent`: its peer's agent id, whose sessions share one agent's share (without
   * one, the session is its own agent).
   */
  join(count: () => RequestCharge, now?: () => number, agent?: string): RequestShare {
    return new RequestShare(this, count, now, agent);
  }

  /** @internal RequestShare's. */
  set(member: RequestShare, charge: RequestCharge): void {
    const before = this.holders.get(member) ?? 0;
    const after = charge.bytes;
    this.used += after - before;
    if (after > 0) this.holders.set(member, after);
    else this.holders.delete(member);
    this.expiries.set(member, after > 0 ? charge.expiresAt : undefined);
    if (after === before) return;
    let tally = this.agentTallies.get(member.agent);
    if (tally === undefined) this.agentTallies.set(member.agent, (tally = { sessions: 0, bytes: 0 }));
    tally.bytes += after - before;
    if (before === 0) tally.sessions++;
    else if (after === 0 && --tally.sessions === 0) this.agentTallies.delete(member.agent);
  }

  /** @internal RequestShare's. */
  admit(member: RequestShare, charge: RequestCharge, bytes: number): ListenerRefusal | undefined {
    this.set(member, charge);
    if (this.used + bytes <= this.limit) return undefined;
    // Over the limit: drop the expired holds first (they may bring it back under).
    this.recountExpired();
    if (this.used + bytes <= this.limit) return undefined;
    // The agent's share over the agents holding (counting its), then the session's even part of it.
    const own = this.holders.get(member) ?? 0;
    const tally = this.agentTallies.get(member.agent);
    const agentCharge = tally?.bytes ?? 0;
    const agentShare = Math.floor(this.limit / (this.agentTallies.size + (tally === undefined ? 1 : 0)));
    const share = Math.floor(agentShare / ((tally?.sessions ?? 0) + (own > 0 ? 0 : 1)));
    if (agentCharge + bytes <= agentShare && own + bytes <= share) return undefined;
    return { limit: this.limit, total: this.used, share, charge: own, agentShare, agentCharge };
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

