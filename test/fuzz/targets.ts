/**
 * Fuzz targets: functions from bytes to nothing that throw a `Finding` when an invariant
 * breaks, and never otherwise. Engine-agnostic: Jazzer.js calls them through jazzer.ts, the
 * built-in engine (engine.ts) directly.
 *
 *   wire        handshake message decoders: only DecodeError; what decodes re-encodes to the same bytes
 *   credential  the credential decoder: only DecodeError; canonical (re-encoding gives the input)
 *   records     record deframing under two chunkings (same result) and record opening
 *   session     a fresh server Session fed the input in chunks: never throws, never
 *               ERR_INTERNAL, one error at most, then silent
 *   handshake   a handshake message in any state of either side (forked, sealed under the
 *               right key): never completes unless it is the honest message, only typed refusals
 *   inner       an established session fed records of any inner type and content, checked
 *               against a model of section 3 of the spec (deliveries and the exact error)
 *   proxy       the PROXY protocol header parser (v1 and v2): only ERR_PROXY_PROTOCOL; the
 *               same answer fed whole or byte by byte; a header within its bound, ending
 *               where it says, with IP addresses and ports in range
 */
import { concat } from '../../src/bytes.js';
import { PqmcpError, ProxyProtocolError } from '../../src/errors.js';
import { decodeCredential, encodeCredentialTbs } from '../../src/identity/credential.js';
import { CipherState, InnerType, RecordDeframer, RecordType } from '../../src/record/index.js';
import { Session } from '../../src/session/session.js';
import {
  decodeAlert,
  decodeClientHello,
  decodeCredentialMessage,
  decodeCredentialVerify,
  decodeFinished,
  decodeKeyUpdate,
  decodeServerHello,
  encodeClientHello,
  encodeCredentialMessage,
  encodeCredentialVerify,
  encodeFinished,
  encodeServerHello,
  peekClientHelloVersions,
  unframeHandshake,
} from '../../src/wire/messages.js';
import { isIP } from 'node:net';
import { MAX_V1_HEADER, MAX_V2_HEADER, parseProxyHeader, type ProxyHeader } from '../../src/transport/proxy-protocol.js';
import { v1Header, v2Header } from '../helpers/proxy-header.js';
import { Paused, RECEIVED_MESSAGES, fixtures, native, setup } from '../adversarial/fixtures.js';
import type { Duel } from '../adversarial/harness.js';

/** An invariant broke: the input is a bug reproducer. */
export class Finding extends Error {
  override readonly name = 'Finding';
}

export interface FuzzTarget {
  readonly name: string;
  readonly about: string;
  /** Real protocol bytes to start from (the seed corpus is generated from these). */
  seeds(): Uint8Array[];
  run(data: Uint8Array): void;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

function check(cond: boolean, what: string): void {
  if (!cond) throw new Finding(what);
}

/** Run `fn`; a thrown PqmcpError with one of `codes` is expected, anything else is a Finding. */
function expectOnly<T>(codes: string[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Finding) throw err;
    if (err instanceof PqmcpError && codes.includes(err.code)) return undefined;
    throw new Finding(`unexpected ${err instanceof PqmcpError ? err.code : String(err)}: ${(err as Error)?.message}`);
  }
}

// --- wire --------------------------------------------------------------------------------

