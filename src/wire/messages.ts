/**
 * PQMCP/1 handshake messages: constants, encoders and decoders.
 *
 * Every handshake message is framed as
 *   HandshakeMessage := msg_type u8 | length u24 | body[length]
 * and the transcript hash covers these framed bytes exactly as sent. The byte layout of
 * each body is written above its encoder and, normatively, in docs/protocol.md.
 *
 * Sharp edges:
 * - Decoders check every length against its exact or maximum size before slicing and
 *   refuse trailing bytes; a declared length never causes an allocation (slices are views).
 * - The ClientHello layout is frozen across protocol versions (like TLS's): `versions`
 *   comes first so any future server can read it and answer protocol_version, never guess.
 * - Extensions are carried and hashed but none are defined in PQMCP/1; unknown ones are
 *   ignored (they are still authenticated by the transcript). They must be strictly
 *   ascending by type, so the encoding is canonical.
 */
import { DecodeError, UnexpectedMessageError } from '../errors.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

/** Protocol versions (u16). */
export const VERSION_1 = 0x0001;

/** Cipher suites (u16). Every PQMCP/1 suite uses X-Wing, composite MLDSA65-Ed25519 and SHA-256. */
export const Suite = {
  /** X-Wing + MLDSA65-Ed25519 + ChaCha20-Poly1305 + SHA-256 (default). */
  XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256: 0x0001,
  /** X-Wing + MLDSA65-Ed25519 + AES-256-GCM + SHA-256. */
  XWING_MLDSA65ED25519_AES256GCM_SHA256: 0x0002,
} as const;
export type SuiteId = (typeof Suite)[keyof typeof Suite];

export const SUITE_NAMES: Record<number, string> = {
  [Suite.XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256]: 'PQMCP_XWING_MLDSA65ED25519_CHACHA20POLY1305_SHA256',
  [Suite.XWING_MLDSA65ED25519_AES256GCM_SHA256]: 'PQMCP_XWING_MLDSA65ED25519_AES256GCM_SHA256',
};

/** X-Wing's KEM identifier (its HPKE code point). */
export const KEM_XWING = 0x647a;
/** Composite ML-DSA-65 + Ed25519 signature algorithm identifier. */
export const SIG_MLDSA65_ED25519 = 0x0001;

export const XWING_PUBLIC_KEY_LENGTH = 1216;
export const XWING_CIPHERTEXT_LENGTH = 1120;
export const COMPOSITE_SIG_LENGTH = 3373;
export const RANDOM_LENGTH = 32;
export const FINISHED_LENGTH = 32;
export const MAX_CREDENTIAL_LENGTH = 16384;

export const MsgType = {
  clientHello: 1,
  serverHello: 2,
  /** Post-handshake, server to client, under application keys (resumption; wire/resumption.ts). */
  newSessionTicket: 4,
  credential: 11,
  credentialVerify: 15,
  finished: 20,
} as const;
export type MsgTypeId = (typeof MsgType)[keyof typeof MsgType];

export interface Extension {
  type: number;
  data: Uint8Array;
}

export interface ClientHello {
  versions: number[];
  random: Uint8Array;
  suites: number[];
  kemId: number;
  keyShare: Uint8Array;
  extensions: Extension[];
}

export interface ServerHello {
  version: number;
  random: Uint8Array;
  suite: number;
  kemId: number;
  ciphertext: Uint8Array;
  extensions: Extension[];
}

export interface CredentialVerify {
  algorithm: number;
  signature: Uint8Array;
}

/** msg_type u8 | length u24 | body */
export function frameHandshake(type: MsgTypeId, body: Uint8Array): Uint8Array {
  return new Writer().u8(type).vector(3, body).finish();
}

/** Split one framed handshake message; the whole input must be exactly one message. */
export function unframeHandshake(bytes: Uint8Array): { type: number; body: Uint8Array } {
  const r = new Reader(bytes);
  const type = r.u8('handshake msg_type');
  const body = r.vector(3, 'handshake body');
  r.end('handshake message');
  return { type, body };
}

function writeU16List(w: Writer, prefix: 1 | 2, values: number[]): void {
  const inner = new Writer();
  for (const v of values) inner.u16(v);
  w.vector(prefix, inner.finish());
}

function readU16List(r: Reader, prefix: 1 | 2, field: string): number[] {
  const raw = r.vector(prefix, field, 2, prefix === 1 ? 254 : 0xfffe);
  if (raw.length % 2 !== 0) throw new DecodeError(`${field} has an odd length`);
  const out: number[] = [];
  const lr = new Reader(raw);
  while (lr.remaining > 0) out.push(lr.u16(field));
  return out;
}

/** extensions vector<u16> of { ext_type u16 | ext_data vector<u16> }, strictly ascending ext_type */
function writeExtensions(w: Writer, exts: Extension[]): void {
  const inner = new Writer();
  let last = -1;
  for (const e of exts) {
    if (e.type <= last) throw new DecodeError('extensions must be strictly ascending by type');
    last = e.type;
    inner.u16(e.type).vector(2, e.data);
  }
  w.vector(2, inner.finish());
}

function readExtensions(r: Reader): Extension[] {
  const raw = r.vector(2, 'extensions');
  const er = new Reader(raw);
  const out: Extension[] = [];
  let last = -1;
  while (er.remaining > 0) {
    const type = er.u16('extension type');
    if (type <= last) throw new DecodeError('extensions are not strictly ascending by type');
    last = type;
    out.push({ type, data: er.vector(2, 'extension data') });
  }
  return out;
}

