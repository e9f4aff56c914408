/**
 * pqmcp's file formats (the files `pqmcp` writes and reads, and that `loadIdentity` and the
 * other loaders in files.ts read for code), as pure JSON <-> value functions: no file system
 * here, so this module works in every runtime. Every format is a JSON object with a `type` tag and a `version`, and
 * is parsed strictly: unknown fields, a wrong type tag or version, bad base64url or lengths
 * are refused with an error naming the file and the field, never echoing a value.
 *
 *   private key   { type: "pqmcp-private-key", version: 1, kind: "agent" | "issuer", id,
 *                   alg: "MLDSA65-Ed25519", seed: <base64url, 64 bytes> }
 *                 The seed (ML-DSA-65 seed || Ed25519 seed) IS the private key.
 *   public key    { type: "pqmcp-public-key", version: 1, kind, id, alg: "MLDSA65-Ed25519",
 *                   fingerprint: <hex>, components: [ML-DSA-65 JWK, Ed25519 JWK] }
 *                 components[0] = { kty: "AKP", alg: "ML-DSA-65", pub } (RFC 9964, formerly
 *                 draft-ietf-cose-dilithium); components[1] = { kty: "OKP", crv: "Ed25519", x }
 *                 (RFC 8037). The composite has no registered JWK, so the wrapper names it.
 *   credential    { type: "pqmcp-credential", version: 1, credential: <base64url PQCR bytes> }
 *   revocations   { type: "pqmcp-revocations", version: 1,
 *                   revokedSerials: [{ issuer, serial: <hex>, revokedAt, reason? }],
 *                   revokedKeys: [{ fingerprint: <hex>, id?, revokedAt, reason? }] }
 *   trust store   TrustStore.toJSON() exactly (docs/api.md), no type tag.
 *
 * Sharp edges:
 * - Every parse error is a FileFormatError whose `path` is the `where` the caller gave (the
 *   file name): the message names the file and the field, never a value.
 * - `decodeCredentialFile` decodes; it does not verify. Only TrustStore.verifyCredential
 *   says a credential can be believed.
 * - `fingerprint` in a public key file is checked against the key on load: an edited key
 *   with a stale fingerprint is refused rather than silently renamed.
 * - Revocation lists are unsigned: they are as trustworthy as the channel that delivered
 *   them, exactly like the trust file they extend.
 */
import { COMPOSITE_PUBLIC_KEY_LENGTH, COMPOSITE_SEED_LENGTH } from '../crypto/composite.js';
import type { CryptoBackend } from '../crypto/types.js';
import { FileFormatError, PqmcpError } from '../errors.js';
import { base64urlDecode, base64urlEncode } from './base64url.js';
import { decodeCredential } from './credential.js';
import type { Credential } from './credential.js';
import { fingerprintHex } from './fingerprint.js';
import { TrustStore } from './trust.js';

/** The `version` of every typed file (keys, credentials, revocation lists). */
export const FILE_FORMAT_VERSION = 1;
/** Our name for the composite algorithm (draft-ietf-lamps-pq-composite-sigs MLDSA65-Ed25519). */
export const COMPOSITE_ALG = 'MLDSA65-Ed25519';
export const MLDSA65_PUBLIC_KEY_LENGTH = 1952;
export const ED25519_PUBLIC_KEY_LENGTH = 32;

/** The `type` tag of each typed file. */
export const FileType = {
  privateKey: 'pqmcp-private-key',
  publicKey: 'pqmcp-public-key',
  credential: 'pqmcp-credential',
  revocations: 'pqmcp-revocations',
} as const;

export type KeyKind = 'agent' | 'issuer';

export interface PrivateKeyFile {
  type: typeof FileType.privateKey;
  version: 1;
  kind: KeyKind;
  id: string;
  alg: typeof COMPOSITE_ALG;
  seed: string;
}

export interface MlDsaJwk {
  kty: 'AKP';
  alg: 'ML-DSA-65';
  pub: string;
}

export interface Ed25519Jwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}

export interface PublicKeyFile {
  type: typeof FileType.publicKey;
  version: 1;
  kind: KeyKind;
  id: string;
  alg: typeof COMPOSITE_ALG;
  fingerprint: string;
  components: [MlDsaJwk, Ed25519Jwk];
}

export interface CredentialFile {
  type: typeof FileType.credential;
  version: 1;
  credential: string;
}

