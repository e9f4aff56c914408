/**
 * A Connection's delivery to the application: received messages, the error that ended it
 * and the close, in order, through the host's (contained) callbacks.
 *
 * Sharp edges:
 * - One message per microtask: the MCP SDK handles notifications a microtask late, so a
 *   progress notification must not be overtaken by the response batched behind it. A
 *   microtask, not a macrotask: a whole socket read is delivered in one turn, as plain ws
 *   does. An error or the close is delivered right after what precedes it.
 * - While more than `highWaterMark` bytes or 1024 messages wait for delivery, reading from
 *   the socket pauses ('inbox', inbox.ts); once the inbox has room again, `inboxRoom()` lets
 *   the host drain a stalled Session's backlog. Delivered entries are dropped from the queue
 *   as they go (fifo.ts), so a queue that never empties stays small.
 * - Held for the drain (`deliveryWaitsForDrain`, set on the server side): while `mustHold()`
 *   says replies are backed up (more than `highWaterMark` bytes wait to be written on a live
 *   connection), messages wait, and once the queue fills reading pauses, as Node's HTTP
 *   server does for pipelined requests. A client that pipelines requests and never reads
 *   cannot make the server queue replies without bound, and gets no more work done for it;
 *   its keepalive then fails (a peer that does not read does not answer pings either). Only
 *   one side holds: if both did, two peers streaming at each other could each wait on the
 *   other. `release()` resumes (at the drain, and when the connection ends: nothing will
 *   drain then); an error or the close never waits behind a held message for long, since
 *   the host releases before it posts them.
 */
import type { PqmcpError } from '../errors.js';
import { Fifo } from './fifo.js';
import { Inbox } from './inbox.js';
import type { ReadPause } from './read-pause.js';

export type AppEvent = { type: 'message'; data: Uint8Array } | { type: 'error'; error: PqmcpError } | { type: 'close' };

export interface DeliveryHost {
  readonly reading: ReadPause;
  /** Received messages must wait for the outbound bytes to drain (see above). */
  mustHold(): boolean;
  /** Delivery is held: watch for the drain (which calls release()). */
  watchDrain(): void;
  /** The inbox has room again after it paused reading. */
  inboxRoom(): void;
  message(data: Uint8Array): void;
  error(error: PqmcpError): void;
  close(): void;
}

export class Delivery {
  private readonly events = new Fifo<AppEvent>();
  /** Received messages not yet delivered (receive-side backpressure). */
  private readonly inbox: Inbox;
  private dispatching = false;
  /** Delivery is held until the outbound bytes drain below highWaterMark. */
  private heldForDrain = false;

  constructor(
    highWaterMark: number,
    private readonly host: DeliveryHost,
  ) {
    this.inbox = new Inbox(highWaterMark);
  }

  /** Delivery waits for the drain. */
  get held(): boolean {
    return this.heldForDrain;
  }

  post(event: AppEvent): void {
    this.events.push(event);
    if (event.type === 'message' && this.inbox.add(event.data.length)) this.host.reading.set('inbox', true);
    if (this.dispatching) return;
    this.dispatching = true;
    this.dispatch();
  }

  /** Resume delivery held for the drain. */
  release(): void {
    if (!this.heldForDrain) return;
    this.heldForDrain = false;
    if (this.dispatching) return;
    this.dispatching = true;
    this.dispatch();
  }

  private dispatch(): void {
    const { host } = this;
    for (let event = this.events.peek(); event; event = this.events.peek()) {
      if (event.type === 'message' && host.mustHold()) {
        this.heldForDrain = true;
        this.dispatching = false;
        host.watchDrain();
        return;
      }
      this.events.shift();
      if (event.type === 'message') {
        if (this.inbox.remove(event.data.length) && host.reading.has('inbox')) {
          host.reading.set('inbox', false);
          host.inboxRoom();
        }
        host.message(event.data);
        // Yield one microtask before anything else is delivered (even a message posted
        // later in this same turn): the SDK queues its notification handler as a microtask
        // during onmessage, so ours, queued after it, runs after it.
        queueMicrotask(() => this.dispatch());
        return;
      } else if (event.type === 'error') {
        host.error(event.error);
      } else {
        host.close();
      }
    }
    this.dispatching = false;
  }
}
