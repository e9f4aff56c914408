/**
 * The PQMCP/1 attestation credential: an issuer's composite signature binding an agent id,
 * its composite public key, scopes, attributes, a validity window and a serial.
 *
 * Sharp edges:
 * - The encoding is canonical: exactly one byte string per credential. Scopes and attributes
 *   must be strictly ascending by UTF-8 bytes (so no duplicates), strings are well-formed
 *   UTF-8 with no NUL, every length is range-checked, nothing may trail. The decoder refuses
 *   anything else (DecodeError naming the field, never echoing bytes); the encoder refuses
 *   what the decoder would refuse (InvalidArgumentError) and sorts scopes/attributes itself.
 * - `decodeCredential` refuses input above 16384 bytes before reading a single field, and
 *   does no signature work: a decoded Credential is NOT verified. Use
 *   `TrustStore.verifyCredential` for that.
 * - The signature covers the TBS bytes exactly as received (`tbs`), not a re-encoding.
 * - `attributes` is a plain object: JS lists integer-like keys ("9", "10") first, in numeric
 *   order, whatever order they were decoded in. The canonical order lives in the bytes.
 * - not_before / not_after are whole unix seconds below 2^53; not_after > not_before.
 * - `usage` (1 client, 2 server, 3 both) says which role the key may play; the decoder
 *   refuses any other byte, the verifier (TrustStore, with `peerRole`) refuses a mismatch
 *   with CredentialUsageError. issueCredential defaults to 'client', the least authority.
 * - `issueCredential` with `options.randomness` is deterministic (serial first, then the
 *   32-byte ML-DSA rnd): for known-answer tests only. Without it, signing is hedged.
 */
import { copyBytes, equalBytes, utf8Encode } from '../bytes.js';
import { COMPOSITE_PUBLIC_KEY_LENGTH, COMPOSITE_SIGNATURE_LENGTH, compositeSign } from '../crypto/composite.js';
import type { CompositeKeyPair } from '../crypto/composite.js';
import type { CryptoBackend } from '../crypto/types.js';
import { DecodeError, InvalidArgumentError } from '../errors.js';
import { Reader } from '../wire/reader.js';
import { Writer } from '../wire/writer.js';
import { FINGERPRINT_LENGTH, KEY_ALGORITHM_MLDSA65_ED25519, keyFingerprint } from './fingerprint.js';
import { Rules, compareBytes, decodeTextProblem, textProblem } from './rules.js';
import type { TextRule } from './rules.js';

export const CREDENTIAL_TYPE_TAG = utf8Encode('PQCR');
export const CREDENTIAL_VERSION = 1;
export const SIGNATURE_ALGORITHM_MLDSA65_ED25519 = 0x0001;
/** Context string of the issuer's composite signature over the TBS bytes. */
export const CREDENTIAL_SIGNATURE_CONTEXT = utf8Encode('PQMCP/1 credential');
export const MAX_CREDENTIAL_LENGTH = 16384;
export const MAX_SCOPES = 64;
export const MAX_ATTRIBUTES = 64;
export const MIN_SERIAL_LENGTH = 1;
export const MAX_SERIAL_LENGTH = 32;
export const DEFAULT_SERIAL_LENGTH = 16;
export const DEFAULT_VALIDITY_SECONDS = 30 * 24 * 3600;

// --- roles (issue 11 item 3): the credential's usage ---
/** What a credential's key may do in a handshake: act as a client, as a server, or both. */
export type CredentialUsage = 'client' | 'server' | 'both';
/** The `usage` byte of the TBS. Any other value is a DecodeError. */
export const CredentialUsageCode = { client: 1, server: 2, both: 3 } as const;
/** The usage issueCredential writes when the subject gives none: the least authority (see docs/protocol.md 6.1). */
export const DEFAULT_CREDENTIAL_USAGE: CredentialUsage = 'client';
const USAGE_BY_CODE: Record<number, CredentialUsage> = { 1: 'client', 2: 'server', 3: 'both' };

/** Whether a credential of `usage` may play `role`. */
export function usagePermits(usage: CredentialUsage, role: 'client' | 'server'): boolean {
  return usage === 'both' || usage === role;
}