export interface RevokedSerialEntry {
  issuer: string;
  serial: string;
  revokedAt: string;
  reason?: string;
}

export interface RevokedKeyEntry {
  fingerprint: string;
  /** Who the key belonged to, for people reading the list. */
  id?: string;
  revokedAt: string;
  reason?: string;
}

export interface RevocationList {
  type: typeof FileType.revocations;
  version: 1;
  revokedSerials: RevokedSerialEntry[];
  revokedKeys: RevokedKeyEntry[];
}

export type FileKind = 'private-key' | 'public-key' | 'credential' | 'revocations' | 'trust';

/** A private key file, decoded. `seed` IS the private key: zero it when done. */
export interface PrivateKeyFields {
  kind: KeyKind;
  id: string;
  seed: Uint8Array;
}

/** A public key file, decoded (the fingerprint checked against the key). */
export interface PublicKeyFields {
  kind: KeyKind;
  id: string;
  publicKey: Uint8Array;
  /** Lowercase hex. */
  fingerprint: string;
}

function bad(where: string, message: string): never {
  throw new FileFormatError(where, message);
}

type Json = Record<string, unknown>;

function object(value: unknown, where: string, path: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(where, `${path} must be a JSON object`);
  return value as Json;
}

function onlyKeys(obj: Json, allowed: readonly string[], where: string, path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) bad(where, `${path === '' ? '' : `${path}.`}${key} is not a known field`);
  }
}

function text(obj: Json, key: string, where: string, path = ''): string {
  const v = obj[key];
  if (typeof v !== 'string' || v === '') bad(where, `${path}${key} must be a non-empty string`);
  return v;
}

function optionalText(obj: Json, key: string, where: string, path = ''): string | undefined {
  if (obj[key] === undefined) return undefined;
  return text(obj, key, where, path);
}

function bytes(obj: Json, key: string, length: number, where: string, path = ''): Uint8Array {
  const decoded = base64urlDecode(text(obj, key, where, path));
  if (decoded === undefined) bad(where, `${path}${key} is not canonical unpadded base64url`);
  if (decoded.length !== length) bad(where, `${path}${key} must be ${length} bytes, got ${decoded.length}`);
  return decoded;
}

function header(obj: Json, type: string, where: string): void {
  if (obj['type'] !== type) bad(where, `type must be ${JSON.stringify(type)}`);
  if (obj['version'] !== FILE_FORMAT_VERSION) bad(where, `unsupported version (this pqmcp reads version ${FILE_FORMAT_VERSION})`);
}

function kind(obj: Json, where: string): KeyKind {
  const k = obj['kind'];
  if (k !== 'agent' && k !== 'issuer') bad(where, 'kind must be "agent" or "issuer"');
  return k;
}

function alg(obj: Json, where: string): void {
  if (obj['alg'] !== COMPOSITE_ALG) bad(where, `alg must be ${JSON.stringify(COMPOSITE_ALG)}`);
}

/** Which of our formats a parsed JSON document is, by its type tag (or the trust store shape). */
export function detectFileKind(json: unknown): FileKind | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const type = (json as Json)['type'];
  if (type === FileType.privateKey) return 'private-key';
  if (type === FileType.publicKey) return 'public-key';
  if (type === FileType.credential) return 'credential';
  if (type === FileType.revocations) return 'revocations';
  if (type === undefined && 'issuers' in json && 'version' in json) return 'trust';
  return undefined;
}

// --- private keys ------------------------------------------------------------------------

/** Human words for a kind ("a credential"), for messages such as "not a trust file (it is a credential)". */
export function describeFileKind(kind: FileKind | undefined): string {
  switch (kind) {
    case 'private-key':
      return 'a private key';
    case 'public-key':
      return 'a public key';
    case 'credential':
      return 'a credential';
    case 'revocations':
      return 'a revocation list';
    case 'trust':
      return 'a trust file';
    default:
      return 'not a pqmcp file';
  }
}

/** Parse a file's text as JSON; FileFormatError ("not valid JSON") otherwise. */
export function parseFileJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return bad(where, 'not valid JSON');
  }
}

const EXPECTED: Record<FileKind, string> = {
  'private-key': 'a private key file',
  'public-key': 'a public key file',
  credential: 'a credential file',
  revocations: 'a revocation list',
  trust: 'a trust file',
};

