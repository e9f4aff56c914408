/**
 * A PQMCP/1 session: the handshake state machine and the record layer joined into one pure
 * engine over a byte stream. Bytes in (any chunking), bytes out and events; no sockets and
 * no timers. Transports (WebSocket, tests, fuzzers) drive it.
 *
 * This file holds the Session's API, the driving of the handshake state machine and the
 * processing of received records (handshake, alerts and close, KeyUpdate, application
 * data). Beside it: options.ts (its options, events, states and defaults, re-exported
 * here), traffic-keys.ts (each direction's keys, and KeyUpdate both ways) and seal.ts (how
 * this side's records are sealed: coalescing, fragments, padding, alerts).
 *
 * Sharp edges:
 * - `receive()` never throws for anything the peer sends. A fatal problem yields an
 *   `error` event, an alert to send where that is safe (docs/protocol.md, "Alerts"), and a
 *   failed session; every later call to send() throws ClosedError.
 * - Application messages passed to `send()` before the handshake completes are queued and
 *   flushed with the client's last handshake flight (1-RTT), bounded by maxMessageSize.
 * - Coalescing (docs/protocol.md section 3.6): `queue()` holds messages unsealed until
 *   `flush()`, which packs runs of small ones into multi-message records (inner type 0x06).
 *   Every other record this side seals (KeyUpdate, close_notify, an alert, a
 *   NewSessionTicket) first seals what is queued, so records keep the order of the calls.
 * - The end of the underlying stream must be reported with `end()`: without a prior
 *   authenticated close it is a TruncationError, never a clean close.
 * - Keys are updated automatically after `keyUpdateInterval` records in one direction,
 *   long before any AEAD limit; `updateKeys()` does it on demand.
 * - This side asks the peer for an update (`updateKeys(true)`) at most once until the peer's
 *   next KeyUpdate (RFC 9846 section 4.7.3): meanwhile updateKeys(true) sends
 *   update_not_requested (`keyUpdateRequested` says so).
 * - A peer's update_requested is answered at most once until this side next sends
 *   application data (RFC 8446 section 4.6.3: a side that is silent answers many requests
 *   with a single update). The answer goes out just before that data (or with any
 *   updateKeys()), so a storm of requests costs no answers, no output and no sealing.
 * - At most MAX_KEY_UPDATES_IN_A_ROW KeyUpdates are accepted without application data in
 *   between (BoringSSL's rule): more is unexpected_message. Honest peers update once per
 *   keyUpdateInterval records, always with data between.
 * - `partialBytes` is what the assembler holds of a message not yet complete (at most
 *   maxMessageSize); the transport counts it toward its read budget.
 * - With `maxKeyUpdatesPerCall`, one receive() (or resume(), drain()) processes at most that
 *   many of the peer's KeyUpdates (each derives new keys); the records after it wait in
 *   the deframer, `stalled` turns true, and the caller must call `drain()` later (the next
 *   event-loop turn) to go on. So a peer's batch of KeyUpdates is spread over turns, and
 *   other sessions get the event loop in between. Unset (default): no cap.
 * - With `keyUpdateRate`, the peer's KeyUpdates are rationed (key-update-budget.ts): each
 *   one takes a token, except a KeyUpdate retiring a key that protected at least
 *   keyUpdateInterval records (an automatic update at this side's thresholds) and the
 *   first one after this side's own update_requested (the answer). While the bucket is
 *   empty no record is processed: `stalled` is true and `keyUpdateWaitMs` says when
 *   drain() can go on. A transport stops reading meanwhile, so a peer forcing key
 *   derivations is slowed by backpressure to the rate, and an honest one never waits.
 * - A server with `deferCrypto` emits a 'compute' event instead of encapsulating or
 *   signing; until `resume()` gets the result, received bytes are buffered, not processed
 *   (the transport should stop reading meanwhile). To refuse the work, `abort()`.
 */
