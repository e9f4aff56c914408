/**
 * What a stalled Session still holds (session.ts, `stalled`): records already read from the
 * socket but not yet processed, because a per-call cap (`maxKeyUpdatesPerCall`,
 * `maxMessagesPerCall`) stopped the last call or the peer's KeyUpdate ration
 * (`keyUpdateRate`) is spent. The Connection (connection.ts) drains it here.
 *
 *   schedule()        the Session is stalled: stop reading ('backlog'), drain one call on a
 *                     later turn (a cap), or once the ration has a token (`keyUpdateWaitMs`);
 *                     again until nothing is held, then read again
 *   endAfter(then)    the socket closed: drain what is held at the same pace, then `then()`
 *   stop()            the connection ended: clear the ration's timer
 *
 * Sharp edges:
 * - One drain is scheduled at a time. While the inbox is full (the application has not taken
 *   what was delivered) nothing is drained: the Connection calls schedule() again as it empties.
 * - Reading resumes only once nothing is left, so what waits here is at most the socket reads
 *   that came before the pause: the peer is slowed by backpressure, never refused.
 * - After the socket closed (review2 F4c), what was read before still counts: its messages are
 *   delivered and a close_notify among them is a clean close, not truncation. Nothing new can
 *   arrive, so the work is bounded by what was read; the wait is bounded too: after
 *   AFTER_CLOSE_DRAIN_MS the rest is dropped and the end reads as truncation.
 */
import type { Session, SessionOutput } from '../session/session.js';
import type { ReadPause } from './read-pause.js';
import { defer, unref, type Timer } from './timers.js';

/** How long records held when the socket closed may still take to drain (at the ration's pace). */
export const AFTER_CLOSE_DRAIN_MS = 10_000;

export interface BacklogHost {
  readonly session: Session;
  readonly reading: ReadPause;
  /** The connection neither closed nor failed. */
  live(): boolean;
  /** Apply one drain's output (messages, events, records to send). */
  handle(out: SessionOutput): void;
  /** After each drain (the receive budget's accounting). */
  drained(): void;
}

export class Backlog {
  private scheduled = false;
  private timer: Timer | undefined;
  /** Set once the socket closed with records held: runs when nothing is left (or at the deadline). */
  private then: (() => void) | undefined;
  private deadline: Timer | undefined;

  constructor(private readonly host: BacklogHost) {}

  /** The Session stalled: stop reading and drain later (see the module comment). */
  schedule(): void {
    const { session, reading } = this.host;
    if (!session.stalled || this.scheduled || !this.host.live()) return;
    reading.set('backlog', true);
    this.scheduled = true;
    const go = (): void => {
      this.scheduled = false;
      this.timer = undefined;
      if (!this.host.live()) return this.ended();
      if (reading.has('inbox')) return; // the Connection schedules again as the inbox empties
      this.host.handle(session.drain());
      this.host.drained();
      if (session.stalled && this.host.live()) return this.schedule();
      if (this.host.live()) reading.set('backlog', false);
      this.ended();
    };
    const wait = session.keyUpdateWaitMs;
    if (wait > 0) this.timer = unref(setTimeout(go, wait));
    else defer(go);
  }

  /**
   * The socket closed. If the Session holds records, they drain as before and `then` runs
   * once none is left (true); else false and the caller ends the connection now.
   */
  endAfter(then: () => void): boolean {
    if (!this.host.session.stalled || !this.host.live()) return false;
    this.then = then;
    this.deadline = unref(setTimeout(() => this.giveUp(), AFTER_CLOSE_DRAIN_MS));
    if (!this.scheduled) this.schedule();
    return true;
  }

  /** The connection ended: no drain runs after this. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.deadline) clearTimeout(this.deadline);
    this.timer = this.deadline = this.then = undefined;
    this.scheduled = false;
  }

  /** After the socket closed, nothing is held any more (or the connection ended meanwhile). */
  private ended(): void {
    if (this.then === undefined || (this.host.session.stalled && this.host.live())) return;
    const then = this.then;
    this.stop();
    then();
  }

  private giveUp(): void {
    const then = this.then;
    this.stop();
    then?.();
  }
}