/** What to do instead, for the mix-ups that happen (expected kind, then the kind given). */
function kindHint(expected: FileKind, kind: FileKind | undefined, where: string): string {
  if (expected === 'trust' && kind === 'public-key') return `; a trust file lists the issuers you trust: pqmcp trust add-issuer trust.json ${where}`;
  if (expected === 'private-key' && (kind === 'public-key' || kind === 'credential')) return '; give the private key file (NAME.key.json)';
  return '';
}

/** Refuse a document that is not `expected` (by its type tag), naming what it is instead. */
export function expectFileKind(json: unknown, expected: FileKind, where: string): void {
  const kind = detectFileKind(json);
  if (kind !== expected) bad(where, `not ${EXPECTED[expected]} (it is ${describeFileKind(kind)})${kindHint(expected, kind, where)}`);
}

export function encodePrivateKeyFile(key: { kind: KeyKind; id: string; seed: Uint8Array }): PrivateKeyFile {
  return { type: FileType.privateKey, version: FILE_FORMAT_VERSION, kind: key.kind, id: key.id, alg: COMPOSITE_ALG, seed: base64urlEncode(key.seed) };
}

export function decodePrivateKeyFile(json: unknown, where: string): PrivateKeyFields {
  const obj = object(json, where, 'the file');
  header(obj, FileType.privateKey, where);
  onlyKeys(obj, ['type', 'version', 'kind', 'id', 'alg', 'seed'], where, '');
  alg(obj, where);
  return { kind: kind(obj, where), id: text(obj, 'id', where), seed: bytes(obj, 'seed', COMPOSITE_SEED_LENGTH, where) };
}

// --- public keys -------------------------------------------------------------------------

/** The two standard JWKs of a composite public key (mldsaPK || edPK). */
export function compositeJwks(publicKey: Uint8Array): [MlDsaJwk, Ed25519Jwk] {
  return [
    { kty: 'AKP', alg: 'ML-DSA-65', pub: base64urlEncode(publicKey.subarray(0, MLDSA65_PUBLIC_KEY_LENGTH)) },
    { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(publicKey.subarray(MLDSA65_PUBLIC_KEY_LENGTH)) },
  ];
}

export function encodePublicKeyFile(backend: CryptoBackend, key: { kind: KeyKind; id: string; publicKey: Uint8Array }): PublicKeyFile {
  return {
    type: FileType.publicKey,
    version: FILE_FORMAT_VERSION,
    kind: key.kind,
    id: key.id,
    alg: COMPOSITE_ALG,
    fingerprint: fingerprintHex(backend, key.publicKey),
    components: compositeJwks(key.publicKey),
  };
}

export function decodePublicKeyFile(backend: CryptoBackend, json: unknown, where: string): PublicKeyFields {
  const obj = object(json, where, 'the file');
  header(obj, FileType.publicKey, where);
  onlyKeys(obj, ['type', 'version', 'kind', 'id', 'alg', 'fingerprint', 'components'], where, '');
  alg(obj, where);
  const components = obj['components'];
  if (!Array.isArray(components) || components.length !== 2) bad(where, 'components must be [ML-DSA-65 JWK, Ed25519 JWK]');
  const mldsa = object(components[0], where, 'components[0]');
  onlyKeys(mldsa, ['kty', 'alg', 'pub', 'kid'], where, 'components[0]');
  if (mldsa['kty'] !== 'AKP' || mldsa['alg'] !== 'ML-DSA-65') bad(where, 'components[0] must be a JWK with kty "AKP" and alg "ML-DSA-65"');
  const ed = object(components[1], where, 'components[1]');
  onlyKeys(ed, ['kty', 'crv', 'x', 'alg', 'kid'], where, 'components[1]');
  if (ed['kty'] !== 'OKP' || ed['crv'] !== 'Ed25519') bad(where, 'components[1] must be a JWK with kty "OKP" and crv "Ed25519"');
  const publicKey = new Uint8Array(COMPOSITE_PUBLIC_KEY_LENGTH);
  publicKey.set(bytes(mldsa, 'pub', MLDSA65_PUBLIC_KEY_LENGTH, where, 'components[0].'), 0);
  publicKey.set(bytes(ed, 'x', ED25519_PUBLIC_KEY_LENGTH, where, 'components[1].'), MLDSA65_PUBLIC_KEY_LENGTH);
  const fingerprint = fingerprintHex(backend, publicKey);
  const stated = text(obj, 'fingerprint', where);
  if (stated.toLowerCase() !== fingerprint) bad(where, 'fingerprint does not match the key (the file was edited or is corrupt)');
  return { kind: kind(obj, where), id: text(obj, 'id', where), publicKey, fingerprint };
}