import { ClosedError, MessageTooLargeError, PeerAbortedError, PeerAlertError, ServerBusyError, TruncationError, UnexpectedMessageError, InvalidArgumentError, Alert, toPqmcpError, type PqmcpError } from '../errors.js';
import { ClientHandshake, ServerHandshake } from '../handshake/handshake.js';
import { receiveNewSessionTicket } from '../handshake/resumption.js';
import { exportKeyingMaterial } from '../handshake/key-schedule.js';
import { utf8Encode } from '../bytes.js';
import type { CryptoResult, HandshakeAction, HandshakeResult } from '../handshake/types.js';
import { InnerType, MessageAssembler, RecordDeframer, RecordType, checkPaddingBlock, decodeMessages, encodeRecord } from '../record/index.js';
import { decodeAlert, decodeKeyUpdate } from '../wire/messages.js';
import { stackless } from '../stackless.js';
import { KeyUpdateBudget } from './key-update-budget.js';
import { DEFAULT_KEY_UPDATE_INTERVAL, DEFAULT_MAX_MESSAGE_SIZE, perCallCap, type SessionEvent, type SessionOptions, type SessionOutput, type SessionState } from './options.js';
import { TrafficKeys } from './traffic-keys.js';
import { alertRecord, sealHandshake, sealMessages, type RecordBufferSource } from './seal.js';

export {
  AES_GCM_MAX_KEY_UPDATE_INTERVAL,
  CHANNEL_BINDING_LABEL,
  DEFAULT_KEY_UPDATE_INTERVAL,
  DEFAULT_MAX_MESSAGE_SIZE,
  EMPTY_CONTEXT,
  MAX_KEY_UPDATES_IN_A_ROW,
  aeadFor,
  effectiveKeyUpdateInterval,
} from './options.js';
export type { SessionEvent, SessionOptions, SessionOutput, SessionState } from './options.js';

export class Session {
  /**
   * Where large application records are sealed into (a transport's reused buffers); unset,
   * every record is a new buffer. Whoever sets it gives the records back once written.
   */
  recordBuffers: RecordBufferSource | undefined;
  /** The handshake state machine; released (with its transcript) once established. */
  private handshake: ClientHandshake | ServerHandshake | undefined;
  private readonly deframer = new RecordDeframer();
  private readonly assembler: MessageAssembler;
  /** Each direction's keys, and KeyUpdate both ways (traffic-keys.ts). */
  private readonly keys: TrafficKeys;
  private readonly maxMessageSize: number;
  private readonly applicationPadding: number;
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  /** Accepted by queue() once established, not yet sealed (flush() seals them). */
  private pending: Uint8Array[] = [];
  private pendingSize = 0;
  private sentClose = false;
  private _state: SessionState = 'handshaking';
  private _result: HandshakeResult | undefined;
  private _error: PqmcpError | undefined;
  private started = false;
  private exporterSecret: Uint8Array | undefined;
  /** Client: the resumption master secret, for the server's NewSessionTickets. */
  private resumptionSecret: Uint8Array | undefined;
  /** Client: the longest ticket its ClientHello can offer; a longer NewSessionTicket is not kept. */
  private longestTicket = 0;
  /** Set while an alert record is processed: an alert is never answered with an alert. */
  private inAlert = false;
  /** A 'compute' event is out: records wait in the deframer until resume(). */
  private computing = false;
  private readonly maxKeyUpdatesPerCall: number;
  private readonly maxMessagesPerCall: number;
  /** A per-call cap stopped processing: records may wait for drain(). */
  private _stalled = false;

  /** The options without `ephemeralKeyPair`: that goes to the handshake only (see ClientHandshake.given). */
  private readonly options: Omit<SessionOptions, 'ephemeralKeyPair'>;

