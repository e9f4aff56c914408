/**
 * Validation of trust-store configuration: the constructor's options and the JSON form.
 *
 *   {
 *     "version": 1,
 *     "issuers":        [{ "id": "issuer://acme", "publicKey": "<base64url, 1984 bytes>",
 *                          "constraints": ["agent://acme/"] }],     (constraints optional)
 *     "pinned":         [{ "fingerprint": "<64 hex>", "agentId": "agent://acme/planner" }],
 *     "revokedSerials": [{ "issuer": "issuer://acme", "serial": "<hex, 1..32 bytes>" }],
 *     "revokedKeys":    ["<64 hex>"]
 *   }
 *
 * Sharp edges:
 * - JSON is validated strictly: `version` must be 1 and unknown fields are refused at every
 *   level, because a misspelt "revokedSerial" silently revoking nothing is worse than an
 *   error. Every error is InvalidArgumentError naming the path (e.g. `issuers[2].publicKey`)
 *   and never echoing the value.
 * - Hex is accepted in either case and stored lowercase; base64url must be canonical and
 *   unpadded.
 */
import { COMPOSITE_PUBLIC_KEY_LENGTH } from '../crypto/composite.js';
import { InvalidArgumentError } from '../errors.js';
import { base64urlDecode } from './base64url.js';
import { MAX_SERIAL_LENGTH, MIN_SERIAL_LENGTH } from './credential.js';
import { FINGERPRINT_LENGTH } from './fingerprint.js';
import { Rules, parseHex, textProblem } from './rules.js';
import { copyBytes } from '../bytes.js';
import { normaliseNameConstraints } from './name-constraints.js';

export const TRUST_STORE_JSON_VERSION = 1;

export interface TrustedIssuer {
  /** Issuer id as written in credentials (issuer_id), e.g. issuer://acme. */
  id: string;
  /** The issuer's 1984-byte composite public key. */
  publicKey: Uint8Array;
  /**
   * The agent ids this issuer key may vouch for (docs/protocol.md 6.4): "agent://acme/" (any
   * id below it; "agent://acme/*" is the same), or "agent://acme/tools" (it and ids below it
   * on a "/" boundary). Absent: unconstrained. A credential outside is NameConstraintError.
   */
  constraints?: string[];
}

export interface PinnedKey {
  /** Lowercase hex key fingerprint (64 characters). */
  fingerprint: string;
  /**
   * The agent id this key is bound to. Binds both ways: this agent must present this key,
   * and a self-signed credential with this key is accepted for this id only. Required: an
   * unbound pin would let its key holder self-sign as any agent id.
   */
  agentId: string;
}

export interface RevokedSerial {
  /** Issuer id (issuer_id of the credential; for a self-signed credential, its agent id). */
  issuer: string;
  /** Serial as hex (1..32 bytes). */
  serial: string;
}

export interface TrustStoreOptions {
  issuers?: TrustedIssuer[];
  pinned?: PinnedKey[];
  revokedSerials?: RevokedSerial[];
  /** Lowercase hex key fingerprints. */
  revokedKeys?: string[];
}

export interface TrustStoreJson {
  version: 1;
  issuers: { id: string; publicKey: string; constraints?: string[] }[];
  pinned: PinnedKey[];
  revokedSerials: RevokedSerial[];
  revokedKeys: string[];
}

function fail(where: string, path: string, message: string): never {
  throw new InvalidArgumentError(`${where}${path} ${message}`);
}

function record(value: unknown, where: string, path: string, allowed: readonly string[] | undefined): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, path, 'must be an object');
  const obj = value as Record<string, unknown>;
  if (allowed) {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) fail(where, path, `has an unknown field ${JSON.stringify(key.slice(0, 64))}`);
    }
  }
  return obj;
}

function list(value: unknown, where: string, path: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(where, path, 'must be an array');
  return value;
}

export function checkId(value: unknown, where: string, path: string): string {
  const r = textProblem(value, Rules.id);
  if ('reason' in r) fail(where, path, r.reason);
  return value as string;
}

