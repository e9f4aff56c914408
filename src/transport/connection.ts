/**
 * Drives one pqmcp Session over a message socket (a WebSocket, through a small adapter):
 * the handshake, sending and receiving, the authenticated close and every way a connection
 * can end. Both MCP transports (client and server) sit on this one class, so none of this
 * logic exists twice. No Node-only imports: a browser WebSocket adapter can drive it too.
 * This file is the orchestration (the phases, what ends the connection and in what order);
 * each part is a module of its own, with its sharp edges:
 *
 *   sending     pending-sends.ts (what a send() waits for), batch-writer.ts (a turn's
 *               records to the socket), drain-watch.ts (outbound backpressure)
 *   receiving   read-pause.ts (why reading stopped), receive-share.ts (the listener's budget),
 *               backlog.ts (a stalled Session), delivery.ts (to the application; inbox.ts)
 *   deadlines   liveness.ts (handshake timeout, keepalive), socket-close.ts (the close's bound)
 *   handshake   deferred-step.ts (a server's handshake crypto, out in the pool)
 *
 * Sharp edges:
 * - `onclose` fires exactly once, on every path, and always AFTER every pending send()
 *   promise has been settled and after `onerror` (when there was an error): the MCP SDK
 *   fails its pending requests on close, and this order lets a typed handshake error reach
 *   `client.connect()` instead of a generic "connection closed".
 * - Every error handed to `onerror` is a PqmcpError. Callbacks that throw are contained.
 * - Records produced in one turn are written together at its end (batch-writer.ts; a full
 *   record of tiny messages goes at once); handshake flights as soon as the Session
 *   produces them, with whatever their callbacks sent.
 * - If the socket closes while a stalled Session holds records, they still drain (backlog.ts)
 *   before the connection ends; sends fail with ClosedError from the moment it closed.
 * - Server side (`deliveryWaitsForDrain`), received messages wait while replies are backed
 *   up (delivery.ts).
 */
import { ClosedError, ConnectionError, HandshakeTimeoutError, KeepAliveTimeoutError, PqmcpError, UnexpectedMessageError, Alert, toPqmcpError } from '../errors.js';
import type { CryptoRequest, CryptoResult, HandshakeResult } from '../handshake/types.js';
import type { ClientTicket } from '../resumption/client-tickets.js';
import type { Session, SessionOutput } from '../session/session.js';
import { BatchWriter } from './batch-writer.js';
import { CloseCode, closeCodeFor, errorForPeerClose } from './close-codes.js';
import { SocketClose } from './socket-close.js';
import { ReceiveShare } from './receive-share.js';
import { defer } from './timers.js';
import { Liveness } from './liveness.js';
import { ReadPause } from './read-pause.js';
import { Backlog } from './backlog.js';
import { PendingSends } from './pending-sends.js';
import { DrainWatch } from './drain-watch.js';
import { Delivery } from './delivery.js';
import { contained } from './contain.js';
import { runDeferredStep } from './deferred-step.js';

export type { ConnectionOptions, MessageSocket } from './connection-types.js';
import type { ConnectionOptions, MessageSocket } from './connection-types.js';

type Phase = 'handshaking' | 'open' | 'closing' | 'closed';

export class Connection {
  onhandshake: ((result: HandshakeResult) => void) | undefined;
  /** Client: a resumption ticket from the server (it also proves the server accepted us). */
  onticket: ((ticket: ClientTicket) => void) | undefined;
  onmessage: ((data: Uint8Array) => void) | undefined;
  onerror: ((error: PqmcpError) => void) | undefined;
  onclose: (() => void) | undefined;
  /** Runs a deferred handshake step (a server Session with deferCrypto; deferred-step.ts). */
  oncompute: ((request: CryptoRequest) => Promise<CryptoResult>) | undefined;

  /** Resolves once onclose has fired. Never rejects. */
  readonly closed: Promise<void>;

