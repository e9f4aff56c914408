/**
 * Which sessions of one MCP server process (a per-session child, or the --shared one) the
 * gateway stops reading while the child's stdin backs up (review F2).
 *
 * Each session's bytes written to the child's stdin and not yet taken by the pipe are
 * counted exactly: stdin is one ordered stream, and each line's write callback (child.ts
 * write) fires when the pipe took that line, so a line's bytes leave its session's count
 * then, whoever else wrote before or after it. The child's stdin has a budget of `budget`
 * bytes (STDIN_BUDGET); a session's fair share is the budget divided by the sessions on the
 * child. A session whose queued bytes exceed its share is paused (`pause`); it is resumed
 * once its count is back to half its share (`resume`), as the child reads. So one tenant
 * that floods a --shared child, or makes it stop reading, stops only itself: the others keep
 * being read, and their calls wait in the pipe behind what is already there, not in a
 * paused socket.
 *
 * Sharp edges:
 * - Bound: every session stops at its share, then still delivers what it had already read
 *   (the transport's inbox: highWaterMark, 8 MiB by default); so the child's stdin holds at
 *   most `budget` + sessions x (inbox + one message) here, as before this file existed.
 * - Lines the gateway writes on nobody's behalf (cancellations when a session ends, answers
 *   to the child's requests no session can take) count for nobody: a few per session.
 * - A paused session's reading is bounded by the transport (maxReadPauseMs): a child that
 *   never reads ends the sessions over their share, not the others.
 * - Shares are recomputed at each write and flush: a session that joins shrinks the others'
 *   shares from their next write; one that leaves grows them from their next flush. An agent
 *   that opens many sessions on a --shared child shrinks every share (--max-sessions and
 *   --max-sessions-per-agent bound how far); a share that small only matters while the
 *   child is not reading, and then the pause is bounded as above.
 */

/** Bytes of the child's stdin the gateway lets its sessions fill before anyone is paused. */
export const STDIN_BUDGET = 1024 * 1024;

export interface ShareHolder {
  pauseReading(): void;
  resumeReading(): void;
}

export class StdinShares<S extends ShareHolder> {
  private readonly queued = new Map<S, number>();
  private readonly paused = new Set<S>();

  constructor(private readonly budget = STDIN_BUDGET) {}

  /** A session now writes to this child. */
  add(session: S): void {
    if (!this.queued.has(session)) this.queued.set(session, 0);
  }

  /** A session ended: it no longer counts for the shares (lines it left still flush). */
  remove(session: S): void {
    this.queued.delete(session);
    this.paused.delete(session);
  }

  /** Bytes `session` has queued in the child's stdin. */
  bytesOf(session: S): number {
    return this.queued.get(session) ?? 0;
  }

  isPaused(session: S): boolean {
    return this.paused.has(session);
  }

  /** `session` wrote `bytes`; returns the callback for when the pipe took them. */
  wrote(session: S, bytes: number): () => void {
    if (!this.queued.has(session) || bytes <= 0) return () => {};
    this.queued.set(session, this.bytesOf(session) + bytes);
    if (!this.paused.has(session) && this.bytesOf(session) > this.share()) {
      this.paused.add(session);
      session.pauseReading();
    }
    return () => this.flushed(session, bytes);
  }

  private flushed(session: S, bytes: number): void {
    if (!this.queued.has(session)) return; // ended meanwhile
    this.queued.set(session, this.bytesOf(session) - bytes);
    if (this.paused.has(session) && this.bytesOf(session) <= this.share() / 2) {
      this.paused.delete(session);
      session.resumeReading();
    }
  }

  private share(): number {
    return this.budget / Math.max(1, this.queued.size);
  }
}
