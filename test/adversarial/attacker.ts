/**
 * The attacker: a complete PQMCP/1 peer that breaks the rules it is told to break. It runs
 * the real handshake state machine for its role (so everything it does not break is
 * correct) over the harness's own record layer (wire-tap.ts), and applies one knob per
 * misbehaviour (`Bugs`) to what that state machine sends. Tests that need a script drive
 * it directly: `seal` (any inner type, key and sequence number), `sendApplication`,
 * `sendKeyUpdate`, `sendAlert`, `release` (held messages), `emitMessage`.
 *
 * Sharp edges:
 * - Message names are the attacker's own: 'Credential' is the attacker's Credential.
 * - Knobs change what is sent, not the attacker's transcript: its state machine keeps the
 *   honest version. The honest side must fail at the first bad message anyway, but an
 *   attacker that changed something cannot complete a handshake it would otherwise have.
 */
import { concat, utf8Encode } from '../../src/bytes.js';
import { compositeSign } from '../../src/crypto/composite.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { PqmcpError } from '../../src/errors.js';
import { ClientHandshake, ServerHandshake } from '../../src/handshake/handshake.js';
import type { Epoch, HandshakeAction, HandshakeConfig, HandshakeResult, LocalIdentity } from '../../src/handshake/types.js';
import type { TrustStore } from '../../src/identity/trust.js';
import { InnerType, RecordType } from '../../src/record/index.js';
import { decodeClientHello, decodeCredentialVerify, decodeServerHello, encodeClientHello, encodeServerHello, unframeHandshake } from '../../src/wire/messages.js';
import { registerForkable } from './fork.js';
import { RawDeframer, RecordKeys, header, type Role } from './wire-tap.js';

export type MessageName = 'ClientHello' | 'ServerHello' | 'Credential' | 'CredentialVerify' | 'Finished';

const MESSAGE_NAMES: Record<number, MessageName> = { 1: 'ClientHello', 2: 'ServerHello', 11: 'Credential', 15: 'CredentialVerify', 20: 'Finished' };
export const MESSAGE_TYPES: Record<MessageName, number> = { ClientHello: 1, ServerHello: 2, Credential: 11, CredentialVerify: 15, Finished: 20 };

export const SERVER_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 server CredentialVerify');
export const CLIENT_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 client CredentialVerify');

/** What a signature knob is given: the honest signature and the means to make another. */
export interface SignatureContext {
  /** The transcript hash the honest attacker signed. */
  transcriptHash: Uint8Array;
  /** The context string for this role. */
  context: Uint8Array;
  /** Sign any message (a transcript hash) with the attacker's key under any context. */
  sign(message: Uint8Array, context?: Uint8Array): Uint8Array;
}

/**
 * One knob per misbehaviour. Message knobs name the attacker's own messages; record knobs
 * count every record the attacker sends, from 0.
 */
export interface Bugs {
  // --- framing of the attacker's handshake messages
  /** Keep only the first `keep` bytes of the framed message; with fixLength, rewrite its u24 length to match. */
  truncate?: { message: MessageName; keep: number; fixLength?: boolean };
  /** Overwrite the message's u24 length field. */
  setLength?: { message: MessageName; length: number };
  /** Append bytes after the framed message, inside the same record. */
  trailing?: { message: MessageName; bytes: Uint8Array };
  /** Overwrite the message's msg_type. */
  setType?: { message: MessageName; type: number };
  /** Rewrite the framed message arbitrarily. */
  rewrite?: { message: MessageName; with: (framed: Uint8Array) => Uint8Array };
  /** Send these framed bytes instead (e.g. the same message from another session). */
  replace?: { message: MessageName; framed: Uint8Array };
  // --- record framing of what the attacker sends
  /** Overwrite the outer type of the n-th record. */
  recordType?: { record: number; type: number };
  /** Overwrite the outer u24 length of the n-th record (the body is unchanged). */
  recordLength?: { record: number; length: number };
  /** Flip one bit (0 = most significant bit of byte 0) of the n-th record as sent. */
  flipBit?: { record: number; bit: number };
  // --- state machine
  skip?: MessageName;
  /** Send the message twice (the copy sealed as the next record under the same key). */
  duplicate?: MessageName;
  /** Send `[a, b]` as b then a. */
  swap?: [MessageName, MessageName];
  /** Send a protected handshake message as a plaintext handshake record instead. */
  plaintext?: MessageName;
  /** Stop before this message: it and everything after it are held back (see `held`). */
  hold?: MessageName;
  /** Send extra records right after a message (or before the first, 'start'). */
  inject?: { after: MessageName | 'start'; records: (a: Attacker) => Uint8Array[] };
  // --- crypto inputs
  /** Client: replace the X-Wing encapsulation key in the ClientHello. */
  keyShare?: (honest: Uint8Array) => Uint8Array;
  /** Server: replace the X-Wing ciphertext in the ServerHello. */
  ciphertext?: (honest: Uint8Array) => Uint8Array;
  /** Replace the CredentialVerify signature. */
  signature?: (honest: Uint8Array, ctx: SignatureContext) => Uint8Array;
  /** Replace the Finished verify_data. */
  finished?: (honest: Uint8Array) => Uint8Array;
  // --- record protection
  /** The sequence number to seal the n-th protected record with, given the honest one. */
  sequence?: (honest: number, record: number) => number;
}