  private constructor(
    readonly role: 'client' | 'server',
    options: SessionOptions,
  ) {
    const { ephemeralKeyPair, ...kept } = options;
    this.options = kept; // the handshake's config too (one object)
    this.handshake = role === 'client' ? new ClientHandshake(kept, ephemeralKeyPair) : new ServerHandshake(kept);
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    const keyUpdateInterval = options.keyUpdateInterval ?? DEFAULT_KEY_UPDATE_INTERVAL;
    if (!(Number.isSafeInteger(this.maxMessageSize) && this.maxMessageSize > 0)) throw new InvalidArgumentError('maxMessageSize must be a positive integer');
    const limit = options.sequenceLimit ?? 2 ** 48;
    if (!(Number.isSafeInteger(keyUpdateInterval) && keyUpdateInterval > 0 && keyUpdateInterval < limit)) {
      throw new InvalidArgumentError('keyUpdateInterval must be a positive integer below sequenceLimit (a key update needs a record of its own)');
    }
    this.applicationPadding = checkPaddingBlock(options.applicationPadding, 'applicationPadding');
    this.assembler = new MessageAssembler(this.maxMessageSize);
    this.maxKeyUpdatesPerCall = perCallCap(options.maxKeyUpdatesPerCall, 'maxKeyUpdatesPerCall');
    this.maxMessagesPerCall = perCallCap(options.maxMessagesPerCall, 'maxMessagesPerCall');
    const budget = options.keyUpdateRate !== undefined ? new KeyUpdateBudget(options.keyUpdateRate) : undefined;
    this.keys = new TrafficKeys(options.backend, keyUpdateInterval, options.sequenceLimit, budget);
  }

  static client(options: SessionOptions): Session {
    return new Session('client', options);
  }

  static server(options: SessionOptions): Session {
    return new Session('server', options);
  }

  get state(): SessionState {
    return this._state;
  }

  /** KeyUpdates sent and received so far (for metrics). */
  get keyUpdates(): number {
    return this.keys.count;
  }

  /** The handshake result (peer identity, suite, transcript hash) once established. */
  get result(): HandshakeResult | undefined {
    return this._result;
  }

  /** The fatal error, once failed. */
  get error(): PqmcpError | undefined {
    return this._error;
  }

  /** Bytes received but not yet forming a whole record. */
  get bufferedBytes(): number {
    return this.deframer.bufferedBytes;
  }

  /** Bytes of a partly received application message (held until its final fragment). */
  get partialBytes(): number {
    return this.assembler.pendingBytes;
  }

  /**
   * True when a per-call cap (`maxKeyUpdatesPerCall`, `maxMessagesPerCall`) stopped the last call with records
   * possibly left in the deframer: call drain() (on a later turn) to process them.
   */
  get stalled(): boolean {
    return this._stalled && this._state !== 'failed' && this._state !== 'closed';
  }

  /**
   * While `stalled` by the KeyUpdate ration (`keyUpdateRate`): milliseconds until drain()
   * can go on. 0 otherwise (a per-call cap: drain on the next turn).
   */
  get keyUpdateWaitMs(): number {
    return this.stalled && this.keys.budget !== undefined ? this.keys.budget.waitMs : 0;
  }

  /** Go on processing records left by a per-call cap (see `stalled`). Never throws for peer input. */
  drain(): SessionOutput {
    const out: SessionOutput = { send: [], events: [] };
    if (this._state === 'failed' || this._state === 'closed') return out;
    this.guard(out, () => this.processRecords(out));
    return out;
  }

  /** Bytes of application messages queued and not yet sealed (see queue()). */
  get pendingBytes(): number {
    return this.pendingSize;
  }

  /** True while the peer's update_requested waits for our next application record. */
  get keyUpdatePending(): boolean {
    return this.keys.owed;
  }

  /** True while our own update_requested waits for the peer's KeyUpdate (updateKeys(true) then asks nothing more). */
  get keyUpdateRequested(): boolean {
    return this.keys.awaitingAnswer;
  }

