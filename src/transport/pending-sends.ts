/**
 * What the promise of a Connection's send() waits for, once its message is queued: the
 * handshake, the server's confirmation, or the socket's drain (drain-watch.ts).
 *
 * Sharp edges:
 * - 1-RTT: on the client, messages sent before the handshake completes are queued by the
 *   Session and flushed with the client's final flight; their promises settle then
 *   (`handshakeDone()`), or reject with the handshake's typed error.
 * - Confirmation: a send() marked `confirm` (the transports mark JSON-RPC requests)
 *   settles only once the server has proven it accepted the client (its first application
 *   record; a request is always answered) or the session fails: a server that refuses the
 *   client's credential therefore surfaces as that request's rejection, so
 *   `client.connect()` rejects with the server's alert, not a generic "connection closed".
 *   A server is confirmed by its own handshake's end (it verified the client); a client
 *   whose handshake completed, also when the handshake timeout passes in silence.
 * - Backpressure: otherwise a send() resolves at once while the bytes not yet handed to the
 *   OS stay at or below `highWaterMark`, else once they drain below it. A caller that awaits
 *   each send() holds at most highWaterMark + one message in memory.
 * - `rejectAll()` (the connection ends) rejects every pending promise, confirmation first.
 *   A promise asked for later would wait for the next settlement: the Connection refuses
 *   send() from then on.
 */
import type { PqmcpError } from '../errors.js';
import type { DrainWatch } from './drain-watch.js';
import { Waiters } from './waiters.js';

export class PendingSends {
  private readonly confirmation = new Waiters();
  private readonly handshake = new Waiters();
  private peerConfirmed = false;

  constructor(private readonly drain: DrainWatch) {}

  /** The peer proved it accepted us (see above). */
  get confirmed(): boolean {
    return this.peerConfirmed;
  }

  /** The promise for a message just queued. */
  wait(confirm: boolean, handshaking: boolean): Promise<void> {
    if (!this.peerConfirmed && confirm) return this.confirmation.wait();
    if (handshaking) return this.handshake.wait();
    return this.drain.whenWritable();
  }

  /** The messages queued during the handshake went out with this side's final flight. */
  handshakeDone(): void {
    this.handshake.resolveAll();
  }

  confirm(): void {
    this.peerConfirmed = true;
    this.confirmation.resolveAll();
  }

  rejectAll(error: PqmcpError): void {
    for (const waiters of [this.confirmation, this.handshake, this.drain]) waiters.rejectAll(error);
  }
}