const wire: FuzzTarget = {
  name: 'wire',
  about: 'handshake message decoders: only DecodeError; whatever decodes re-encodes to the same bytes',
  seeds() {
    const d = setup('server').run();
    const parts = (d.attacker.hs as unknown as { transcript: { parts: Uint8Array[] } }).transcript.parts;
    return parts.map((p) => concat(Uint8Array.of(0), p)).concat([Uint8Array.of(6, 0, 0), Uint8Array.of(6, 1), Uint8Array.of(3, 2, 0, 1)]);
  },
  run(data) {
    if (data.length === 0) return;
    const input = data.subarray(1);
    switch (data[0]! % 7) {
      case 0: {
        const m = expectOnly(['ERR_DECODE'], () => unframeHandshake(input));
        if (!m) return;
        const body = m.body;
        const again: Uint8Array | undefined = expectOnly(['ERR_DECODE'], () => {
          switch (m.type) {
            case 1:
              return encodeClientHello(decodeClientHello(body));
            case 2:
              return encodeServerHello(decodeServerHello(body));
            case 11:
              return encodeCredentialMessage(decodeCredentialMessage(body));
            case 15:
              return encodeCredentialVerify(decodeCredentialVerify(body));
            case 20:
              return encodeFinished(decodeFinished(body));
            default:
              return undefined;
          }
        });
        if (again) check(same(again, input), `message type ${m.type} decodes but does not re-encode to the same bytes`);
        return;
      }
      case 1: {
        const ch = expectOnly(['ERR_DECODE'], () => decodeClientHello(input));
        if (ch) check(same(unframeHandshake(encodeClientHello(ch)).body, input), 'ClientHello not canonical');
        return;
      }
      case 2: {
        const sh = expectOnly(['ERR_DECODE'], () => decodeServerHello(input));
        if (sh) check(same(unframeHandshake(encodeServerHello(sh)).body, input), 'ServerHello not canonical');
        return;
      }
      case 3:
        expectOnly(['ERR_DECODE'], () => peekClientHelloVersions(input));
        return;
      case 4:
        expectOnly(['ERR_DECODE'], () => decodeCredentialVerify(input));
        return;
      case 5:
        expectOnly(['ERR_DECODE'], () => decodeCredentialMessage(input));
        return;
      default: {
        const alert = expectOnly(['ERR_DECODE'], () => decodeAlert(input));
        if (alert !== undefined) check(input.length === 2 && alert === ((input[0]! << 8) | input[1]!), 'alert decode');
        const ku = expectOnly(['ERR_DECODE'], () => decodeKeyUpdate(input));
        if (ku !== undefined) check(input.length === 1 && input[0]! <= 1, 'KeyUpdate decode');
        const fin = expectOnly(['ERR_DECODE'], () => decodeFinished(input));
        if (fin) check(input.length === 32, 'Finished decode');
      }
    }
  },
};

// --- credential --------------------------------------------------------------------------

const credential: FuzzTarget = {
  name: 'credential',
  about: 'credential decoder: only DecodeError; canonical (re-encoding the fields gives the input)',
  seeds() {
    const f = fixtures();
    return [f.client.credential.encoded, f.server.credential.encoded];
  },
  run(data) {
    const c = expectOnly(['ERR_DECODE'], () => decodeCredential(data));
    if (!c) return;
    check(data.length <= 16384, 'credential above 16384 bytes decoded');
    check(same(c.encoded, data), 'decoded credential does not keep its bytes');
    const tbs = expectOnly([], () => encodeCredentialTbs(c));
    check(tbs !== undefined && same(tbs, c.tbs), 'credential decodes but its fields re-encode differently (not canonical)');
  },
};

// --- records -----------------------------------------------------------------------------

const RECORD_ERRORS = ['ERR_DECODE', 'ERR_RECORD_OVERFLOW', 'ERR_UNEXPECTED_MESSAGE'];

function deframe(data: Uint8Array, chunk: number): { records: string[]; error: string | undefined } {
  const d = new RecordDeframer();
  const records: string[] = [];
  try {
    for (let o = 0; o < data.length; o += chunk) {
      d.push(data.subarray(o, o + chunk));
      for (let r = d.next(); r; r = d.next()) records.push(`${r.type}:${Buffer.from(r.body).toString('hex')}`);
    }
    return { records, error: undefined };
  } catch (err) {
    if (!(err instanceof PqmcpError) || !RECORD_ERRORS.includes(err.code)) throw new Finding(`deframer threw ${String(err)}`);
    return { records, error: err.code };
  }
}

const recordKey = new Uint8Array(32).fill(1);
const recordIv = new Uint8Array(12).fill(2);