  /** The client's first flight (ClientHello). The server has nothing to say first. */
  start(): SessionOutput {
    if (this.started) throw new InvalidArgumentError('start() may be called once');
    this.started = true;
    const out: SessionOutput = { send: [], events: [] };
    const hs = this.handshake;
    if (hs instanceof ClientHandshake) this.guard(out, () => this.apply(hs.start(), out));
    return out;
  }

  /** Feed bytes from the peer (any chunking). Never throws for peer input. */
  receive(chunk: Uint8Array): SessionOutput {
    const out: SessionOutput = { send: [], events: [] };
    if (this._state === 'failed' || this._state === 'closed') return out;
    this.guard(out, () => {
      this.deframer.push(chunk);
      this.processRecords(out);
    });
    return out;
  }

  /** Continue after a 'compute' event with its result. Never throws for a late result. */
  resume(result: CryptoResult): SessionOutput {
    const out: SessionOutput = { send: [], events: [] };
    if (this._state === 'failed' || this._state === 'closed') return out;
    if (!this.computing) throw new InvalidArgumentError('resume() without a pending compute event');
    this.computing = false;
    this.guard(out, () => {
      this.apply(this.handshaking().resume(result), out);
      this.processRecords(out);
    });
    return out;
  }

  private processRecords(out: SessionOutput): void {
    this._stalled = false;
    this.keys.thisCall = 0;
    if (this.computing) return;
    const messagesBefore = out.events.length; // events other than messages count too: a safe overestimate
    const budget = this.keys.budget;
    for (;;) {
      // The ration is spent: nothing more is opened until it refills (the next record may be a KeyUpdate).
      if (budget !== undefined && !budget.ready) {
        this._stalled = true;
        break;
      }
      const rec = this.deframer.next();
      if (!rec) break;
      this.onRecord(rec.type, rec.header, rec.body, out);
      if (this._state === 'closed' || this.computing) break;
      if (this.keys.thisCall >= this.maxKeyUpdatesPerCall || out.events.length - messagesBefore >= this.maxMessagesPerCall) {
        this._stalled = true;
        break;
      }
    }
  }

  /**
   * Encrypt one application message. Before the handshake completes it is queued and sent
   * right after this side's keys are ready. Throws ClosedError after close or failure and
   * MessageTooLargeError above maxMessageSize (nothing is sent in either case).
   */
  send(message: Uint8Array): Uint8Array[] {
    this.queue(message);
    return this.flush();
  }

  /**
   * Accept one application message for the next flush() (or, before the handshake
   * completes, for the client's final flight). Throws as send() does; the caller must
   * flush() before the end of its turn: the message is not sealed until then.
   */
  queue(message: Uint8Array): void {
    if (this._state === 'failed') throw new ClosedError('session failed: ' + (this._error?.message ?? 'unknown error'));
    if (this._state === 'closed' || this.sentClose) throw new ClosedError();
    if (message.length > this.maxMessageSize) throw new MessageTooLargeError(message.length, this.maxMessageSize);
    if (this._state === 'established') {
      this.pending.push(message);
      this.pendingSize += message.length;
      return;
    }
    if (this.queuedBytes + message.length > this.maxMessageSize) throw new MessageTooLargeError(this.queuedBytes + message.length, this.maxMessageSize);
    this.queued.push(message);
    this.queuedBytes += message.length;
  }

  /** Seal every queued message, in order, coalescing small ones; [] if none. Fails the session if sealing fails. */
  flush(): Uint8Array[] {
    return this.pending.length === 0 ? [] : this.sealing((out) => this.sealPending(out));
  }

  /**
   * Send a KeyUpdate now; with `requestPeer`, ask the peer to update its sending keys too.
   * While an earlier request is unanswered (`keyUpdateRequested`), the KeyUpdate goes out as
   * update_not_requested: RFC 9846 section 4.7.3 forbids a second update_requested before the
   * peer's next KeyUpdate. This side's keys are updated either way; the peer's answer to the
   * earlier request is still coming.
   */
  updateKeys(requestPeer = false): Uint8Array[] {
    if (this._state !== 'established' || this.sentClose) throw new ClosedError('key update needs an established session');
    return this.sealing((out) => {
      this.sealPending(out);
      this.keys.send(requestPeer && !this.keys.awaitingAnswer, out);
    });
  }