function checkUsage(value: unknown, field: string): CredentialUsage {
  if (value !== 'client' && value !== 'server' && value !== 'both') throw new InvalidArgumentError(`${field} must be "client", "server" or "both"`);
  return value;
}
/** Bytes after the TBS: signature_algorithm u16, signature length u16, signature. */
const SIGNATURE_TRAILER_LENGTH = 2 + 2 + COMPOSITE_SIGNATURE_LENGTH;
/** Largest TBS that still fits MAX_CREDENTIAL_LENGTH once signed. */
export const MAX_TBS_LENGTH = MAX_CREDENTIAL_LENGTH - SIGNATURE_TRAILER_LENGTH;

export interface CredentialFields {
  agentId: string;
  displayName: string;
  /** Composite public key (mldsaPK || edPK), 1984 bytes. */
  publicKey: Uint8Array;
  /** Which role(s) the key may play in a handshake; checked against the role by the verifier. */
  usage: CredentialUsage;
  scopes: string[];
  attributes: Record<string, string>;
  /** Unix seconds. */
  notBefore: number;
  /** Unix seconds; later than notBefore. */
  notAfter: number;
  serial: Uint8Array;
  issuerId: string;
  /** keyFingerprint(issuer public key), 32 bytes. */
  issuerFingerprint: Uint8Array;
}

export interface Credential extends CredentialFields {
  /** The to-be-signed bytes exactly as encoded. */
  tbs: Uint8Array;
  /** Issuer's composite signature over `tbs`, 3373 bytes. */
  signature: Uint8Array;
  /** The whole credential. */
  encoded: Uint8Array;
}

// ---------------------------------------------------------------------------------------
// Encoding (caller input -> InvalidArgumentError)
// ---------------------------------------------------------------------------------------

function encodeText(value: unknown, rule: TextRule, field: string): Uint8Array {
  const r = textProblem(value, rule);
  if ('reason' in r) throw new InvalidArgumentError(`${field} ${r.reason}`);
  return r.bytes;
}

function checkBytes(value: unknown, min: number, max: number, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`${field} must be a Uint8Array`);
  if (value.length < min || value.length > max) {
    throw new InvalidArgumentError(min === max ? `${field} must be ${min} bytes, got ${value.length}` : `${field} must be ${min}..${max} bytes, got ${value.length}`);
  }
  return value;
}