// --- credentials -------------------------------------------------------------------------

export function encodeCredentialFile(encoded: Uint8Array): CredentialFile {
  return { type: FileType.credential, version: FILE_FORMAT_VERSION, credential: base64urlEncode(encoded) };
}

/** The decoded (NOT verified) credential in a credential file. */
export function decodeCredentialFile(json: unknown, where: string): Credential {
  const obj = object(json, where, 'the file');
  header(obj, FileType.credential, where);
  onlyKeys(obj, ['type', 'version', 'credential'], where, '');
  const raw = base64urlDecode(text(obj, 'credential', where));
  if (raw === undefined) bad(where, 'credential is not canonical unpadded base64url');
  try {
    return decodeCredential(raw);
  } catch (err) {
    if (err instanceof PqmcpError) bad(where, err.message);
    throw err;
  }
}

// --- revocation lists --------------------------------------------------------------------

export function emptyRevocationList(): RevocationList {
  return { type: FileType.revocations, version: FILE_FORMAT_VERSION, revokedSerials: [], revokedKeys: [] };
}

const HEX = /^(?:[0-9a-f]{2})+$/i;

export function decodeRevocationList(json: unknown, where: string): RevocationList {
  const obj = object(json, where, 'the file');
  header(obj, FileType.revocations, where);
  onlyKeys(obj, ['type', 'version', 'revokedSerials', 'revokedKeys'], where, '');
  const serials = obj['revokedSerials'] ?? [];
  const keys = obj['revokedKeys'] ?? [];
  if (!Array.isArray(serials)) bad(where, 'revokedSerials must be an array');
  if (!Array.isArray(keys)) bad(where, 'revokedKeys must be an array');
  const list = emptyRevocationList();
  serials.forEach((value, i) => {
    const path = `revokedSerials[${i}]`;
    const e = object(value, where, path);
    onlyKeys(e, ['issuer', 'serial', 'revokedAt', 'reason'], where, path);
    const serial = text(e, 'serial', where, `${path}.`);
    if (!HEX.test(serial) || serial.length > 64) bad(where, `${path}.serial must be 1..32 bytes of hex`);
    const reason = optionalText(e, 'reason', where, `${path}.`);
    list.revokedSerials.push({ issuer: text(e, 'issuer', where, `${path}.`), serial: serial.toLowerCase(), revokedAt: text(e, 'revokedAt', where, `${path}.`), ...(reason ? { reason } : {}) });
  });
  keys.forEach((value, i) => {
    const path = `revokedKeys[${i}]`;
    const e = object(value, where, path);
    onlyKeys(e, ['fingerprint', 'id', 'revokedAt', 'reason'], where, path);
    const fingerprint = text(e, 'fingerprint', where, `${path}.`);
    if (!/^[0-9a-f]{64}$/i.test(fingerprint)) bad(where, `${path}.fingerprint must be 64 hex characters`);
    const id = optionalText(e, 'id', where, `${path}.`);
    const reason = optionalText(e, 'reason', where, `${path}.`);
    list.revokedKeys.push({ fingerprint: fingerprint.toLowerCase(), ...(id ? { id } : {}), revokedAt: text(e, 'revokedAt', where, `${path}.`), ...(reason ? { reason } : {}) });
  });
  return list;
}

// --- trust files -------------------------------------------------------------------------

/** A trust file (TrustStore.toJSON() form), strictly validated. */
export function decodeTrustFile(json: unknown, where: string): TrustStore {
  expectFileKind(json, 'trust', where);
  try {
    return TrustStore.fromJSON(json);
  } catch (err) {
    if (err instanceof PqmcpError) bad(where, err.message);
    throw err;
  }
}

/** Load a revocation list into a trust store (refuses an entry the store refuses). */
export function applyRevocations(trust: TrustStore, list: RevocationList, where: string): void {
  try {
    for (const s of list.revokedSerials) trust.revokeSerial({ issuer: s.issuer, serial: s.serial });
    for (const k of list.revokedKeys) trust.revokeKey(k.fingerprint);
  } catch (err) {
    if (err instanceof PqmcpError) bad(where, err.message);
    throw err;
  }
}
