/**
 * A PQMCP/1 session: the handshake state machine and the record layer joined into one pure
 * engine over a byte stream. Bytes in (any chunking), bytes out and events; no sockets and
 * no timers. Transports (WebSocket, tests, fuzzers) drive it.
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
import type { ClientTicket } from '../resumption/client-tickets.js';
import { exportKeyingMaterial, nextTrafficSecret, trafficKeys } from '../handshake/key-schedule.js';
import type { CryptoRequest, CryptoResult, Epoch, HandshakeAction, HandshakeConfig, HandshakeResult } from '../handshake/types.js';
import { CREDENTIAL_PADDING_BLOCK, CipherState, InnerType, MessageAssembler, RecordDeframer, RecordType, checkPaddingBlock, decodeMessages, eachPacked, encodeRecord, fragmentMessage, paddingFor } from '../record/index.js';
import type { InnerTypeId } from '../record/index.js';
import { HEADER_LENGTH, MAX_CONTENT, TAG_LENGTH } from '../record/constants.js';
import { MsgType, Suite, decodeAlert, decodeKeyUpdate, encodeAlert, encodeKeyUpdate } from '../wire/messages.js';
import type { AeadAlgorithm } from '../crypto/types.js';
import { utf8Encode } from '../bytes.js';
import { stackless } from '../stackless.js';
import { KeyUpdateBudget, type KeyUpdateRate } from './key-update-budget.js';

export interface SessionOptions extends HandshakeConfig {
  /** Largest application message accepted or sent, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /**
   * Records sent under one key before an automatic key update. Default 2^22. Must be below
   * sequenceLimit. With AES-256-GCM it is clamped to 2^22 whatever is configured (the AEAD's
   * data limit, docs/protocol.md section 3.4).
   */
  keyUpdateInterval?: number;
  /** Hard per-key record limit (tests force it small). Default 2^48. */
  sequenceLimit?: number;
  /**
   * Pad the last record of each application message so that its inner plaintext is a
   * multiple of this many bytes (docs/protocol.md, section 3.2): an observer then learns
   * message sizes only to this granularity. 0 (default): no application padding. Credential
   * records are always padded (to 1024).
   */
  applicationPadding?: number;
  /**
   * KeyUpdates processed per receive()/resume()/drain() call; past it, `stalled` is true
   * and the rest waits for drain(). Default: no cap.
   */
  maxKeyUpdatesPerCall?: number;
  /**
   * Application messages emitted per receive()/resume()/drain() call; past it, `stalled` is
   * true and the rest waits for drain(). Default: no cap.
   */
  maxMessagesPerCall?: number;
  /**
   * Ration the peer's KeyUpdates beyond its automatic ones (key-update-budget.ts); past
   * it, `stalled` is true until `keyUpdateWaitMs` has passed. Default: no ration.
   */
  keyUpdateRate?: KeyUpdateRate;
}

export type SessionEvent =
  | { type: 'handshake'; result: HandshakeResult }
  /** Client: the server sent a resumption ticket (keep it for a later connection). */
  | { type: 'ticket'; ticket: ClientTicket }
  | { type: 'message'; data: Uint8Array }
  | { type: 'close' }
  | { type: 'error'; error: PqmcpError }
  /** deferCrypto: compute this, then call resume() with the result (or abort()). */
  | { type: 'compute'; request: CryptoRequest };

export interface SessionOutput {
  /** Bytes to write to the peer, in order. */
  send: Uint8Array[];
  events: SessionEvent[];
}

export type SessionState = 'handshaking' | 'established' | 'closed' | 'failed';

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
/**
 * 2^22 records of at most 2^16 bytes is 2^38 bytes per key: the AES-GCM budget TLS 1.3 uses
 * (2^24.5 records of 2^14 bytes), and far inside ChaCha20-Poly1305's.
 */
export const DEFAULT_KEY_UPDATE_INTERVAL = 2 ** 22;
/** KeyUpdates accepted from the peer with no application data in between (BoringSSL's kMaxKeyUpdates). */
export const MAX_KEY_UPDATES_IN_A_ROW = 32;
/** The most records one AES-256-GCM key may protect here (2^22 x 2^16 bytes = 2^38 bytes). */
export const AES_GCM_MAX_KEY_UPDATE_INTERVAL = 2 ** 22;