  /**
   * The authenticated close (close_notify). Idempotent; returns [] once sent or failed.
   * During the handshake it is the application's cancel instead: user_canceled (90), as the
   * transports send (protocol.md section 7; a close_notify there is unexpected_message to
   * the peer), and the session is closed.
   */
  close(): Uint8Array[] {
    if (this.sentClose || this._state === 'failed') return [];
    const out = this.flush();
    this.sentClose = true;
    // Before any send keys exist the alert can only be plaintext (unauthenticated).
    out.push(alertRecord(this.keys, this._state === 'handshaking' ? Alert.userCanceled : Alert.closeNotify));
    if (this._state === 'handshaking') {
      this._state = 'closed';
      this.handshake?.dispose();
    }
    return out;
  }

  /**
   * The underlying stream ended. Without the peer's authenticated close this is truncation.
   * During the handshake it is a peer's unauthenticated drop, routine under a flood (one per
   * dropped connection): that error is built without a stack trace (stackless.ts).
   */
  end(): SessionEvent[] {
    if (this._state === 'closed' || this._state === 'failed') return [];
    const error = this._state === 'handshaking' ? stackless(() => new TruncationError('connection ended during the handshake')) : new TruncationError();
    this.fail(error);
    return [{ type: 'error', error }];
  }

  /** Abort locally (e.g. handshake timeout): returns the alert to send, if any. */
  abort(error: PqmcpError): Uint8Array[] {
    if (this._state === 'closed' || this._state === 'failed') return [];
    const out: Uint8Array[] = [];
    if (error.alert !== undefined && !this.sentClose) {
      this.trySealPending(out);
      out.push(alertRecord(this.keys, error.alert));
    }
    this.fail(error);
    return out;
  }

  /** TLS-style exporter (RFC 8446 section 7.5) for channel binding. */
  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array {
    if (!this.exporterSecret) throw new ClosedError('exporter needs an established session');
    if (!(length > 0 && length <= 255 * 32)) throw new InvalidArgumentError('exporter length must be 1..8160');
    // The label travels as "pqmcp1 " + label in a vector<u8> (docs/protocol.md 5.6).
    if (typeof label !== 'string' || utf8Encode(label).length > 248) throw new InvalidArgumentError('exporter label must be a string of at most 248 UTF-8 bytes');
    // Hashed as bytes: a string context was hashed as UTF-8 by the native backend and refused
    // with a TypeError by the portable one, two answers to one call (review 17, R17-2).
    if (!(context instanceof Uint8Array)) throw new InvalidArgumentError('exporter context must be a Uint8Array');
    return exportKeyingMaterial(this.options.backend, this.exporterSecret, label, context, length);
  }

  // --- internals -------------------------------------------------------------------------

  /**
   * Run a local sealing step. If it fails part-way (e.g. sequence exhausted), the records
   * already sealed cannot be taken back without a sequence gap at the peer, so the session
   * fails as a whole and the error is rethrown; nothing half-sent is ever returned.
   */
  private sealing(fn: (out: Uint8Array[]) => void): Uint8Array[] {
    const out: Uint8Array[] = [];
    try {
      fn(out);
    } catch (err) {
      const error = toPqmcpError(err);
      this.fail(error);
      throw error;
    }
    return out;
  }

  private guard(out: SessionOutput, fn: () => void): void {
    this.inAlert = false;
    try {
      fn();
    } catch (err) {
      const error = toPqmcpError(err);
      // Answer with an alert unless the failure came from an alert record or we already closed.
      if (!this.inAlert && error.alert !== undefined && !this.sentClose) {
        this.trySealPending(out.send);
        try {
          out.send.push(alertRecord(this.keys, error.alert));
        } catch {
          // No alert possible (e.g. sequence exhausted): close silently.
        }
      }
      this.fail(error);
      out.events.push({ type: 'error', error });
    } finally {
      this.inAlert = false;
    }
  }

