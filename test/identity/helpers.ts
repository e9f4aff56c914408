/**
 * Shared test helpers for the identity tests: deterministic seeds and randomness, a raw
 * credential builder that bypasses every validation (to produce malformed encodings), an
 * independent walker of the credential layout, and an exact-error assertion.
 */
import { utf8Encode } from '../../src/bytes.js';
import { createNobleBackend } from '../../src/crypto/noble.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { Writer } from '../../src/wire/writer.js';

export const backend: CryptoBackend = createNobleBackend();

/** A fixed 64-byte seed per label. */
export function seedFor(label: string): Uint8Array {
  return backend.sha512(utf8Encode(`pqmcp test seed ${label}`));
}

/** Deterministic randomness: SHAKE256(label || counter) per call. */
export function deterministicRandom(label: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => backend.shake256(utf8Encode(`${label}/${counter++}`), n);
}

export { expectError } from '../helpers/errors.js';

export interface RawCredential {
  tag: Uint8Array;
  version: number;
  agentId: Uint8Array;
  displayName: Uint8Array;
  keyAlgorithm: number;
  publicKey: Uint8Array;
  /** 1 client, 2 server, 3 both. */
  usage: number;
  scopes: Uint8Array[];
  attributes: [Uint8Array, Uint8Array][];
  notBefore: number;
  notAfter: number;
  serial: Uint8Array;
  issuerId: Uint8Array;
  issuerFingerprint: Uint8Array;
  signatureAlgorithm: number;
  signature: Uint8Array;
  /** Override the scopes list bytes entirely (inside its u16 prefix). */
  scopesList?: Uint8Array;
  attributesList?: Uint8Array;
  trailing?: Uint8Array;
}

/** A structurally valid default (dummy key and signature: decoding does no crypto). */
export function rawDefaults(): RawCredential {
  return {
    tag: utf8Encode('PQCR'),
    version: 1,
    agentId: utf8Encode('agent://acme/planner'),
    displayName: utf8Encode('Planner'),
    keyAlgorithm: 1,
    publicKey: new Uint8Array(1984).fill(7),
    usage: 1,
    scopes: [utf8Encode('mcp:read'), utf8Encode('mcp:write')],
    attributes: [
      [utf8Encode('env'), utf8Encode('prod')],
      [utf8Encode('team'), utf8Encode('search')],
    ],
    notBefore: 1_700_000_000,
    notAfter: 1_700_086_400,
    serial: new Uint8Array(16).fill(0xab),
    issuerId: utf8Encode('issuer://acme'),
    issuerFingerprint: new Uint8Array(32).fill(0x11),
    signatureAlgorithm: 1,
    signature: new Uint8Array(3373).fill(9),
  };
}

/** Encode `raw` with no validation at all (u64 written from two u32 halves, any value). */
export function buildRaw(overrides: Partial<RawCredential> = {}): Uint8Array {
  const f = { ...rawDefaults(), ...overrides };
  const scopes = new Writer();
  for (const s of f.scopes) scopes.vector(1, s);
  const attributes = new Writer();
  for (const [k, v] of f.attributes) attributes.vector(1, k).vector(2, v);
  return new Writer()
    .bytes(f.tag)
    .u8(f.version)
    .vector(1, f.agentId)
    .vector(1, f.displayName)
    .u16(f.keyAlgorithm)
    .vector(2, f.publicKey)
    .u8(f.usage)
    .vector(2, f.scopesList ?? scopes.finish())
    .vector(2, f.attributesList ?? attributes.finish())
    .u32(Math.floor(f.notBefore / 2 ** 32))
    .u32(f.notBefore % 2 ** 32)
    .u32(Math.floor(f.notAfter / 2 ** 32))
    .u32(f.notAfter % 2 ** 32)
    .vector(1, f.serial)
    .vector(1, f.issuerId)
    .bytes(f.issuerFingerprint)
    .u16(f.signatureAlgorithm)
    .vector(2, f.signature)
    .bytes(f.trailing ?? new Uint8Array(0))
    .finish();
}

export interface Region {
  name: string;
  start: number;
  end: number;
}

/**
 * Field regions of an encoded credential, walked independently of the decoder (length
 * prefixes included in their field's region). Also the layout test's oracle.
 */
export function regions(b: Uint8Array): Region[] {
  const out: Region[] = [];
  let o = 0;
  const u16 = (at: number): number => (b[at]! << 8) | b[at + 1]!;
  const add = (name: string, length: number): void => {
    out.push({ name, start: o, end: o + length });
    o += length;
  };
  add('type_tag', 4);
  add('version', 1);
  add('agent_id', 1 + b[o]!);
  add('display_name', 1 + b[o]!);
  add('key_algorithm', 2);
  add('public_key', 2 + u16(o));
  add('usage', 1);
  add('scopes', 2 + u16(o));
  add('attributes', 2 + u16(o));
  add('not_before', 8);
  add('not_after', 8);
  add('serial', 1 + b[o]!);
  add('issuer_id', 1 + b[o]!);
  add('issuer_fingerprint', 32);
  add('signature_algorithm', 2);
  add('signature', 2 + u16(o));
  if (o !== b.length) throw new Error(`layout walk ended at ${o}, length ${b.length}`);
  return out;
}

export function flipped(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const copy = bytes.slice();
  copy[index] = copy[index]! ^ mask;
  return copy;
}