/**
 * ClientHello body:
 *   versions    vector<u8>  of u16, 1..127 entries, client preference order
 *   random      [32]
 *   suites      vector<u16> of u16, 1..32767 entries, client preference order
 *   kem_id      u16  (0x647a X-Wing)
 *   key_share   vector<u16> (1216: the X-Wing encapsulation key)
 *   extensions  vector<u16>
 */
export function encodeClientHello(ch: ClientHello): Uint8Array {
  const w = new Writer();
  writeU16List(w, 1, ch.versions);
  w.bytes(ch.random);
  writeU16List(w, 2, ch.suites);
  w.u16(ch.kemId).vector(2, ch.keyShare);
  writeExtensions(w, ch.extensions);
  return frameHandshake(MsgType.clientHello, w.finish());
}

/** Read only the version list: a server answers protocol_version before parsing the rest. */
export function peekClientHelloVersions(body: Uint8Array): number[] {
  return readU16List(new Reader(body), 1, 'versions');
}

export function decodeClientHello(body: Uint8Array): ClientHello {
  const r = new Reader(body);
  const versions = readU16List(r, 1, 'versions');
  const random = r.fixed(RANDOM_LENGTH, 'client random');
  const suites = readU16List(r, 2, 'suites');
  const kemId = r.u16('kem_id');
  const keyShare = r.vector(2, 'key_share');
  const extensions = readExtensions(r);
  r.end('ClientHello');
  return { versions, random, suites, kemId, keyShare, extensions };
}

/**
 * ServerHello body:
 *   version     u16  (one of the client's versions)
 *   random      [32]
 *   suite       u16  (one of the client's suites)
 *   kem_id      u16  (must equal the ClientHello's)
 *   ciphertext  vector<u16> (1120: the X-Wing ciphertext)
 *   extensions  vector<u16>
 */
export function encodeServerHello(sh: ServerHello): Uint8Array {
  const w = new Writer().u16(sh.version).bytes(sh.random).u16(sh.suite).u16(sh.kemId).vector(2, sh.ciphertext);
  writeExtensions(w, sh.extensions);
  return frameHandshake(MsgType.serverHello, w.finish());
}

export function decodeServerHello(body: Uint8Array): ServerHello {
  const r = new Reader(body);
  const version = r.u16('version');
  const random = r.fixed(RANDOM_LENGTH, 'server random');
  const suite = r.u16('suite');
  const kemId = r.u16('kem_id');
  const ciphertext = r.vector(2, 'ciphertext');
  const extensions = readExtensions(r);
  r.end('ServerHello');
  return { version, random, suite, kemId, ciphertext, extensions };
}

/** Credential body: credential vector<u16> (1..16384, the encoded attestation credential) */
export function encodeCredentialMessage(credential: Uint8Array): Uint8Array {
  return frameHandshake(MsgType.credential, new Writer().vector(2, credential).finish());
}

export function decodeCredentialMessage(body: Uint8Array): Uint8Array {
  const r = new Reader(body);
  const credential = r.vector(2, 'credential', 1, MAX_CREDENTIAL_LENGTH);
  r.end('Credential');
  return credential;
}

/** CredentialVerify body: algorithm u16 (0x0001) | signature vector<u16> (3373) */
export function encodeCredentialVerify(cv: CredentialVerify): Uint8Array {
  return frameHandshake(MsgType.credentialVerify, new Writer().u16(cv.algorithm).vector(2, cv.signature).finish());
}

export function decodeCredentialVerify(body: Uint8Array): CredentialVerify {
  const r = new Reader(body);
  const algorithm = r.u16('signature algorithm');
  const signature = r.vector(2, 'signature', COMPOSITE_SIG_LENGTH, COMPOSITE_SIG_LENGTH);
  r.end('CredentialVerify');
  return { algorithm, signature };
}

/** Finished body: verify_data [32] */
export function encodeFinished(verifyData: Uint8Array): Uint8Array {
  return frameHandshake(MsgType.finished, verifyData);
}

export function decodeFinished(body: Uint8Array): Uint8Array {
  if (body.length !== FINISHED_LENGTH) throw new DecodeError(`Finished must be ${FINISHED_LENGTH} bytes, got ${body.length}`);
  return body;
}

/** Assert a handshake message type, naming what was expected. */
export function expectType(actual: number, expected: MsgTypeId, state: string): void {
  if (actual !== expected) throw new UnexpectedMessageError(`unexpected handshake message ${actual} in state ${state} (expected ${expected})`);
}

/** Alert body (plaintext record or protected alert content): code u16 */
export function encodeAlert(code: number): Uint8Array {
  return new Writer().u16(code).finish();
}

export function decodeAlert(body: Uint8Array): number {
  const r = new Reader(body);
  const code = r.u16('alert');
  r.end('alert');
  return code;
}

/** KeyUpdate body: request_update u8 (0 = not requested, 1 = requested) */
export function encodeKeyUpdate(requestUpdate: boolean): Uint8Array {
  return Uint8Array.of(requestUpdate ? 1 : 0);
}

export function decodeKeyUpdate(body: Uint8Array): boolean {
  if (body.length !== 1 || body[0]! > 1) throw new DecodeError('malformed KeyUpdate');
  return body[0] === 1;
}