function checkSeconds(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${field} must be a non-negative whole number of seconds below 2^53`);
  }
  return value;
}

/** Scopes as UTF-8, sorted by bytes; duplicates refused. */
function canonicalScopes(scopes: unknown): Uint8Array[] {
  if (!Array.isArray(scopes)) throw new InvalidArgumentError('scopes must be an array of strings');
  if (scopes.length > MAX_SCOPES) throw new InvalidArgumentError(`at most ${MAX_SCOPES} scopes, got ${scopes.length}`);
  const encoded = scopes.map((s: unknown, i) => encodeText(s, Rules.scope, `scopes[${i}]`)).sort(compareBytes);
  for (let i = 1; i < encoded.length; i++) {
    if (compareBytes(encoded[i - 1]!, encoded[i]!) === 0) throw new InvalidArgumentError('scopes contain a duplicate entry');
  }
  return encoded;
}

/** Attributes as [key, value] UTF-8 pairs sorted by key bytes. */
function canonicalAttributes(attributes: unknown): [Uint8Array, Uint8Array][] {
  const proto: unknown = typeof attributes === 'object' && attributes !== null ? Object.getPrototypeOf(attributes) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new InvalidArgumentError('attributes must be an object of string values');
  }
  const entries = Object.entries(attributes as Record<string, unknown>);
  if (entries.length > MAX_ATTRIBUTES) throw new InvalidArgumentError(`at most ${MAX_ATTRIBUTES} attributes, got ${entries.length}`);
  const encoded = entries.map(([k, v]): [Uint8Array, Uint8Array] => {
    const key = encodeText(k, Rules.attributeKey, 'attribute key');
    return [key, encodeText(v, Rules.attributeValue, `attributes[${JSON.stringify(k)}]`)];
  });
  // Keys are ASCII and object keys are unique, so equal keys cannot occur; check anyway.
  encoded.sort((a, b) => compareBytes(a[0], b[0]));
  for (let i = 1; i < encoded.length; i++) {
    if (compareBytes(encoded[i - 1]![0], encoded[i]![0]) === 0) throw new InvalidArgumentError('attributes contain a duplicate key');
  }
  return encoded;
}

/**
 * The to-be-signed bytes (big-endian; vector<uN> = N-byte length prefix, then the bytes):
 *
 *   type_tag            4 bytes      ASCII "PQCR"
 *   version             u8           1
 *   agent_id            vector<u8>   1..255 UTF-8 URI with a scheme
 *   display_name        vector<u8>   0..255 UTF-8, no control characters
 *   key_algorithm       u16          0x0001 (MLDSA65-Ed25519 composite)
 *   public_key          vector<u16>  exactly 1984
 *   usage               u8           1 client, 2 server, 3 both (any other value: decode_error)
 *   scopes              vector<u16>  of vector<u8> 1..255 (no whitespace), strictly
 *                                    ascending by bytes, at most 64 entries
 *   attributes          vector<u16>  of { key vector<u8> 1..64 [A-Za-z0-9_.-],
 *                                    value vector<u16> 0..1024 UTF-8 }, strictly ascending
 *                                    by key bytes, at most 64 entries
 *   not_before          u64          unix seconds
 *   not_after           u64          unix seconds, > not_before
 *   serial              vector<u8>   1..32
 *   issuer_id           vector<u8>   1..255 UTF-8 URI with a scheme
 *   issuer_fingerprint  32 bytes     keyFingerprint(issuer public key)
 *
 * followed, in a full credential, by
 *
 *   signature_algorithm u16          0x0001
 *   signature           vector<u16>  exactly 3373: compositeSign(issuer, TBS, "PQMCP/1 credential")
 *
 * Scopes and attributes are sorted here; duplicates, out-of-range lengths and bad strings
 * are InvalidArgumentError. Refuses a TBS too large for a 16384-byte credential.
 */
export function encodeCredentialTbs(fields: CredentialFields): Uint8Array {
  if (typeof fields !== 'object' || fields === null) throw new InvalidArgumentError('credential fields must be an object');
  const agentId = encodeText(fields.agentId, Rules.id, 'agentId');
  const displayName = encodeText(fields.displayName, Rules.displayName, 'displayName');
  const publicKey = checkBytes(fields.publicKey, COMPOSITE_PUBLIC_KEY_LENGTH, COMPOSITE_PUBLIC_KEY_LENGTH, 'publicKey');
  const usage = checkUsage(fields.usage, 'usage');
  const scopes = canonicalScopes(fields.scopes);
  const attributes = canonicalAttributes(fields.attributes);
  const notBefore = checkSeconds(fields.notBefore, 'notBefore');
  const notAfter = checkSeconds(fields.notAfter, 'notAfter');
  if (notAfter <= notBefore) throw new InvalidArgumentError('notAfter must be later than notBefore');
  const serial = checkBytes(fields.serial, MIN_SERIAL_LENGTH, MAX_SERIAL_LENGTH, 'serial');
  const issuerId = encodeText(fields.issuerId, Rules.id, 'issuerId');
  const issuerFingerprint = checkBytes(fields.issuerFingerprint, FINGERPRINT_LENGTH, FINGERPRINT_LENGTH, 'issuerFingerprint');

  const scopeList = new Writer();
  for (const s of scopes) scopeList.vector(1, s);
  const attributeList = new Writer();
  for (const [k, v] of attributes) attributeList.vector(1, k).vector(2, v);
  const scopeBytes = scopeList.finish();
  const attributeBytes = attributeList.finish();
  // Each list must fit its u16 prefix and the whole credential its maximum: say so plainly.
  const size = 4 + 1 + 1 + agentId.length + 1 + displayName.length + 2 + 2 + publicKey.length + 1 + 2 + scopeBytes.length + 2 + attributeBytes.length + 8 + 8 + 1 + serial.length + 1 + issuerId.length + FINGERPRINT_LENGTH;
  if (size > MAX_TBS_LENGTH) {
    throw new InvalidArgumentError(`credential would be ${size + SIGNATURE_TRAILER_LENGTH} bytes, above the maximum of ${MAX_CREDENTIAL_LENGTH}`);
  }

  return new Writer()
    .bytes(CREDENTIAL_TYPE_TAG)
    .u8(CREDENTIAL_VERSION)
    .vector(1, agentId)
    .vector(1, displayName)
    .u16(KEY_ALGORITHM_MLDSA65_ED25519)
    .vector(2, publicKey)
    .u8(CredentialUsageCode[usage])
    .vector(2, scopeBytes)
    .vector(2, attributeBytes)
    .u64(notBefore)
    .u64(notAfter)
    .vector(1, serial)
    .vector(1, issuerId)
    .bytes(issuerFingerprint)
    .finish();
}

/** TBS || signature_algorithm || signature. */
function assemble(tbs: Uint8Array, signature: Uint8Array): Uint8Array {
  return new Writer().bytes(tbs).u16(SIGNATURE_ALGORITHM_MLDSA65_ED25519).vector(2, signature).finish();
}

// ---------------------------------------------------------------------------------------
// Decoding (peer input -> DecodeError)
// ---------------------------------------------------------------------------------------

function decodeText(bytes: Uint8Array, rule: TextRule, field: string): string {
  const r = decodeTextProblem(bytes, rule);
  if ('reason' in r) throw new DecodeError(`credential ${field} ${r.reason}`);
  return r.value;
}

/** An own, enumerable property even for keys like "__proto__". */
function setOwn(target: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function decodeScopes(list: Uint8Array): string[] {
  const r = new Reader(list);
  const out: string[] = [];
  let previous: Uint8Array | undefined;
  while (r.remaining > 0) {
    if (out.length === MAX_SCOPES) throw new DecodeError(`credential scopes: more than ${MAX_SCOPES} entries`);
    const raw = r.vector(1, 'credential scopes entry', Rules.scope.min, Rules.scope.max);
    if (previous) {
      const order = compareBytes(previous, raw);
      if (order === 0) throw new DecodeError('credential scopes contain a duplicate entry');
      if (order > 0) throw new DecodeError('credential scopes are not in ascending byte order');
    }
    out.push(decodeText(raw, Rules.scope, `scopes[${out.length}]`));
    previous = raw;
  }
  return out;
}

function decodeAttributes(list: Uint8Array): Record<string, string> {
  const r = new Reader(list);
  const out: Record<string, string> = {};
  let previous: Uint8Array | undefined;
  let count = 0;
  while (r.remaining > 0) {
    if (count === MAX_ATTRIBUTES) throw new DecodeError(`credential attributes: more than ${MAX_ATTRIBUTES} entries`);
    const rawKey = r.vector(1, 'credential attribute key', Rules.attributeKey.min, Rules.attributeKey.max);
    if (previous) {
      const order = compareBytes(previous, rawKey);
      if (order === 0) throw new DecodeError('credential attributes contain a duplicate key');
      if (order > 0) throw new DecodeError('credential attributes are not in ascending key order');
    }
    const key = decodeText(rawKey, Rules.attributeKey, `attributes[${count}].key`);
    const rawValue = r.vector(2, 'credential attribute value', Rules.attributeValue.min, Rules.attributeValue.max);
    setOwn(out, key, decodeText(rawValue, Rules.attributeValue, `attributes[${count}].value`));
    previous = rawKey;
    count++;
  }
  return out;
}

/**
 * Parse an encoded credential (layout: see encodeCredentialTbs). Structure only: no
 * signature, issuer, time or revocation check. Throws DecodeError naming the field.
 * The result owns a copy of `bytes` (`encoded`); later changes to `bytes` do not affect it.
 * `publicKey`, `tbs` and `signature` are views into that one copy, not copies of their own
 * (a verified peer's credential lives as long as its session: one buffer, not four).
 */
export function decodeCredential(bytes: Uint8Array): Credential {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('credential must be bytes');
  // Size first, before reading anything.
  if (bytes.length > MAX_CREDENTIAL_LENGTH) {
    throw new DecodeError(`credential of ${bytes.length} bytes exceeds the maximum of ${MAX_CREDENTIAL_LENGTH}`);
  }
  const encoded = copyBytes(bytes);
  const r = new Reader(encoded);

  if (!equalBytes(r.fixed(4, 'credential type_tag'), CREDENTIAL_TYPE_TAG)) throw new DecodeError('credential type_tag is not "PQCR"');
  const version = r.u8('credential version');
  if (version !== CREDENTIAL_VERSION) throw new DecodeError(`unsupported credential version ${version}`);
  const agentId = decodeText(r.vector(1, 'credential agent_id', Rules.id.min, Rules.id.max), Rules.id, 'agent_id');
  const displayName = decodeText(r.vector(1, 'credential display_name', Rules.displayName.min, Rules.displayName.max), Rules.displayName, 'display_name');
  const keyAlgorithm = r.u16('credential key_algorithm');
  if (keyAlgorithm !== KEY_ALGORITHM_MLDSA65_ED25519) throw new DecodeError(`unsupported credential key_algorithm ${keyAlgorithm}`);
  // A view into `encoded`, our own copy (below: tbs and signature too).
  const publicKey = r.vector(2, 'credential public_key', COMPOSITE_PUBLIC_KEY_LENGTH, COMPOSITE_PUBLIC_KEY_LENGTH);
  const usageCode = r.u8('credential usage');
  const usage = USAGE_BY_CODE[usageCode];
  if (usage === undefined) throw new DecodeError(`credential usage ${usageCode} is not 1 (client), 2 (server) or 3 (both)`);
  const scopes = decodeScopes(r.vector(2, 'credential scopes'));
  const attributes = decodeAttributes(r.vector(2, 'credential attributes'));
  const notBefore = r.u64('credential not_before');
  const notAfter = r.u64('credential not_after');
  if (notAfter <= notBefore) throw new DecodeError('credential not_after is not later than not_before');
  const serial = copyBytes(r.vector(1, 'credential serial', MIN_SERIAL_LENGTH, MAX_SERIAL_LENGTH));
  const issuerId = decodeText(r.vector(1, 'credential issuer_id', Rules.id.min, Rules.id.max), Rules.id, 'issuer_id');
  const issuerFingerprint = copyBytes(r.fixed(FINGERPRINT_LENGTH, 'credential issuer_fingerprint'));
  const tbs = encoded.subarray(0, encoded.length - r.remaining);

  const signatureAlgorithm = r.u16('credential signature_algorithm');
  if (signatureAlgorithm !== SIGNATURE_ALGORITHM_MLDSA65_ED25519) throw new DecodeError(`unsupported credential signature_algorithm ${signatureAlgorithm}`);
  const signature = r.vector(2, 'credential signature', COMPOSITE_SIGNATURE_LENGTH, COMPOSITE_SIGNATURE_LENGTH);
  r.end('credential');

  return { agentId, displayName, publicKey, usage, scopes, attributes, notBefore, notAfter, serial, issuerId, issuerFingerprint, tbs, signature, encoded };
}

// ---------------------------------------------------------------------------------------
// Issuance
// ---------------------------------------------------------------------------------------

export interface CredentialIssuer {
  /** The issuer's id (a URI, e.g. issuer://acme), written as issuer_id. */
  id: string;
  keyPair: CompositeKeyPair;
}

/** What the issuer vouches for. Scopes and attributes are sorted for you. */
export interface CredentialSubject {
  agentId: string;
  displayName?: string;
  /** The agent's composite public key (1984 bytes). */
  publicKey: Uint8Array;
  /**
   * The role(s) the agent may play: 'client', 'server' or 'both'. Default 'client', the least
   * authority: a server credential is a deliberate choice, and a server configured with a
   * client credential is refused when it starts, not silently accepted by its clients.
   */
  usage?: CredentialUsage;
  scopes?: readonly string[];
  attributes?: Readonly<Record<string, string>>;
  /** Unix seconds. Default: now. */
  notBefore?: number;
  /** Unix seconds. Default: notBefore + validForSeconds. Give this or validForSeconds, not both. */
  notAfter?: number;
  /** Default 30 days. */
  validForSeconds?: number;
  /** 1..32 bytes. Default: 16 random bytes. */
  serial?: Uint8Array;
}

export interface IssueOptions {
  /** Clock in milliseconds since the epoch. Default Date.now. */
  now?: () => number;
  /**
   * Source of the default serial and of ML-DSA's 32-byte rnd, called in that order. Makes
   * issuance byte-for-byte reproducible: for known-answer tests only.
   */
  randomness?: (length: number) => Uint8Array;
}

function draw(backend: CryptoBackend, options: IssueOptions, n: number): Uint8Array {
  if (!options.randomness) return backend.randomBytes(n);
  const out = options.randomness(n);
  if (!(out instanceof Uint8Array) || out.length !== n) throw new InvalidArgumentError(`options.randomness(${n}) must return ${n} bytes`);
  return out;
}

function validityWindow(subject: CredentialSubject, options: IssueOptions): { notBefore: number; notAfter: number } {
  if (subject.notAfter !== undefined && subject.validForSeconds !== undefined) {
    throw new InvalidArgumentError('give notAfter or validForSeconds, not both');
  }
  let notBefore = subject.notBefore;
  if (notBefore === undefined) {
    const nowMs = (options.now ?? Date.now)();
    if (typeof nowMs !== 'number' || !Number.isFinite(nowMs) || nowMs < 0) throw new InvalidArgumentError('options.now() must return milliseconds since the epoch');
    notBefore = Math.floor(nowMs / 1000);
  }
  notBefore = checkSeconds(notBefore, 'notBefore');
  if (subject.notAfter !== undefined) return { notBefore, notAfter: checkSeconds(subject.notAfter, 'notAfter') };
  const validFor = subject.validForSeconds ?? DEFAULT_VALIDITY_SECONDS;
  if (!Number.isSafeInteger(validFor) || validFor <= 0) throw new InvalidArgumentError('validForSeconds must be a positive whole number');
  return { notBefore, notAfter: checkSeconds(notBefore + validFor, 'notAfter') };
}

/**
 * Issue a credential for `subject`, signed by `issuer`. Returns the decoded credential (the
 * encoding is run back through decodeCredential, so what is issued always decodes).
 */
export function issueCredential(backend: CryptoBackend, issuer: CredentialIssuer, subject: CredentialSubject, options: IssueOptions = {}): Credential {
  if (typeof issuer !== 'object' || issuer === null || typeof issuer.keyPair !== 'object' || issuer.keyPair === null) {
    throw new InvalidArgumentError('issuer must be { id, keyPair }');
  }
  if (typeof subject !== 'object' || subject === null) throw new InvalidArgumentError('subject must be an object');
  const { notBefore, notAfter } = validityWindow(subject, options);
  const fields: CredentialFields = {
    agentId: subject.agentId,
    displayName: subject.displayName ?? '',
    publicKey: subject.publicKey,
    usage: subject.usage ?? DEFAULT_CREDENTIAL_USAGE,
    // Passed through as given: encodeCredentialTbs checks the types, copies and sorts.
    scopes: (subject.scopes ?? []) as string[],
    attributes: (subject.attributes ?? {}) as Record<string, string>,
    notBefore,
    notAfter,
    serial: subject.serial ?? new Uint8Array(0),
    issuerId: issuer.id,
    issuerFingerprint: keyFingerprint(backend, issuer.keyPair.publicKey),
  };
  // Validate everything before drawing randomness, so a bad argument costs no entropy.
  encodeCredentialTbs({ ...fields, serial: subject.serial ?? new Uint8Array(DEFAULT_SERIAL_LENGTH) });
  if (!subject.serial) fields.serial = draw(backend, options, DEFAULT_SERIAL_LENGTH);
  const tbs = encodeCredentialTbs(fields);
  const rnd = options.randomness ? draw(backend, options, 32) : undefined;
  const signature = compositeSign(backend, issuer.keyPair, tbs, CREDENTIAL_SIGNATURE_CONTEXT, rnd);
  return decodeCredential(assemble(tbs, signature));
}

/** The subject of a self-signed credential: its own key pair instead of a public key. */
export type SelfSignedSubject = Omit<CredentialSubject, 'publicKey'> & { keyPair: CompositeKeyPair };

/**
 * A credential signed by its own key: issuer_id = agent_id, issuer_fingerprint = the
 * agent's own fingerprint. Trust stores accept it only when its fingerprint is pinned.
 */
export function selfSignedCredential(backend: CryptoBackend, identity: SelfSignedSubject, options: IssueOptions = {}): Credential {
  if (typeof identity !== 'object' || identity === null || typeof identity.keyPair !== 'object' || identity.keyPair === null) {
    throw new InvalidArgumentError('identity must be { agentId, keyPair, ... }');
  }
  const { keyPair, ...rest } = identity;
  return issueCredential(backend, { id: identity.agentId, keyPair }, { ...rest, publicKey: keyPair.publicKey }, options);
}