  private phase: Phase = 'handshaking';
  private closeRequested = false;
  private failure: PqmcpError | undefined;
  /** The socket closed while records were held: they drain, nothing is written any more. */
  private socketGone = false;
  private resolveClosed!: () => void;
  // The parts (see the file comment).
  private readonly writer: BatchWriter;
  private readonly drain: DrainWatch;
  private readonly sends: PendingSends;
  private readonly reading: ReadPause;
  private readonly receiveShare: ReceiveShare;
  private readonly backlog: Backlog;
  private readonly delivery: Delivery;
  private readonly liveness: Liveness;
  private readonly socketClose: SocketClose;

  constructor(
    private readonly socket: MessageSocket,
    readonly session: Session,
    private readonly options: ConnectionOptions,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.reading = new ReadPause(socket, () => this.phase !== 'closed');
    this.receiveShare = new ReceiveShare(options.receiveBudget, this.reading, { live: () => this.phase !== 'closed', partialBytes: () => session.partialBytes });
    this.delivery = new Delivery(options.highWaterMark, {
      reading: this.reading,
      // Replies are backed up and the connection is live (delivery.ts).
      mustHold: () => options.deliveryWaitsForDrain && this.phase === 'open' && !this.failure && !this.closeRequested && this.drain.over,
      watchDrain: () => this.drain.watch(),
      inboxRoom: () => this.backlog.schedule(),
      message: (data) => this.call(() => this.onmessage?.(data)),
      error: (error) => this.call(() => this.onerror?.(error)),
      close: () => {
        this.call(() => this.onclose?.());
        this.resolveClosed();
      },
    });
    this.backlog = new Backlog({
      session,
      reading: this.reading,
      live: () => this.phase !== 'closed' && !this.failure,
      handle: (out) => this.handle(out),
      drained: () => this.receiveShare.account(),
    });
    this.writer = new BatchWriter(socket, session, options.maxWriteBatch, () => this.drain.check(), (err) => this.socketError(err));
    this.drain = new DrainWatch(() => socket.bufferedAmount + this.writer.queuedBytes, options.highWaterMark, () => this.delivery.held, () => this.delivery.release());
    this.sends = new PendingSends(this.drain);
    this.socketClose = new SocketClose(socket, options.closeTimeoutMs, () => this.finish());
    this.liveness = new Liveness(socket, options, {
      handshakeTimeout: () => this.onHandshakeTimeout(),
      keepAliveTimeout: () => this.fail(new KeepAliveTimeoutError(options.keepAliveTimeoutMs), true, true),
      held: () => this.reading.heldWithin(options.keepAliveTimeoutMs),
    });
  }

  get state(): Phase {
    return this.phase;
  }

  /** Bytes written but not yet handed to the OS (the backpressure measure). */
  get bufferedAmount(): number {
    return this.drain.buffered();
  }

  /** The error that ended the connection, if one did. */
  get error(): PqmcpError | undefined {
    return this.failure;
  }

  /** Client: write the ClientHello. */
  start(): void {
    this.handle(this.session.start());
  }