const records: FuzzTarget = {
  name: 'records',
  about: 'record deframing: same records or same error under any chunking; opening refuses with typed errors only',
  seeds() {
    const tx = new CipherState(native, 'chacha20-poly1305', recordKey, recordIv);
    const hello = setup('server', { bugs: { hold: 'ClientHello' } }).run().attacker.held[0]!.framed;
    return [
      concat(Uint8Array.of(7), Uint8Array.of(RecordType.handshake, 0, hello.length >> 8, hello.length & 0xff), hello),
      concat(Uint8Array.of(1), tx.seal(InnerType.applicationFinal, new TextEncoder().encode('{"jsonrpc":"2.0"}')), tx.seal(InnerType.alert, Uint8Array.of(0, 0))),
      Uint8Array.of(3, 0x15, 0, 0, 2, 0, 10),
    ];
  },
  run(data) {
    if (data.length === 0) return;
    const stream = data.subarray(1);
    const whole = deframe(stream, Math.max(1, stream.length));
    const pieces = deframe(stream, (data[0]! % 16) + 1);
    check(whole.error === pieces.error && whole.records.length === pieces.records.length && whole.records.every((r, i) => r === pieces.records[i]), 'deframing depends on how the stream is cut');
    const rx = new CipherState(native, 'chacha20-poly1305', recordKey, recordIv);
    const d = new RecordDeframer();
    expectOnly([...RECORD_ERRORS, 'ERR_BAD_RECORD_MAC'], () => {
      d.push(stream);
      for (let r = d.next(); r; r = d.next()) if (r.type === RecordType.protected) rx.open(r.header, r.body);
    });
  },
};

// --- session -----------------------------------------------------------------------------

const REFUSALS = new Set([
  'ERR_DECODE',
  'ERR_UNEXPECTED_MESSAGE',
  'ERR_UNSUPPORTED_VERSION',
  'ERR_UNSUPPORTED_SUITE',
  'ERR_BAD_RECORD_MAC',
  'ERR_RECORD_OVERFLOW',
  'ERR_BAD_SIGNATURE',
  'ERR_BAD_FINISHED',
  'ERR_INVALID_KEY',
  'ERR_CREDENTIAL_INVALID',
  'ERR_CREDENTIAL_EXPIRED',
  'ERR_CREDENTIAL_NOT_YET_VALID',
  'ERR_CREDENTIAL_REVOKED',
  'ERR_UNTRUSTED_ISSUER',
  'ERR_PEER_ALERT',
  'ERR_PEER_ABORTED',
  'ERR_MESSAGE_TOO_LARGE',
  'ERR_SEQUENCE_EXHAUSTED',
  'ERR_TRUNCATED',
  // The protocol revision's and resumption's refusals (each a typed error with its alert): a
  // peer's own credential reflected back fails the role binding (ERR_CREDENTIAL_USAGE; found
  // by CI's bounded fuzz run on 2026-12-06, the harness's list was short, the session right).
  'ERR_CREDENTIAL_USAGE',
  'ERR_NAME_CONSTRAINT',
  'ERR_ENDPOINT_MISMATCH',
  'ERR_UNEXPECTED_PEER',
  'ERR_UNSUPPORTED_EXTENSION',
  'ERR_BAD_BINDER',
]);

/** Feed `chunks` to a session; check it never throws, refuses only with typed refusals, once, then stays silent. */
function feed(s: Session, chunks: Uint8Array[]): { errors: string[]; completed: boolean; messages: Uint8Array[] } {
  const errors: string[] = [];
  const messages: Uint8Array[] = [];
  let completed = false;
  for (const c of chunks) {
    const failed = errors.length > 0;
    let out;
    try {
      out = s.receive(c);
    } catch (err) {
      throw new Finding(`Session.receive threw ${String(err)}`);
    }
    if (failed) check(out.send.length === 0 && out.events.length === 0, 'a failed session produced output');
    for (const e of out.events) {
      if (e.type === 'error') {
        check(REFUSALS.has(e.error.code), `refused with ${e.error.code}: ${e.error.message}`);
        errors.push(e.error.code);
      }
      if (e.type === 'handshake') completed = true;
      if (e.type === 'message') messages.push(e.data);
    }
    for (const r of out.send) check(r.length >= 4 && [0x15, 0x16, 0x17].includes(r[0]!) && ((r[1]! << 16) | (r[2]! << 8) | r[3]!) === r.length - 4, 'malformed record sent');
  }
  check(errors.length <= 1, 'more than one error');
  return { errors, completed, messages };
}