export interface AttackerOptions {
  backend: CryptoBackend;
  identity: LocalIdentity;
  trust: TrustStore;
  suites?: readonly number[];
  versions?: readonly number[];
  now?: () => number;
  expectedPeerId?: string;
  /** Client: the endpoint named in the ClientHello (HostileClient defaults it to the URL's). */
  endpoint?: string;
  bugs?: Bugs;
}

export class Attacker {
  readonly hs: ClientHandshake | ServerHandshake;
  tx: RecordKeys | undefined;
  rx: RecordKeys | undefined;
  /** Keys this side used before its last KeyUpdate (for stale-key attacks). */
  previousTx: RecordKeys | undefined;
  txEpoch: Epoch = 'plaintext';
  rxEpoch: Epoch = 'plaintext';
  result: HandshakeResult | undefined;
  /** The state machine's own failure (e.g. it refused the honest side), if any. */
  failure: PqmcpError | undefined;
  /** Messages withheld by the `hold` knob, in order, with their epochs. */
  held: { name: MessageName; framed: Uint8Array; epoch: Epoch; keys: RecordKeys | undefined }[] = [];
  /** Alerts received from the honest side that this attacker could read. */
  alerts: number[] = [];
  /** Application messages received. */
  messages: Uint8Array[] = [];
  /** Records sent so far (after knobs), counted for the record knobs. */
  recordCount = 0;
  protectedCount = 0;
  /** The transcript hash signed in the last CredentialVerify (what a knob can reuse). */
  signedHash: Uint8Array | undefined;
  private readonly deframer = new RawDeframer();
  private fragments: Uint8Array[] = [];
  private swapHeld: { framed: Uint8Array; epoch: Epoch } | undefined;
  private holding = false;
  readonly bugs: Bugs;

  constructor(
    readonly role: Role,
    private readonly options: AttackerOptions,
  ) {
    this.bugs = options.bugs ?? {};
    const config: HandshakeConfig = { backend: options.backend, identity: options.identity, trust: options.trust };
    if (options.suites) config.suites = options.suites;
    if (options.versions) config.versions = options.versions;
    if (options.now) config.now = options.now;
    if (options.expectedPeerId !== undefined) config.expectedPeerId = options.expectedPeerId;
    if (options.endpoint !== undefined) config.endpoint = options.endpoint;
    this.hs = role === 'client' ? new ClientHandshake(config) : new ServerHandshake(config);
  }

  get backend(): CryptoBackend {
    return this.options.backend;
  }

  /** Client: the first flight. */
  start(): Uint8Array[] {
    const out = this.injectAt('start');
    if (this.hs instanceof ClientHandshake) out.push(...this.apply(this.hs.start()));
    return out;
  }