  /** The handshake state machine; after the handshake, any handshake message is unexpected. */
  private handshaking(): ClientHandshake | ServerHandshake {
    if (this.handshake === undefined) throw new UnexpectedMessageError('handshake message after the handshake completed');
    return this.handshake;
  }

  private fail(error: PqmcpError): void {
    this.handshake?.dispose(); // ended before it completed: its secrets and key share go
    this._state = 'failed';
    this._error = error;
    this.queued = [];
    this.queuedBytes = 0;
    this.pending = [];
    this.pendingSize = 0;
    this.wipeKeys();
  }

  /** Forget every key this session holds (failure or close). The exporter and a partly received message go too. */
  private wipeKeys(): void {
    this.assembler.discard();
    this.keys.wipe();
    this.exporterSecret?.fill(0);
    this.exporterSecret = undefined;
    this.resumptionSecret?.fill(0);
    this.resumptionSecret = undefined;
  }

  private onRecord(type: number, header: Uint8Array, body: Uint8Array, out: SessionOutput): void {
    if (type === RecordType.handshake) {
      if (this.keys.rx.epoch !== 'plaintext') throw new UnexpectedMessageError('plaintext handshake record after keys were established');
      this.apply(this.handshaking().receive(body, 'plaintext'), out);
      return;
    }
    if (type === RecordType.alert) {
      this.inAlert = true;
      // A peer that fails before it has keys (e.g. on our ServerHello) can only alert in
      // plaintext. Accepting that during the handshake costs nothing (an attacker who can
      // inject it can also cut the connection); once application keys are in use, an
      // unauthenticated alert is refused.
      // It is unauthenticated: reported as an abort carrying its code, never with the
      // trusted meaning of that code.
      if (this.keys.rx.epoch === 'application') throw new UnexpectedMessageError('plaintext alert after the handshake');
      const code = decodeAlert(body);
      // server_busy means only "retry later", exactly what the (equally forgeable) close
      // code 4006 says: the server's cheap refusal before any signature.
      if (code === Alert.serverBusy) throw new ServerBusyError('server busy: it refused the handshake before any work, try again later');
      throw new PeerAbortedError(code);
    }
    // Protected record.
    if (!this.keys.rx.cipher) throw new UnexpectedMessageError('protected record before keys were established');
    const { innerType, content } = this.keys.rx.cipher.open(header, body);
    switch (innerType) {
      case InnerType.handshake:
        if (this.keys.rx.epoch === 'application') return this.onPostHandshake(content, out);
        if (this.keys.rx.epoch !== 'handshake') throw new UnexpectedMessageError('handshake message after the handshake completed');
        this.apply(this.handshaking().receive(content, 'handshake'), out);
        return;
      case InnerType.alert:
        this.inAlert = true;
        this.onAlert(decodeAlert(content), out);
        this.inAlert = false;
        return;
      case InnerType.keyUpdate:
        if (this.keys.rx.epoch !== 'application') throw new UnexpectedMessageError('KeyUpdate during the handshake');
        this.keys.received(decodeKeyUpdate(content), this.sentClose);
        return;
      case InnerType.applicationFragment:
      case InnerType.applicationFinal: {
        if (this.keys.rx.epoch !== 'application') throw new UnexpectedMessageError('application data before the handshake completed');
        this.keys.inARow = 0;
        const message = this.assembler.add(innerType, content);
        if (message) out.events.push({ type: 'message', data: message });
        return;
      }
      case InnerType.applicationMulti:
        if (this.keys.rx.epoch !== 'application') throw new UnexpectedMessageError('application data before the handshake completed');
        if (this.assembler.pending) throw new UnexpectedMessageError('multi-message record inside a fragmented message');
        this.keys.inARow = 0;
        for (const data of decodeMessages(content, this.maxMessageSize)) out.events.push({ type: 'message', data });
        return;
      default:
        throw new UnexpectedMessageError(`unknown inner content type ${innerType}`);
    }
  }