const session: FuzzTarget = {
  name: 'session',
  about: 'a fresh server Session fed the bytes in chunks: never throws, typed refusals only, one error, then silent',
  seeds() {
    const hello = setup('server', { bugs: { hold: 'ClientHello' } }).run().attacker.held[0]!.framed;
    const record = concat(Uint8Array.of(RecordType.handshake, 0, hello.length >> 8, hello.length & 0xff), hello);
    return [concat(Uint8Array.of(0), record), concat(Uint8Array.of(5), record, Uint8Array.of(0x15, 0, 0, 2, 0, 0)), Uint8Array.of(2, 0x17, 0, 0, 17, ...new Uint8Array(17))];
  },
  run(data) {
    if (data.length === 0) return;
    const f = fixtures();
    const s = Session.server({ backend: native, identity: f.server.local, trust: f.trust });
    const stream = data.subarray(1);
    const chunk = (data[0]! % 8) * 37 + 1;
    const chunks: Uint8Array[] = [];
    for (let o = 0; o < stream.length; o += chunk) chunks.push(stream.subarray(o, o + chunk));
    const r = feed(s, chunks);
    check(!r.completed, 'a server completed a handshake from unauthenticated bytes');
  },
};

// --- handshake ---------------------------------------------------------------------------

let pausedStates: Paused[] | undefined;
function states(): Paused[] {
  pausedStates ??= RECEIVED_MESSAGES.map(([role, m]) => new Paused(role, m));
  return pausedStates;
}

const handshake: FuzzTarget = {
  name: 'handshake',
  about: 'any handshake message in any state of either side, sealed under the right key: completes only with the honest message, typed refusals only',
  seeds() {
    return states().map((p, i) => concat(Uint8Array.of(i), p.honestMessage));
  },
  run(data) {
    if (data.length === 0) return;
    const all = states();
    const p = all[data[0]! % all.length]!;
    const message = data.subarray(1);
    let d: Duel;
    try {
      d = p.deliver(message);
    } catch (err) {
      throw new Finding(`delivering a handshake message threw ${String(err)}`);
    }
    const error = d.error;
    if (error) check(REFUSALS.has(error.code), `refused with ${error.code}: ${error.message}`);
    if (d.completed) check(same(message, p.honestMessage), 'a handshake completed with a message that is not the honest one');
  },
};

// --- inner: established session vs a model -----------------------------------------------

let established: Duel | undefined;

/**
 * Records from bytes: [inner type][length u16][content]...; length 0xffff means a full
 * 65536-byte fragment of the next byte. Bounded to 64 records.
 */
function innerRecords(data: Uint8Array): { type: number; content: Uint8Array }[] {
  const out: { type: number; content: Uint8Array }[] = [];
  let o = 0;
  while (o + 3 <= data.length && out.length < 64) {
    const type = data[o]!;
    const len = (data[o + 1]! << 8) | data[o + 2]!;
    o += 3;
    if (len === 0xffff) {
      out.push({ type, content: new Uint8Array(65536).fill(data[o] ?? 0) });
      o += 1;
    } else {
      out.push({ type, content: data.subarray(o, Math.min(data.length, o + len)) });
      o += len;
    }
  }
  return out;
}

/**
 * Section 3.2: the inner type is the last non-zero byte of content || type; zeros after it
 * are padding (so a type 0 is padding, and the content's own last non-zero byte is the
 * type). Undefined: padding only.
 */
function effectiveInner(rec: { type: number; content: Uint8Array }): { type: number; content: Uint8Array } | undefined {
  const inner = concat(rec.content, Uint8Array.of(rec.type));
  let last = inner.length - 1;
  while (last >= 0 && inner[last] === 0) last--;
  return last < 0 ? undefined : { type: inner[last]!, content: inner.subarray(0, last) };
}