  /**
   * Encrypt and write one application message. Rejects with a typed error (ClosedError
   * after close, MessageTooLargeError above the limit, the handshake's error if it fails).
   */
  send(message: Uint8Array, confirm = false): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.phase === 'closing' || this.phase === 'closed' || this.closeRequested || this.socketGone) return Promise.reject(new ClosedError());
    try {
      this.session.queue(message); // sealed when the turn's batch is written (batch-writer.ts)
    } catch (err) {
      return Promise.reject(toPqmcpError(err));
    }
    this.writer.schedule(message.length); // may seal and write at once, and fail the connection
    if (this.failure) return Promise.reject(this.failure);
    return this.sends.wait(confirm, this.phase === 'handshaking');
  }

  /**
   * The authenticated close: send close_notify, wait (bounded) for the peer's, close the
   * socket. During the handshake: abort with user_canceled. Resolves after onclose fired.
   */
  close(): Promise<void> {
    if (this.phase === 'closed' || this.closeRequested || this.failure) return this.closed;
    this.closeRequested = true;
    if (this.phase === 'handshaking') {
      const cancelled = new PqmcpError('ERR_CLOSED', 'closed by the application during the handshake', Alert.userCanceled);
      this.enqueue(this.session.abort(cancelled));
      this.settleWaiters(new ClosedError('closed before the handshake completed'));
      this.beginClosing(CloseCode.cancelled);
    } else if (this.phase === 'open') {
      this.enqueue(this.session.close());
      this.enterClosing();
      this.socketClose.arm();
    }
    return this.closed;
  }

  /**
   * End the connection now with `error` (its alert, if it has one, goes to the peer, then
   * the socket closes with the mapped code); onerror reports it. For limits enforced above
   * the session: a credential that expired, a trust store that changed, a per-agent cap.
   */
  abort(error: PqmcpError): void {
    this.fail(error, true);
  }

  /**
   * Stop reading from the network (e.g. until the application is ready for messages). 'app'
   * (default): the keepalive still judges the peer; 'consumer': the server's consumer cannot
   * keep up, the keepalive holds (read-pause.ts; its owner must bound it).
   */
  pause(reason: 'app' | 'consumer' = 'app'): void {
    this.reading.set(reason, true);
  }

  resume(reason: 'app' | 'consumer' = 'app'): void {
    this.reading.set(reason, false);
  }

  // --- socket input (called by the adapter) ---------------------------------------------

  receive(data: Uint8Array, isBinary: boolean): void {
    if (this.phase === 'closed' || this.failure) return;
    if (!isBinary) {
      this.fail(new UnexpectedMessageError('WebSocket text frame received: pqmcp uses binary frames only'), true);
      return;
    }
    this.handle(this.session.receive(data));
    this.receiveShare.account();
    this.backlog.schedule();
  }

  /** The peer's WebSocket ping or pong (the socket answers a ping itself): liveness.ts. */
  heard(frame: 'ping' | 'pong'): void {
    this.liveness.heard(frame);
  }

  socketError(err: Error): void {
    if (this.phase === 'closed' || this.failure) return;
    const message = typeof err?.message === 'string' ? err.message : 'unknown error';
    // A PqmcpError comes from sealing (the Session has failed already), not from the socket.
    this.fail(err instanceof PqmcpError ? err : new ConnectionError(`WebSocket error: ${message}`, { cause: err }), true);
  }

  socketClosed(code: number): void {
    if (this.phase === 'closed' || this.socketGone) return;
    this.socketGone = true;
    // Records read before the close and held by a cap or the KeyUpdate ration drain first.
    if (!this.backlog.endAfter(() => this.endOfStream(code))) return this.endOfStream(code);
    this.liveness.stopKeepAlive(); // no socket to ping
  }

  /** The socket closed and nothing read is left: a clean close if the peer's close_notify came. */
  private endOfStream(code: number): void {
    if (this.phase === 'closed') return;
    if (!this.failure && !this.closeRequested && this.session.state !== 'closed') {
      // The stream ended without the peer's authenticated close.
      const truncation = this.session.end()[0];
      const error = errorForPeerClose(code) ?? (truncation?.type === 'error' ? truncation.error : new ClosedError('connection closed'));
      this.failure = error;
      this.settleWaiters(error);
      this.delivery.post({ type: 'error', error });
    }
    this.finish();
  }

  // --- internals ---------------------------------------------------------------------------

  private handle(out: SessionOutput): void {
    // A handshake flight (and the client's final flight, with the messages queued behind
    // it) is written now, not one event-loop turn later: each turn would add to the
    // handshake's latency, and there is nothing to coalesce it with.
    const handshaking = this.phase === 'handshaking';
    this.enqueue(out.send);
    for (const event of out.events) {
      // A callback may have ended the connection (abort): nothing after it is delivered.
      if (this.phase === 'closed' || this.failure) break;
      switch (event.type) {
        case 'handshake':
          if (this.phase === 'handshaking') this.phase = 'open';
          if (this.phase === 'open') this.liveness.startKeepAlive();
          this.sends.handshakeDone();
          // The server has verified the client: nothing left to confirm.
          if (this.session.role === 'server') this.confirm();
          this.call(() => this.onhandshake?.(event.result));
          break;
        case 'message':
          this.confirm();
          this.delivery.post({ type: 'message', data: event.data });
          break;
        case 'ticket':
          this.confirm();
          this.call(() => this.onticket?.(event.ticket));
          break;
        case 'close':
          this.confirm();
          this.onPeerClose();
          break;
        case 'compute':
          this.compute(event.request);
          break;
        case 'error':
          this.fail(event.error, false);
          break;
      }
    }
    if (handshaking) this.flushNow();
  }

  /** A deferred handshake step (deferred-step.ts). */
  private compute(request: CryptoRequest): void {
    runDeferredStep(this.oncompute, request, {
      reading: this.reading,
      live: () => this.phase !== 'closed' && !this.failure,
      resume: (result) => {
        this.handle(this.session.resume(result));
        this.backlog.schedule();
      },
      fail: (error) => this.fail(error, true),
    });
  }

  /** The peer's close_notify arrived; the Session has queued our answer. */
  private onPeerClose(): void {
    this.closeRequested = true;
    this.settleWaiters(new ClosedError());
    this.beginClosing(CloseCode.normal);
  }

  /** A fatal error: alert (if `abort`), close the socket with the mapped code, report. */
  private fail(error: PqmcpError, abort: boolean, terminate = false): void {
    if (this.phase === 'closed' || this.failure) return;
    this.failure = error;
    if (abort) this.enqueue(this.session.abort(error));
    this.settleWaiters(error);
    if (terminate) {
      this.liveness.stop();
      this.phase = 'closing';
      this.writer.discard();
      this.socket.terminate();
    } else {
      this.beginClosing(closeCodeFor(error));
    }
    this.delivery.post({ type: 'error', error });
    if (terminate) this.finish();
  }

  /**
   * Timers stop, queued records go out, and reading resumes even for an application that never
   * started (a server transport closed before start()): the peer's close ends it, not the timer.
   * Not past a consumer's pause (the close timer ends that: its bytes may not be taken).
   */
  private enterClosing(): void {
    this.phase = 'closing';
    this.liveness.stop();
    this.reading.set('app', false);
    this.flushNow();
  }

  private beginClosing(code: number): void {
    this.enterClosing();
    this.socketClose.close(code);
  }

  private finish(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.liveness.stop();
    this.backlog.stop();
    this.socketClose.stop();
    this.writer.stop();
    this.receiveShare.release();
    this.settleWaiters(this.failure ?? new ClosedError());
    // Deferred: every rejection above reaches its handlers first (microtasks run before),
    // and onclose stays behind any message still waiting for delivery.
    defer(() => this.delivery.post({ type: 'close' }));
  }

  private confirm(): void {
    if (this.sends.confirmed) return;
    this.liveness.confirmed();
    this.sends.confirm();
  }

  private onHandshakeTimeout(): void {
    if (this.phase === 'closed' || this.failure) return;
    // Client with a completed handshake whose server has not spoken yet: nothing is wrong.
    if (this.session.state === 'established' || this.session.state === 'closed') return this.confirm();
    this.fail(new HandshakeTimeoutError(this.options.handshakeTimeoutMs), true);
  }

  /** Reject (or, for a clean close, reject with ClosedError) every pending send(). */
  private settleWaiters(error: PqmcpError): void {
    this.sends.rejectAll(error);
    // The connection is ending: what was held is delivered (in order, before the error).
    this.delivery.release();
  }

  /** Run an application callback; a throw is reported once through onerror, never rethrown (contain.ts). */
  private call(fn: () => void): void {
    contained(fn, (error) => this.onerror?.(error));
  }

  // --- writing -----------------------------------------------------------------------------

  private enqueue(chunks: Uint8Array[]): void {
    if (this.phase !== 'closed' && !this.socketGone) this.writer.enqueue(chunks);
  }

  private flushNow(): void {
    if (this.phase !== 'closed' && !this.socketGone) this.writer.flushNow();
  }
}
