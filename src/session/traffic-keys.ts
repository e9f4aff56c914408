/**
 * A Session's traffic keys (session.ts): each direction's epoch, cipher and secret, the
 * installation of a new secret, and KeyUpdate both ways (docs/protocol.md section 3.4; RFC
 * 8446 section 4.6.3): this side's own updates (automatic at the interval, on demand, or
 * owed to the peer's update_requested) and the peer's (counted in a row and per call,
 * rationed by keyUpdateRate). Pure: no I/O; the Session decides when, and collects the
 * records.
 *
 * Sharp edges:
 * - A secret is wiped as soon as the next one is derived from it (forward secrecy in
 *   memory: an old key cannot be re-derived); the installed cipher's key and IV too.
 * - The suite is fixed by the first installation (after the hellos); the key-update
 *   interval in force is clamped for AES-256-GCM (options.ts effectiveKeyUpdateInterval).
 * - A peer's update_requested is owed at most once, and never after this side's close_notify;
 *   any update of this side's sending keys answers it.
 * - A peer's KeyUpdate retiring a key that protected more than the interval's records (its
 *   automatic update), or the first after this side's own update_requested (the answer),
 *   takes no token from the ration; any other takes one.
 */
import { UnexpectedMessageError } from '../errors.js';
import { nextTrafficSecret, trafficKeys } from '../handshake/key-schedule.js';
import type { Epoch } from '../handshake/types.js';
import { CipherState, InnerType } from '../record/index.js';
import { encodeKeyUpdate } from '../wire/messages.js';
import type { CryptoBackend } from '../crypto/types.js';
import type { KeyUpdateBudget } from './key-update-budget.js';
import { MAX_KEY_UPDATES_IN_A_ROW, aeadFor, effectiveKeyUpdateInterval } from './options.js';

export interface Direction {
  epoch: Epoch;
  cipher: CipherState | undefined;
  secret: Uint8Array | undefined;
}

export class TrafficKeys {
  /** This side's sending direction. */
  readonly tx: Direction = { epoch: 'plaintext', cipher: undefined, secret: undefined };
  /** This side's receiving direction. */
  readonly rx: Direction = { epoch: 'plaintext', cipher: undefined, secret: undefined };
  /** The negotiated suite: 0 until the first installation fixes it. */
  suite = 0;
  /** KeyUpdates sent and received so far (for metrics). */
  count = 0;
  /** The peer asked for our KeyUpdate; it is sent before our next application record. */
  owed = false;
  /** We sent update_requested and the peer's answer has not come yet: it is free. */
  awaitingAnswer = false;
  /** KeyUpdates received since the peer's last application record. */
  inARow = 0;
  /** KeyUpdates received in the current receive()/resume()/drain() call. */
  thisCall = 0;

  constructor(
    private readonly backend: CryptoBackend,
    /** keyUpdateInterval as configured (checked by the Session). */
    private readonly interval: number,
    private readonly sequenceLimit: number | undefined,
    /** The ration of the peer's KeyUpdates (keyUpdateRate), if any. */
    readonly budget: KeyUpdateBudget | undefined,
  ) {}

  /** Make `secret` the current key of `dir` (the old cipher is wiped). */
  install(dir: Direction, secret: Uint8Array): void {
    const { key, iv } = trafficKeys(this.backend, secret);
    dir.cipher?.wipe();
    const limit = this.sequenceLimit;
    dir.cipher = new CipherState(this.backend, aeadFor(this.suite), key, iv, limit !== undefined ? { sequenceLimit: limit } : {});
    key.fill(0);
    iv.fill(0);
  }

  /**
   * The peer's KeyUpdate, just opened: move the receiving side on. `closing`: this side has
   * sent its close_notify (a request is then not answered).
   */
  received(requested: boolean, closing: boolean): void {
    if (++this.inARow > MAX_KEY_UPDATES_IN_A_ROW) {
      throw new UnexpectedMessageError(`more than ${MAX_KEY_UPDATES_IN_A_ROW} KeyUpdates without application data`);
    }
    this.count++;
    this.thisCall++;
    // Records opened under the key it retires, itself included: past the interval, it is the
    // peer's automatic update; the first one after our update_requested is its answer.
    const automatic = this.rx.cipher!.sequence > effectiveKeyUpdateInterval(this.suite, this.interval);
    const answer = this.awaitingAnswer;
    this.awaitingAnswer = false;
    if (!automatic && !answer) this.budget?.take();
    const old = this.rx.secret!;
    this.rx.secret = nextTrafficSecret(this.backend, old);
    old.fill(0); // forward secrecy in memory: the old key cannot be re-derived
    this.install(this.rx, this.rx.secret);
    // RFC 8446 4.6.3: answered before our next application record, once however many came.
    if (requested && !closing) this.owed = true;
  }

  /** Seal our KeyUpdate into `out`, then move the sending side on. */
  send(requestPeer: boolean, out: Uint8Array[]): void {
    // Any update of our sending keys answers a pending request.
    this.owed = false;
    this.count++;
    out.push(this.tx.cipher!.seal(InnerType.keyUpdate, encodeKeyUpdate(requestPeer)));
    if (requestPeer) this.awaitingAnswer = true;
    const old = this.tx.secret!;
    this.tx.secret = nextTrafficSecret(this.backend, old);
    old.fill(0);
    this.install(this.tx, this.tx.secret);
  }

  /** Before sealing a record: the automatic update once the interval's records went out. */
  maybeUpdate(out: Uint8Array[]): void {
    if (this.tx.cipher!.sequence >= effectiveKeyUpdateInterval(this.suite, this.interval)) this.send(false, out);
  }

  /** Forget both directions' keys (failure or close). */
  wipe(): void {
    for (const dir of [this.tx, this.rx]) {
      dir.cipher?.wipe();
      dir.secret?.fill(0);
      dir.cipher = dir.secret = undefined;
    }
  }
}