/** What docs/protocol.md section 3 says an established receiver does with these records. */
function model(recs: { type: number; content: Uint8Array }[]): { delivered: Uint8Array[]; error: string | undefined; closed: boolean } {
  const delivered: Uint8Array[] = [];
  let parts: Uint8Array[] = [];
  let keyUpdatesInARow = 0;
  for (const rec of recs) {
    // Padding only: unexpected_message.
    const effective = effectiveInner(rec);
    if (effective === undefined) return { delivered, error: 'ERR_UNEXPECTED_MESSAGE', closed: false };
    const { type, content } = effective;
    switch (type) {
      case InnerType.applicationFragment:
        keyUpdatesInARow = 0;
        if (content.length !== 65536) return { delivered, error: 'ERR_DECODE', closed: false };
        parts.push(content);
        break;
      case InnerType.applicationFinal:
        keyUpdatesInARow = 0;
        delivered.push(concat(...parts, content));
        parts = [];
        break;
      case InnerType.applicationMulti: {
        // Section 3.3: not inside a fragmented message; 2..1024 entries of length u16
        // (1..65535) || message, consuming the content exactly.
        if (parts.length > 0) return { delivered, error: 'ERR_UNEXPECTED_MESSAGE', closed: false };
        const entries: Uint8Array[] = [];
        for (let o = 0; o < content.length; ) {
          const n = o + 2 <= content.length ? (content[o]! << 8) | content[o + 1]! : -1;
          if (entries.length === 1024 || n <= 0 || o + 2 + n > content.length) return { delivered, error: 'ERR_DECODE', closed: false };
          entries.push(content.subarray(o + 2, o + 2 + n));
          o += 2 + n;
        }
        if (entries.length < 2) return { delivered, error: 'ERR_DECODE', closed: false };
        keyUpdatesInARow = 0;
        delivered.push(...entries);
        break;
      }
      case InnerType.keyUpdate:
        if (content.length !== 1 || content[0]! > 1) return { delivered, error: 'ERR_DECODE', closed: false };
        // Section 3.4: at most 32 KeyUpdates without application data in between.
        if (++keyUpdatesInARow > 32) return { delivered, error: 'ERR_UNEXPECTED_MESSAGE', closed: false };
        break;
      case InnerType.alert: {
        if (content.length !== 2) return { delivered, error: 'ERR_DECODE', closed: false };
        const code = (content[0]! << 8) | content[1]!;
        if (code !== 0) return { delivered, error: 'ERR_PEER_ALERT', closed: false };
        if (parts.length > 0) return { delivered, error: 'ERR_TRUNCATED', closed: false };
        return { delivered, error: undefined, closed: true };
      }
      default:
        // 0x01 (a handshake message after the handshake) and unknown inner types.
        return { delivered, error: 'ERR_UNEXPECTED_MESSAGE', closed: false };
    }
  }
  return { delivered, error: undefined, closed: false };
}

const inner: FuzzTarget = {
  name: 'inner',
  about: 'an established session fed records of any inner type and content (sealed correctly): matches the model of section 3',
  seeds() {
    const t = new TextEncoder();
    const m = t.encode('{"jsonrpc":"2.0","id":1,"result":{}}');
    return [
      concat(Uint8Array.of(5, 0, m.length), m),
      Uint8Array.of(4, 0xff, 0xff, 7, 5, 0, 1, 9, 3, 0, 1, 1, 5, 0, 0),
      Uint8Array.of(2, 0, 2, 0, 0, 5, 0, 1, 1),
      Uint8Array.of(1, 0, 4, 20, 0, 0, 0),
      concat(Uint8Array.of(6, 0, 4 + 2 * m.length, 0, m.length), m, Uint8Array.of(0, m.length), m),
      Uint8Array.of(6, 0, 5, 0, 1, 7, 0, 0),
      Uint8Array.of(4, 0xff, 0xff, 1, 6, 0, 6, 0, 1, 1, 0, 1, 2),
      // A KeyUpdate spelt as type 0 + content 00 03 00 (padding), then a record under the new keys.
      Uint8Array.of(0, 0, 3, 0, 3, 0, 0, 0x20, 3, 0, 0, 0, 0, 3, 0),
    ];
  },
  run(data) {
    established ??= setup('server').run();
    const d = established.fork();
    const recs = innerRecords(data);
    const sealed: Uint8Array[] = [];
    for (const r of recs) {
      sealed.push(d.attacker.seal(r.type, r.content));
      // The attacker keeps in step with its own well-formed KeyUpdates, however they are
      // spelt: a record of type 0 whose content ends in 0x03 (then padding) is one too.
      const e = effectiveInner(r);
      if (e?.type === InnerType.keyUpdate && e.content.length === 1 && e.content[0]! <= 1) {
        d.attacker.previousTx = d.attacker.tx;
        d.attacker.tx = d.attacker.tx!.next();
      }
    }
    const r = feed(d.honest, sealed);
    const expected = model(recs);
    check((r.errors[0] ?? undefined) === expected.error, `expected ${expected.error ?? 'no error'}, got ${r.errors[0] ?? 'no error'}`);
    check(r.messages.length === expected.delivered.length && r.messages.every((m, i) => same(m, expected.delivered[i]!)), 'delivered messages differ from the model');
    check(d.honest.state === (expected.error ? 'failed' : expected.closed ? 'closed' : 'established'), `state ${d.honest.state}`);
  },
};