  /** Bytes from the honest side; returns what the attacker sends back. */
  receive(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const r of this.deframer.push(bytes)) {
      if (this.failure) break;
      out.push(...this.onRecord(r));
    }
    return out;
  }

  /** Seal any inner type and content under the current send key (or `keys`), optionally at a chosen sequence number. */
  seal(innerType: number, content: Uint8Array, opts: { seq?: number; keys?: RecordKeys; padding?: number } = {}): Uint8Array {
    const keys = opts.keys ?? this.tx;
    if (!keys) throw new Error('attacker has no send keys yet');
    return this.emitRecord(keys.seal(innerType, content, opts.seq ?? this.sealSeq(keys), opts.padding));
  }

  /** A plaintext record of any type. */
  plaintext(type: number, body: Uint8Array): Uint8Array {
    return this.emitRecord(concat(header(type, body.length), body));
  }

  /** One application message (one final fragment per 65536 bytes), under the current keys. */
  sendApplication(data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let o = 0;
    do {
      const end = Math.min(o + 65536, data.length);
      out.push(this.seal(end === data.length ? InnerType.applicationFinal : InnerType.applicationFragment, data.subarray(o, end)));
      o = end;
    } while (o < data.length);
    return out;
  }

  sendKeyUpdate(request: boolean): Uint8Array[] {
    const r = this.seal(InnerType.keyUpdate, Uint8Array.of(request ? 1 : 0));
    this.previousTx = this.tx;
    this.tx = this.tx!.next();
    return [r];
  }

  /** An alert: protected when the attacker has send keys (or `plaintext` is forced). */
  sendAlert(code: number, plaintext = false): Uint8Array[] {
    const body = Uint8Array.of(code >> 8, code & 0xff);
    return [plaintext || !this.tx ? this.plaintext(RecordType.alert, body) : this.seal(InnerType.alert, body)];
  }

  /** Send the held messages (after `hold`), honestly. */
  release(): Uint8Array[] {
    const held = this.held;
    this.held = [];
    this.holding = false;
    return held.flatMap((h) => this.emitMessage(h.framed, h.epoch, h.keys));
  }

  /** Seal a framed handshake message for the epoch it belongs to (plaintext or protected). */
  emitMessage(framed: Uint8Array, epoch: Epoch, keys = this.tx): Uint8Array[] {
    if (epoch === 'plaintext') return [this.plaintext(RecordType.handshake, framed)];
    return keys ? [this.seal(InnerType.handshake, framed, { keys })] : [];
  }

  // --- internals ---------------------------------------------------------------------------

  private sealSeq(keys: RecordKeys): number {
    const honest = keys.seq++;
    const index = this.protectedCount++;
    return this.bugs.sequence ? this.bugs.sequence(honest, index) : honest;
  }

  private emitRecord(record: Uint8Array): Uint8Array {
    const index = this.recordCount++;
    const b = this.bugs;
    let r = record;
    if (b.recordType?.record === index || b.recordLength?.record === index || b.flipBit?.record === index) r = r.slice();
    if (b.recordType?.record === index) r[0] = b.recordType.type;
    if (b.recordLength?.record === index) r.set(header(r[0]!, b.recordLength.length).subarray(1), 1);
    if (b.flipBit?.record === index) r[b.flipBit.bit >> 3]! ^= 0x80 >> (b.flipBit.bit & 7);
    return r;
  }

  private injectAt(point: MessageName | 'start'): Uint8Array[] {
    return this.bugs.inject?.after === point ? this.bugs.inject.records(this) : [];
  }

  private onRecord(r: Uint8Array): Uint8Array[] {
    const type = r[0]!;
    const body = r.subarray(4);
    try {
      if (type === RecordType.handshake) return this.apply(this.hs.receive(body, 'plaintext'));
      if (type === RecordType.alert) {
        this.alerts.push((body[0]! << 8) | body[1]!);
        return [];
      }
      const opened = this.rx?.open(r);
      if (!opened) return [];
      switch (opened.innerType) {
        case InnerType.handshake:
          return this.apply(this.hs.receive(opened.content, 'handshake'));
        case InnerType.alert:
          this.alerts.push((opened.content[0]! << 8) | opened.content[1]!);
          return [];
        case InnerType.keyUpdate:
          this.rx = this.rx!.next();
          return opened.content[0] === 1 ? this.sendKeyUpdate(false) : [];
        default:
          this.fragments.push(opened.content.slice());
          if (opened.innerType === InnerType.applicationFinal) {
            this.messages.push(concat(...this.fragments));
            this.fragments = [];
          }
          return [];
      }
    } catch (err) {
      this.failure = err instanceof PqmcpError ? err : new PqmcpError('ERR_INTERNAL', String(err));
      return [];
    }
  }

  private apply(actions: HandshakeAction[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const a of actions) {
      if (a.type === 'send') out.push(...this.onSend(a.message, a.epoch));
      else if (a.type === 'keys') {
        const keys = new RecordKeys(this.options.backend, this.hs.negotiatedSuite, a.secret);
        if (a.direction === 'send') {
          this.tx = keys;
          this.txEpoch = a.epoch;
        } else {
          this.rx = keys;
          this.rxEpoch = a.epoch;
        }
      } else if (a.type === 'complete') this.result = a.result;
    }
    return out;
  }

  /** The attacker's state machine wants to send `framed`: apply the knobs. */
  private onSend(honest: Uint8Array, epoch: Epoch): Uint8Array[] {
    const name = MESSAGE_NAMES[honest[0]!]!;
    const b = this.bugs;
    if (name === 'CredentialVerify') this.signedHash = this.transcriptHashBefore(honest);
    if (this.holding || b.hold === name) {
      this.holding = true;
      // Held with the keys of the moment: the flight may switch keys after its last message.
      this.held.push({ name, framed: honest, epoch, keys: this.tx });
      return [];
    }
    const framed = this.mutate(name, honest);
    const sendEpoch: Epoch = b.plaintext === name ? 'plaintext' : epoch;
    if (b.skip === name) return this.injectAt(name);
    if (b.swap?.[0] === name) {
      this.swapHeld = { framed, epoch: sendEpoch };
      return [];
    }
    const out: Uint8Array[] = [...this.emitMessage(framed, sendEpoch)];
    if (b.duplicate === name) out.push(...this.emitMessage(framed, sendEpoch));
    if (b.swap?.[1] === name && this.swapHeld) {
      const held = this.swapHeld;
      this.swapHeld = undefined;
      out.push(...this.emitMessage(held.framed, held.epoch));
    }
    out.push(...this.injectAt(name));
    return out;
  }

  private mutate(name: MessageName, honest: Uint8Array): Uint8Array {
    const b = this.bugs;
    let m = honest;
    if (b.replace?.message === name) m = b.replace.framed;
    if (b.rewrite?.message === name) m = b.rewrite.with(m);
    if (name === 'ClientHello' && b.keyShare) {
      const ch = decodeClientHello(unframeHandshake(m).body);
      m = encodeClientHello({ ...ch, keyShare: b.keyShare(ch.keyShare) });
    }
    if (name === 'ServerHello' && b.ciphertext) {
      const sh = decodeServerHello(unframeHandshake(m).body);
      m = encodeServerHello({ ...sh, ciphertext: b.ciphertext(sh.ciphertext) });
    }
    if (name === 'CredentialVerify' && b.signature) {
      const cv = decodeCredentialVerify(unframeHandshake(m).body);
      const context = this.role === 'client' ? CLIENT_SIGNATURE_CONTEXT : SERVER_SIGNATURE_CONTEXT;
      const keyPair = this.options.identity.keyPair;
      const ctx: SignatureContext = {
        transcriptHash: this.signedHash!,
        context,
        sign: (message, c = context) => compositeSign(this.options.backend, keyPair, message, c),
      };
      const signature = b.signature(cv.signature, ctx);
      // algorithm u16 | signature vector<u16>, written by hand: the knob may give any length.
      m = frame(15, concat(Uint8Array.of(cv.algorithm >> 8, cv.algorithm & 0xff, signature.length >> 8, signature.length & 0xff), signature));
    }
    if (name === 'Finished' && b.finished) m = frame(20, b.finished(unframeHandshake(m).body));
    if (b.setType?.message === name) {
      m = m.slice();
      m[0] = b.setType.type;
    }
    if (b.setLength?.message === name) {
      m = m.slice();
      m.set(header(m[0]!, b.setLength.length).subarray(1), 1);
    }
    if (b.truncate?.message === name) {
      m = m.slice(0, b.truncate.keep);
      if (b.truncate.fixLength && m.length >= 4) m.set(header(m[0]!, m.length - 4).subarray(1), 1);
    }
    if (b.trailing?.message === name) m = concat(m, b.trailing.bytes);
    return m;
  }

  /**
   * The hash the attacker's state machine signed: SHA-256 of its transcript up to (not
   * including) `verify`. By the time the flight is handed out the whole flight is in the
   * transcript, so the prefix is recomputed from the state machine's transcript parts.
   */
  private transcriptHashBefore(verify: Uint8Array): Uint8Array {
    const parts = (this.hs as unknown as { transcript: { parts: Uint8Array[] } }).transcript.parts;
    const i = parts.indexOf(verify);
    return this.options.backend.sha256(concat(...parts.slice(0, i < 0 ? parts.length : i)));
  }
}

/** msg_type u8 | length u24 | body, without any checks. */

export function frame(type: number, body: Uint8Array): Uint8Array {
  return concat(header(type, body.length), body);
}

/** A honest Session against an Attacker, in memory, with a tap on the honest side's output. */

registerForkable(Attacker);
