/**
 * The harness's own record layer, written from docs/protocol.md section 3 rather than
 * reused from src/record (so a bug there cannot hide itself here): keys with an explicit
 * sequence number, an unchecked deframer, and a tap that decrypts everything one side
 * sends with that side's own logged secrets.
 */
import { concat } from '../../src/bytes.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { nextTrafficSecret, trafficKeys } from '../../src/handshake/key-schedule.js';
import { InnerType, RecordType } from '../../src/record/index.js';
import { decodeMessages } from '../../src/record/multi.js';
import type { Session } from '../../src/session/session.js';
import { Suite } from '../../src/wire/messages.js';
import { registerForkable } from './fork.js';

export type Role = 'client' | 'server';

export function aeadOf(suite: number): 'aes-256-gcm' | 'chacha20-poly1305' {
  return suite === Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256 ? 'aes-256-gcm' : 'chacha20-poly1305';
}

/** type u8 | length u24. */
export function header(type: number, length: number): Uint8Array {
  return Uint8Array.of(type, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
}

export class RecordKeys {
  seq = 0;
  private readonly key: Uint8Array;
  private readonly iv: Uint8Array;

  constructor(
    private readonly backend: CryptoBackend,
    readonly suite: number,
    readonly secret: Uint8Array,
  ) {
    const k = trafficKeys(backend, secret);
    this.key = k.key;
    this.iv = k.iv;
  }

  nonce(seq: number): Uint8Array {
    const n = this.iv.slice();
    const hi = Math.floor(seq / 2 ** 32);
    const lo = seq >>> 0;
    for (let i = 0; i < 4; i++) {
      n[4 + i]! ^= (hi >>> (24 - 8 * i)) & 0xff;
      n[8 + i]! ^= (lo >>> (24 - 8 * i)) & 0xff;
    }
    return n;
  }

  /** header || AEAD(key, iv ^ seq, content || innerType || zeros[padding], header). Advances seq unless one is given. */
  seal(innerType: number, content: Uint8Array, seq?: number, padding = 0): Uint8Array {
    const s = seq ?? this.seq++;
    const inner = concat(content, Uint8Array.of(innerType), new Uint8Array(padding));
    const h = header(RecordType.protected, inner.length + 16);
    return concat(h, this.backend.aead(aeadOf(this.suite), this.key).seal(this.nonce(s), inner, h));
  }

  /** Seal a raw inner plaintext (no inner type appended: e.g. an empty one). */
  sealRaw(inner: Uint8Array, seq?: number): Uint8Array {
    const s = seq ?? this.seq++;
    const h = header(RecordType.protected, inner.length + 16);
    return concat(h, this.backend.aead(aeadOf(this.suite), this.key).seal(this.nonce(s), inner, h));
  }

  /** Open the next record; undefined when it does not authenticate. */
  open(record: Uint8Array): { innerType: number; content: Uint8Array } | undefined {
    const inner = this.backend.aead(aeadOf(this.suite), this.key).open(this.nonce(this.seq), record.subarray(4), record.subarray(0, 4));
    if (!inner || inner.length === 0) return undefined;
    this.seq++;
    // Strip the padding (trailing zeros): the type is the last non-zero byte.
    let last = inner.length - 1;
    while (last > 0 && inner[last] === 0) last--;
    return { innerType: inner[last]!, content: inner.subarray(0, last) };
  }

  next(): RecordKeys {
    return new RecordKeys(this.backend, this.suite, nextTrafficSecret(this.backend, this.secret));
  }
}

/** Split a byte stream into records without judging them (the harness must see anything). */
export class RawDeframer {
  private buf = new Uint8Array(0);

  push(bytes: Uint8Array): Uint8Array[] {
    this.buf = concat(this.buf, bytes);
    const out: Uint8Array[] = [];
    while (this.buf.length >= 4) {
      const len = (this.buf[1]! << 16) | (this.buf[2]! << 8) | this.buf[3]!;
      if (this.buf.length < 4 + len) break;
      out.push(this.buf.slice(0, 4 + len));
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }

  get pending(): number {
    return this.buf.length;
  }
}

/** What one side's records contained, as decrypted with that side's own secrets. */
export type TapItem =
  | { kind: 'handshake'; type: number; protected: boolean; /** The framed message, as sent. */ message: Uint8Array }
  | { kind: 'alert'; code: number; protected: boolean }
  | { kind: 'keyUpdate'; request: boolean }
  | { kind: 'application'; final: boolean; content: Uint8Array }
  | { kind: 'opaque'; bytes: Uint8Array };

/**
 * Decrypts everything one side sends, given that side's logged secrets. It follows the
 * sender's epochs: handshake keys from its first protected record, application keys after
 * its Finished, the next keys after each KeyUpdate.
 */
export class WireTap {
  readonly items: TapItem[] = [];
  /** Application records seen (kept in `items` too unless keepApplication is off). */
  applicationRecords = 0;
  /** Whole application messages those records completed (a multi-message record counts each entry). */
  applicationMessages = 0;
  private readonly deframer = new RawDeframer();
  private keys: RecordKeys | undefined;
  private afterFinished = false;

  constructor(
    private readonly backend: CryptoBackend,
    private readonly sender: Role,
    private readonly secrets: Record<string, Uint8Array>,
    /** The sending session: its negotiated suite picks the AEAD. */
    private readonly session: Session,
    /**
     * Keep application records in `items` (off for long runs: they are only counted, in
     * `applicationRecords`, so the tap's own memory does not grow with the traffic).
     */
    private readonly keepApplication = true,
  ) {}

  private suite(): number {
    // The suite is fixed before the first protected record is sealed (TrafficKeys.install).
    return (this.session as unknown as { keys: { suite: number } }).keys.suite || Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256;
  }

  push(bytes: Uint8Array): void {
    for (const r of this.deframer.push(bytes)) this.record(r);
  }

  private record(r: Uint8Array): void {
    const type = r[0]!;
    const body = r.subarray(4);
    if (type === RecordType.handshake) return void this.items.push({ kind: 'handshake', type: body[0]!, protected: false, message: body.slice() });
    if (type === RecordType.alert) return void this.items.push({ kind: 'alert', code: (body[0]! << 8) | body[1]!, protected: false });
    const p = this.sender === 'client' ? 'c' : 's';
    if (!this.keys || this.afterFinished) {
      const secret = this.secrets[`${p}_${this.keys ? 'ap' : 'hs'}_traffic${this.keys ? '_0' : ''}`];
      if (secret) this.keys = new RecordKeys(this.backend, this.suite(), secret);
      this.afterFinished = false;
    }
    const opened = this.keys?.open(r);
    if (!opened) return void this.items.push({ kind: 'opaque', bytes: r });
    const { innerType, content } = opened;
    if (innerType === InnerType.handshake) {
      this.items.push({ kind: 'handshake', type: content[0]!, protected: true, message: content.slice() });
      if (content[0] === 20) this.afterFinished = true;
    } else if (innerType === InnerType.alert) {
      this.items.push({ kind: 'alert', code: (content[0]! << 8) | content[1]!, protected: true });
    } else if (innerType === InnerType.keyUpdate) {
      this.items.push({ kind: 'keyUpdate', request: content[0] === 1 });
      this.keys = this.keys!.next();
    } else {
      this.applicationRecords++;
      if (innerType === InnerType.applicationFinal) this.applicationMessages++;
      else if (innerType === InnerType.applicationMulti) this.applicationMessages += decodeMessages(content, Number.MAX_SAFE_INTEGER).length;
      if (this.keepApplication) this.items.push({ kind: 'application', final: innerType === InnerType.applicationFinal, content: content.slice() });
    }
  }

  get alerts(): number[] {
    return this.items.flatMap((i) => (i.kind === 'alert' ? [i.code] : []));
  }
}

/** A PQMCP/1 peer that breaks the rules it is told to break. */

registerForkable(RecordKeys);
registerForkable(RawDeframer);
registerForkable(WireTap);
