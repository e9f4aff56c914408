/**
 * Why a connection has stopped reading from its socket. Reading pauses while any reason
 * holds and resumes once none does; the socket is told only when that changes.
 *
 *   app       the application asked (Connection.pause(); the server transport before start())
 *   consumer  the server's consumer cannot take more (PqmcpServerTransport.pauseReading(): the
 *             gateway while its MCP server's stdin holds this session's share); the server
 *             transport bounds it (maxReadPauseMs, then ReadPauseTimeoutError)
 *   inbox     too many received messages wait for delivery
 *   budget    the listener's budget for partly received messages is spent (receive-budget.ts)
 *   compute   a deferred handshake step (crypto-pool.ts) is out
 *   backlog   the Session stopped at a per-turn cap (the rest drains on later turns) or
 *             at its KeyUpdate ration (the rest drains as the ration refills)
 *
 * Sharp edges:
 * - Once `live()` is false (the connection closed) the socket is left alone.
 * - Sockets without pause/resume (some browser adapters) simply keep reading.
 */
export type PauseReason = 'app' | 'consumer' | 'inbox' | 'budget' | 'compute' | 'backlog';

export interface PausableSocket {
  pause?(): void;
  resume?(): void;
}

/** The reasons that are this side's own hold (heldByUs). */
const OWN: readonly PauseReason[] = ['budget', 'backlog', 'consumer'];

export class ReadPause {
  private readonly reasons = new Set<PauseReason>();
  private paused = false;
  /** When this side's own hold last ended (performance.now()); -Infinity before any. */
  private ownHoldEndedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly socket: PausableSocket,
    private readonly live: () => boolean,
  ) {}

  has(reason: PauseReason): boolean {
    return this.reasons.has(reason);
  }

  /**
   * Reading is paused by this side alone: the receive budget, a stalled Session's backlog,
   * or the server's consumer (bounded by the server transport's maxReadPauseMs), and neither
   * 'inbox' (a peer that does not read our replies fills it) nor 'app'. A pause the peer or
   * the application causes wins: a backlog waiting behind a full inbox does not drain by the
   * connection's own progress, so a peer that reads nothing would otherwise be held for ever
   * (review 9b, F1); an application pause has no bound of its own (review F2).
   */
  heldByUs(): boolean {
    if (this.reasons.has('inbox') || this.reasons.has('app')) return false;
    return this.ownHold();
  }

  /**
   * heldByUs(), or this side's own hold ended less than `ms` ago (and neither the peer nor
   * the application pauses reading now). What was held is read after the hold ends, and the
   * peer's pong may be behind megabytes of it: a keepalive deadline that passes just after
   * the hold ended must not judge the peer yet. So the peer is judged only after `ms`
   * (keepAliveTimeoutMs) of reading. Bounded: each end of a hold adds at most `ms`.
   */
  heldWithin(ms: number): boolean {
    if (this.reasons.has('inbox') || this.reasons.has('app')) return false;
    return this.ownHold() || performance.now() - this.ownHoldEndedAt < ms;
  }

  set(reason: PauseReason, on: boolean): void {
    const ownBefore = this.ownHold();
    if (on) this.reasons.add(reason);
    else this.reasons.delete(reason);
    if (ownBefore && !this.ownHold()) this.ownHoldEndedAt = performance.now();
    const want = this.reasons.size > 0;
    if (want === this.paused || !this.live()) return;
    this.paused = want;
    if (want) this.socket.pause?.();
    else this.socket.resume?.();
  }

  private ownHold(): boolean {
    return OWN.some((reason) => this.reasons.has(reason));
  }
}