  /** A protected (authenticated) alert. */
  private onAlert(code: number, out: SessionOutput): void {
    if (code === Alert.closeNotify) {
      if (this.keys.rx.epoch !== 'application') throw new UnexpectedMessageError('close_notify during the handshake');
      if (this.assembler.pending) throw new TruncationError('close_notify in the middle of a fragmented message');
      if (!this.sentClose) out.send.push(...this.close());
      this._state = 'closed';
      this.wipeKeys();
      out.events.push({ type: 'close' });
      return;
    }
    throw new PeerAlertError(code);
  }

  /** After the handshake only NewSessionTicket (server to client) is a handshake message. */
  private onPostHandshake(message: Uint8Array, out: SessionOutput): void {
    const secret = this.resumptionSecret;
    if (this.role !== 'client' || this._state !== 'established' || !secret || !this._result) {
      throw new UnexpectedMessageError('handshake message after the handshake completed');
    }
    const { backend, identity } = this.options;
    const own = identity.credential instanceof Uint8Array ? identity.credential : identity.credential.encoded;
    const ticket = receiveNewSessionTicket(backend, secret, message, this._result.peer, this._result.suite, own, (this.options.now ?? Date.now)(), this.longestTicket);
    if (ticket) out.events.push({ type: 'ticket', ticket });
  }

  private apply(actions: HandshakeAction[], out: SessionOutput): void {
    for (const action of actions) {
      switch (action.type) {
        case 'send':
          // 'application': a post-handshake message (NewSessionTicket) under application keys.
          if (action.epoch === 'application') this.sealPending(out.send);
          out.send.push(action.epoch === 'plaintext' ? encodeRecord(RecordType.handshake, action.message) : sealHandshake(this.keys, action.message));
          break;
        case 'keys': {
          // The suite is fixed by the first key installation (after the hellos).
          if (!this.keys.suite) this.keys.suite = this.handshaking().negotiatedSuite;
          const dir = action.direction === 'send' ? this.keys.tx : this.keys.rx;
          dir.epoch = action.epoch;
          dir.secret = action.secret;
          this.keys.install(dir, action.secret);
          break;
        }
        case 'complete':
          this._result = action.result;
          this.exporterSecret = action.exporterSecret;
          // Only a client keeps it (the server has issued its tickets by now).
          if (this.role === 'client') {
            this.resumptionSecret = action.resumptionSecret;
            this.longestTicket = action.longestTicket ?? 0;
          } else action.resumptionSecret?.fill(0);
          this._state = 'established';
          // Nothing reads the state machine again: let its transcript (both credentials,
          // the hellos, views pinning the received flights) and peer state go.
          this.handshake = undefined;
          out.events.push({ type: 'handshake', result: action.result });
          this.flushQueue(out);
          break;
        case 'compute':
          this.computing = true;
          out.events.push({ type: 'compute', request: action.request });
          break;
      }
    }
  }

  /** Seal what queue() accepted (before any other record this side seals). */
  private sealPending(out: Uint8Array[]): void {
    if (this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    this.pendingSize = 0;
    sealMessages(this.keys, pending, out, this.applicationPadding, this.recordBuffers);
  }

  /** The session is failing: send what was queued ahead of the alert if that is still possible. */
  private trySealPending(out: Uint8Array[]): void {
    const start = out.length;
    try {
      this.sealPending(out);
    } catch {
      out.length = start; // nothing half-sealed goes out
    }
  }

  private flushQueue(out: SessionOutput): void {
    const queued = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    sealMessages(this.keys, queued, out.send, this.applicationPadding, this.recordBuffers);
  }
}