// --- proxy ---------------------------------------------------------------------------------

/** The parser's answer for `data`: a header, 'more' (incomplete), or the refusal's reason. */
function proxyAnswer(data: Uint8Array): ProxyHeader | 'more' | `refused ${string}` {
  try {
    return parseProxyHeader(data) ?? 'more';
  } catch (err) {
    if (err instanceof ProxyProtocolError) return `refused ${err.reason}`;
    throw new Finding(`unexpected ${err instanceof PqmcpError ? err.code : String(err)}: ${(err as Error)?.message}`);
  }
}

const proxy: FuzzTarget = {
  name: 'proxy',
  about: 'PROXY protocol header parser: only ERR_PROXY_PROTOCOL; whole = byte by byte; bounded, well-formed results',
  seeds() {
    const http = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n');
    return [
      Buffer.concat([v1Header('192.0.2.1', '198.51.100.2', 56324, 443), http]),
      v1Header('2001:db8::1', '::ffff:192.0.2.1', 0, 65535),
      Buffer.from('PROXY UNKNOWN ::1 ::2 1 2\r\n'),
      Buffer.concat([v2Header({ src: '192.0.2.1', tlvs: [{ type: 0xea, value: Buffer.from('\x01vpce-0123') }, { type: 0x04, value: Buffer.alloc(3) }] }), http]),
      v2Header({ src: '2001:db8::7', dst: '::ffff:c000:201' }),
      v2Header({ command: 0 }),
      v2Header({ familyProtocol: 0x31, block: Buffer.alloc(216) }),
    ].map((b) => new Uint8Array(b));
  },
  run(data) {
    const whole = proxyAnswer(data);
    // Fed byte by byte (a reader accumulating what arrives): 'more' until the same answer.
    let stepwise: ReturnType<typeof proxyAnswer> = 'more';
    for (let n = 1; n <= data.length && stepwise === 'more'; n++) stepwise = proxyAnswer(data.subarray(0, n));
    if (data.length === 0) stepwise = proxyAnswer(data);
    check(JSON.stringify(stepwise) === JSON.stringify(whole), `byte by byte ${JSON.stringify(stepwise)}, whole ${JSON.stringify(whole)}`);
    if (typeof whole === 'string') return;
    check(whole.length <= (whole.version === 1 ? MAX_V1_HEADER : MAX_V2_HEADER) && whole.length <= data.length, `header length ${whole.length}`);
    check(JSON.stringify(proxyAnswer(data.subarray(0, whole.length))) === JSON.stringify(whole), 'the header alone parses differently');
    for (const end of [whole.source, whole.destination]) {
      if (end === undefined) continue;
      check(isIP(end.address) !== 0 && Number.isInteger(end.port) && end.port >= 0 && end.port <= 65_535, `endpoint ${JSON.stringify(end)}`);
    }
    check((whole.source === undefined) === (whole.destination === undefined), 'source without destination');
    check(!whole.local || whole.source === undefined, 'LOCAL with a client address');
  },
};

export const TARGETS: readonly FuzzTarget[] = [wire, credential, records, session, handshake, inner, proxy];

export function targetNamed(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown fuzz target ${JSON.stringify(name)} (targets: ${TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}