export function checkFingerprintHex(value: unknown, where: string, path: string): string {
  return parseHex(value, FINGERPRINT_LENGTH, FINGERPRINT_LENGTH) ?? fail(where, path, `must be a ${2 * FINGERPRINT_LENGTH}-character hex key fingerprint`);
}

export function checkSerialHex(value: unknown, where: string, path: string): string {
  return parseHex(value, MIN_SERIAL_LENGTH, MAX_SERIAL_LENGTH) ?? fail(where, path, `must be hex of ${MIN_SERIAL_LENGTH}..${MAX_SERIAL_LENGTH} bytes`);
}

export function checkIssuer(value: unknown, where: string, path: string, json: boolean): TrustedIssuer {
  const obj = record(value, where, path, json ? ['id', 'publicKey', 'constraints'] : undefined);
  const id = checkId(obj.id, where, `${path}.id`);
  let publicKey: Uint8Array | undefined;
  if (json) {
    publicKey = typeof obj.publicKey === 'string' ? base64urlDecode(obj.publicKey) : undefined;
    if (!publicKey || publicKey.length !== COMPOSITE_PUBLIC_KEY_LENGTH) {
      fail(where, `${path}.publicKey`, `must be unpadded base64url of a ${COMPOSITE_PUBLIC_KEY_LENGTH}-byte composite public key`);
    }
  } else {
    if (!(obj.publicKey instanceof Uint8Array) || obj.publicKey.length !== COMPOSITE_PUBLIC_KEY_LENGTH) {
      fail(where, `${path}.publicKey`, `must be a ${COMPOSITE_PUBLIC_KEY_LENGTH}-byte composite public key (Uint8Array)`);
    }
    publicKey = copyBytes(obj.publicKey);
  }
  if (obj.constraints === undefined) return { id, publicKey };
  let constraints: string[];
  try {
    constraints = normaliseNameConstraints(obj.constraints, `${path}.constraints`);
  } catch (err) {
    throw new InvalidArgumentError(`${where}${(err as Error).message}`);
  }
  return { id, publicKey, constraints };
}

export function checkPin(value: unknown, where: string, path: string, json: boolean): PinnedKey {
  const obj = record(value, where, path, json ? ['fingerprint', 'agentId'] : undefined);
  const fingerprint = checkFingerprintHex(obj.fingerprint, where, `${path}.fingerprint`);
  if (obj.agentId === undefined) throw new InvalidArgumentError(`${where}${path}.agentId is required: a pin binds a key to one agent id`);
  return { fingerprint, agentId: checkId(obj.agentId, where, `${path}.agentId`) };
}

export function checkRevokedSerial(value: unknown, where: string, path: string, json: boolean): RevokedSerial {
  const obj = record(value, where, path, json ? ['issuer', 'serial'] : undefined);
  return { issuer: checkId(obj.issuer, where, `${path}.issuer`), serial: checkSerialHex(obj.serial, where, `${path}.serial`) };
}

/** Validated, normalised options (public keys copied, hex lowercased). */
export function checkTrustStoreOptions(value: unknown, where: string, json: boolean): Required<TrustStoreOptions> {
  const allowed = json ? ['version', 'issuers', 'pinned', 'revokedSerials', 'revokedKeys'] : undefined;
  const obj = record(value, where, json ? 'document' : 'options', allowed);
  if (json && obj.version !== TRUST_STORE_JSON_VERSION) fail(where, 'version', `must be ${TRUST_STORE_JSON_VERSION}`);
  return {
    issuers: list(obj.issuers, where, 'issuers').map((v, i) => checkIssuer(v, where, `issuers[${i}]`, json)),
    pinned: list(obj.pinned, where, 'pinned').map((v, i) => checkPin(v, where, `pinned[${i}]`, json)),
    revokedSerials: list(obj.revokedSerials, where, 'revokedSerials').map((v, i) => checkRevokedSerial(v, where, `revokedSerials[${i}]`, json)),
    revokedKeys: list(obj.revokedKeys, where, 'revokedKeys').map((v, i) => checkFingerprintHex(v, where, `revokedKeys[${i}]`)),
  };
}