/** The key-update interval in force for `suite`: the configured one, clamped for AES-GCM. */
export function effectiveKeyUpdateInterval(suite: number, configured: number): number {
  return suite === Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 ? Math.min(configured, AES_GCM_MAX_KEY_UPDATE_INTERVAL) : configured;
}

interface Direction {
  epoch: Epoch;
  cipher: CipherState | undefined;
  secret: Uint8Array | undefined;
}

/** A per-call cap option: a positive integer, or unset for none (Infinity). */
function perCallCap(value: number | undefined, name: string): number {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return value;
}

/** The AEAD of a suite. */
export function aeadFor(suite: number): AeadAlgorithm {
  return suite === Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 ? 'aes-256-gcm' : 'chacha20-poly1305';
}

export class Session {
  /**
   * Where large application records are sealed into (a transport's reused buffers); unset,
   * every record is a new buffer. Whoever sets it gives the records back once written.
   */
  recordBuffers: { take(n: number): Uint8Array | undefined } | undefined;
  /** The handshake state machine; released (with its transcript) once established. */
  private handshake: ClientHandshake | ServerHandshake | undefined;
  private readonly deframer = new RecordDeframer();
  private readonly assembler: MessageAssembler;
  private readonly tx: Direction = { epoch: 'plaintext', cipher: undefined, secret: undefined };
  private readonly rx: Direction = { epoch: 'plaintext', cipher: undefined, secret: undefined };
  private readonly maxMessageSize: number;
  private readonly keyUpdateInterval: number;
  private readonly applicationPadding: number;
  private keyUpdateCount = 0;
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  /** Accepted by queue() once established, not yet sealed (flush() seals them). */
  private pending: Uint8Array[] = [];
  private pendingSize = 0;
  private sentClose = false;
  private _state: SessionState = 'handshaking';
  private _result: HandshakeResult | undefined;
  private _error: PqmcpError | undefined;
  private suite = 0;
  private started = false;
  private exporterSecret: Uint8Array | undefined;
  /** Client: the resumption master secret, for the server's NewSessionTickets. */
  private resumptionSecret: Uint8Array | undefined;
  /** Set while an alert record is processed: an alert is never answered with an alert. */
  private inAlert = false;
  /** The peer asked for our KeyUpdate; it is sent before our next application record. */
  private keyUpdateOwed = false;
  /** KeyUpdates received since the peer's last application record. */
  private keyUpdatesInARow = 0;
  /** A 'compute' event is out: records wait in the deframer until resume(). */
  private computing = false;
  private readonly maxKeyUpdatesPerCall: number;
  /** KeyUpdates processed in the current call. */
  private keyUpdatesThisCall = 0;
  private readonly maxMessagesPerCall: number;
  /** A per-call cap stopped processing: records may wait for drain(). */
  private _stalled = false;
  /** The ration of the peer's KeyUpdates (keyUpdateRate), if any. */
  private readonly keyUpdateBudget: KeyUpdateBudget | undefined;
  /** We sent update_requested and the peer's answer has not come yet: it is free. */
  private awaitingKeyUpdate = false;

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
    this.keyUpdateInterval = options.keyUpdateInterval ?? DEFAULT_KEY_UPDATE_INTERVAL;
    if (!(Number.isSafeInteger(this.maxMessageSize) && this.maxMessageSize > 0)) throw new InvalidArgumentError('maxMessageSize must be a positive integer');
    const limit = options.sequenceLimit ?? 2 ** 48;
    if (!(Number.isSafeInteger(this.keyUpdateInterval) && this.keyUpdateInterval > 0 && this.keyUpdateInterval < limit)) {
      throw new InvalidArgumentError('keyUpdateInterval must be a positive integer below sequenceLimit (a key update needs a record of its own)');
    }
    this.applicationPadding = checkPaddingBlock(options.applicationPadding, 'applicationPadding');
    this.assembler = new MessageAssembler(this.maxMessageSize);
    this.maxKeyUpdatesPerCall = perCallCap(options.maxKeyUpdatesPerCall, 'maxKeyUpdatesPerCall');
    this.maxMessagesPerCall = perCallCap(options.maxMessagesPerCall, 'maxMessagesPerCall');
    this.keyUpdateBudget = options.keyUpdateRate !== undefined ? new KeyUpdateBudget(options.keyUpdateRate) : undefined;
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
    return this.keyUpdateCount;
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
    return this.stalled && this.keyUpdateBudget !== undefined ? this.keyUpdateBudget.waitMs : 0;
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
    return this.keyUpdateOwed;
  }

  /** True while our own update_requested waits for the peer's KeyUpdate (updateKeys(true) then asks nothing more). */
  get keyUpdateRequested(): boolean {
    return this.awaitingKeyUpdate;
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
    this.keyUpdatesThisCall = 0;
    if (this.computing) return;
    const messagesBefore = out.events.length; // events other than messages count too: a safe overestimate
    const budget = this.keyUpdateBudget;
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
      if (this.keyUpdatesThisCall >= this.maxKeyUpdatesPerCall || out.events.length - messagesBefore >= this.maxMessagesPerCall) {
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
      this.sendKeyUpdate(requestPeer && !this.awaitingKeyUpdate, out);
    });
  }

  /** The authenticated close (close_notify). Idempotent; returns [] once sent or failed. */
  close(): Uint8Array[] {
    if (this.sentClose || this._state === 'failed') return [];
    const out = this.flush();
    this.sentClose = true;
    // Before any send keys exist the close can only be a plaintext alert (unauthenticated).
    out.push(this.alertRecord(Alert.closeNotify));
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
      out.push(this.alertRecord(error.alert));
    }
    this.fail(error);
    return out;
  }

  /** TLS-style exporter (RFC 8446 section 7.5) for channel binding. */
  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array {
    if (!this.exporterSecret) throw new ClosedError('exporter needs an established session');
    if (!(length > 0 && length <= 255 * 32)) throw new InvalidArgumentError('exporter length must be 1..8160');
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
          out.send.push(this.alertRecord(error.alert));
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
    for (const dir of [this.tx, this.rx]) {
      dir.cipher?.wipe();
      dir.secret?.fill(0);
      dir.cipher = dir.secret = undefined;
    }
    this.exporterSecret?.fill(0);
    this.exporterSecret = undefined;
    this.resumptionSecret?.fill(0);
    this.resumptionSecret = undefined;
  }

  private alertRecord(code: number): Uint8Array {
    if (this.tx.cipher) return this.tx.cipher.seal(InnerType.alert, encodeAlert(code));
    return encodeRecord(RecordType.alert, encodeAlert(code));
  }

  private onRecord(type: number, header: Uint8Array, body: Uint8Array, out: SessionOutput): void {
    if (type === RecordType.handshake) {
      if (this.rx.epoch !== 'plaintext') throw new UnexpectedMessageError('plaintext handshake record after keys were established');
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
      if (this.rx.epoch === 'application') throw new UnexpectedMessageError('plaintext alert after the handshake');
      const code = decodeAlert(body);
      // server_busy means only "retry later", exactly what the (equally forgeable) close
      // code 4006 says: the server's cheap refusal before any signature.
      if (code === Alert.serverBusy) throw new ServerBusyError('server busy: it refused the handshake before any work, try again later');
      throw new PeerAbortedError(code);
    }
    // Protected record.
    if (!this.rx.cipher) throw new UnexpectedMessageError('protected record before keys were established');
    const { innerType, content } = this.rx.cipher.open(header, body);
    switch (innerType) {
      case InnerType.handshake:
        if (this.rx.epoch === 'application') return this.onPostHandshake(content, out);
        if (this.rx.epoch !== 'handshake') throw new UnexpectedMessageError('handshake message after the handshake completed');
        this.apply(this.handshaking().receive(content, 'handshake'), out);
        return;
      case InnerType.alert:
        this.inAlert = true;
        this.onAlert(decodeAlert(content), out);
        this.inAlert = false;
        return;
      case InnerType.keyUpdate:
        if (this.rx.epoch !== 'application') throw new UnexpectedMessageError('KeyUpdate during the handshake');
        this.onKeyUpdate(decodeKeyUpdate(content));
        return;
      case InnerType.applicationFragment:
      case InnerType.applicationFinal: {
        if (this.rx.epoch !== 'application') throw new UnexpectedMessageError('application data before the handshake completed');
        this.keyUpdatesInARow = 0;
        const message = this.assembler.add(innerType, content);
        if (message) out.events.push({ type: 'message', data: message });
        return;
      }
      case InnerType.applicationMulti:
        if (this.rx.epoch !== 'application') throw new UnexpectedMessageError('application data before the handshake completed');
        if (this.assembler.pending) throw new UnexpectedMessageError('multi-message record inside a fragmented message');
        this.keyUpdatesInARow = 0;
        for (const data of decodeMessages(content, this.maxMessageSize)) out.events.push({ type: 'message', data });
        return;
      default:
        throw new UnexpectedMessageError(`unknown inner content type ${innerType}`);
    }
  }

  /** A protected (authenticated) alert. */
  private onAlert(code: number, out: SessionOutput): void {
    if (code === Alert.closeNotify) {
      if (this.rx.epoch !== 'application') throw new UnexpectedMessageError('close_notify during the handshake');
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
    const ticket = receiveNewSessionTicket(backend, secret, message, this._result.peer, this._result.suite, own, (this.options.now ?? Date.now)());
    if (ticket) out.events.push({ type: 'ticket', ticket });
  }

  private onKeyUpdate(requested: boolean): void {
    if (++this.keyUpdatesInARow > MAX_KEY_UPDATES_IN_A_ROW) {
      throw new UnexpectedMessageError(`more than ${MAX_KEY_UPDATES_IN_A_ROW} KeyUpdates without application data`);
    }
    this.keyUpdateCount++;
    this.keyUpdatesThisCall++;
    // Records opened under the key it retires, itself included: past the interval, it is the
    // peer's automatic update; the first one after our update_requested is its answer.
    const automatic = this.rx.cipher!.sequence > effectiveKeyUpdateInterval(this.suite, this.keyUpdateInterval);
    const answer = this.awaitingKeyUpdate;
    this.awaitingKeyUpdate = false;
    if (!automatic && !answer) this.keyUpdateBudget?.take();
    const old = this.rx.secret!;
    this.rx.secret = nextTrafficSecret(this.options.backend, old);
    old.fill(0); // forward secrecy in memory: the old key cannot be re-derived
    this.install(this.rx, this.rx.secret);
    // RFC 8446 4.6.3: answered before our next application record, once however many came.
    if (requested && !this.sentClose) this.keyUpdateOwed = true;
  }

  private sendKeyUpdate(requestPeer: boolean, out: Uint8Array[]): void {
    // Any update of our sending keys answers a pending request.
    this.keyUpdateOwed = false;
    this.keyUpdateCount++;
    out.push(this.tx.cipher!.seal(InnerType.keyUpdate, encodeKeyUpdate(requestPeer)));
    if (requestPeer) this.awaitingKeyUpdate = true;
    const old = this.tx.secret!;
    this.tx.secret = nextTrafficSecret(this.options.backend, old);
    old.fill(0);
    this.install(this.tx, this.tx.secret);
  }

  private maybeUpdateKeys(out: Uint8Array[]): void {
    if (this.tx.cipher!.sequence >= effectiveKeyUpdateInterval(this.suite, this.keyUpdateInterval)) this.sendKeyUpdate(false, out);
  }

  private install(dir: Direction, secret: Uint8Array): void {
    const { key, iv } = trafficKeys(this.options.backend, secret);
    dir.cipher?.wipe();
    const limit = this.options.sequenceLimit;
    dir.cipher = new CipherState(this.options.backend, aeadFor(this.suite), key, iv, limit !== undefined ? { sequenceLimit: limit } : {});
    key.fill(0);
    iv.fill(0);
  }

  private apply(actions: HandshakeAction[], out: SessionOutput): void {
    for (const action of actions) {
      switch (action.type) {
        case 'send':
          // 'application': a post-handshake message (NewSessionTicket) under application keys.
          if (action.epoch === 'application') this.sealPending(out.send);
          out.send.push(action.epoch === 'plaintext' ? encodeRecord(RecordType.handshake, action.message) : this.sealHandshake(action.message));
          break;
        case 'keys': {
          // The suite is fixed by the first key installation (after the hellos).
          if (!this.suite) this.suite = this.handshaking().negotiatedSuite;
          const dir = action.direction === 'send' ? this.tx : this.rx;
          dir.epoch = action.epoch;
          dir.secret = action.secret;
          this.install(dir, action.secret);
          break;
        }
        case 'complete':
          this._result = action.result;
          this.exporterSecret = action.exporterSecret;
          // Only a client keeps it (the server has issued its tickets by now).
          if (this.role === 'client') this.resumptionSecret = action.resumptionSecret;
          else action.resumptionSecret?.fill(0);
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

  /**
   * Seal `messages` in order: runs of small ones as multi-message records, the others as
   * fragments. The last record of each message (or batch) is padded per `applicationPadding`.
   */
  private sealMessages(messages: readonly Uint8Array[], out: Uint8Array[]): void {
    if (this.keyUpdateOwed) this.sendKeyUpdate(false, out);
    // A multi-message content is encoded into the shared scratch and sealed (copied into
    // its record) before the next is encoded.
    eachPacked(messages, (packed) => {
      if ('multi' in packed) {
        this.maybeUpdateKeys(out);
        out.push(this.sealApplication(InnerType.applicationMulti, packed.multi));
        return;
      }
      if (packed.single.length <= MAX_CONTENT) {
        // One record, as fragmentMessage would cut it (without its list).
        this.maybeUpdateKeys(out);
        out.push(this.sealApplication(InnerType.applicationFinal, packed.single));
        return;
      }
      for (const frag of fragmentMessage(packed.single)) {
        this.maybeUpdateKeys(out);
        out.push(this.sealApplication(frag.innerType, frag.content));
      }
    }, multiScratch());
  }

  private sealApplication(innerType: InnerTypeId, content: Uint8Array): Uint8Array {
    const padding = innerType === InnerType.applicationFragment ? 0 : paddingFor(content.length, this.applicationPadding);
    const out = this.recordBuffers?.take(HEADER_LENGTH + content.length + 1 + padding + TAG_LENGTH);
    return this.tx.cipher!.seal(innerType, content, padding, out);
  }

  /** Seal what queue() accepted (before any other record this side seals). */
  private sealPending(out: Uint8Array[]): void {
    if (this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    this.pendingSize = 0;
    this.sealMessages(pending, out);
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

  /** A protected handshake message; a Credential is padded to its bucket (identity hiding by length). */
  private sealHandshake(message: Uint8Array): Uint8Array {
    const padding = message[0] === MsgType.credential ? paddingFor(message.length, CREDENTIAL_PADDING_BLOCK) : 0;
    return this.tx.cipher!.seal(InnerType.handshake, message, padding);
  }

  private flushQueue(out: SessionOutput): void {
    const queued = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    this.sealMessages(queued, out.send);
  }
}

/**
 * Where every Session encodes a multi-message content just before sealing it (one per
 * process, made on first use): sealing copies the content into the record at once, so
 * nothing keeps it, and JavaScript runs one seal at a time. It holds the last content
 * until the next overwrites it, as a freed buffer would until reused (application
 * plaintext is not wiped anywhere).
 */
let scratch: Uint8Array | undefined;
function multiScratch(): Uint8Array {
  return (scratch ??= new Uint8Array(MAX_CONTENT));
}

/** Label for the MCP transports' channel-binding export. */
export const CHANNEL_BINDING_LABEL = 'EXPORTER-pqmcp-channel-binding';
export const EMPTY_CONTEXT = utf8Encode('');
